"""Plan: desired (git) vs last-applied (store) vs observed (inventory), per resource. Pure.

`plan_node()` takes plain values — the compiled DesiredNode, the node's inventory
document, what was last applied, the state of maintenance windows — and returns a
NodePlan: every resource classified (in sync, pending change, drift, drift and change,
unknown, blocked) with its reason and field changes, and the corrective document that
would make the node match. No I/O, no clock: `now` is an argument.
"""

from __future__ import annotations

import base64
import difflib
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .compile import DesiredNode, DesiredResource
from .kinds.base import thaw
from .planmodel import Action, Classification, FieldChange, NodePlan, ResourcePlan
from .versions import Constraint, comparator, parse_constraint
from .windows import WindowState

UNKNOWN = object()  # "could not observe"


@dataclass(frozen=True)
class LastApplied:
    """What plumb applied to a resource, and what the node looked like right after.
    (The store's AppliedRecord has the same fields and is accepted wherever this is.)"""

    desired_hash: str
    observed_hash: str
    applied_at: str = ""
    git_revision: str = ""
    references: tuple[str, ...] = ()  # Parameter Store versions it was rendered with ("/a/b:3")


@dataclass(frozen=True)
class Observation:
    state: Any  # a dict of observed fields, None when the thing is absent, or UNKNOWN
    reason: str = ""  # why it is unknown

    def projection_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.state, sort_keys=True, default=str).encode()).hexdigest()


# --- observing: inventory document → per-resource observation ------------------------------

def _type(inventory: Mapping | None, name: str):
    """(entries, reason): entries is None when the type is unknown or missing."""
    if not inventory:
        return None, "no inventory for this node: run `plumb inventory collect`"
    data = inventory.get("Types", {}).get(name)
    if data is None:
        return None, f"{name} was not collected"
    if data.get("Status") != "ok":
        return None, f"{name} is unknown on this node: {data.get('Reason', 'no reason given')}"
    return data.get("Content") or [], ""


def _index(entries, key: str) -> dict:
    try:
        return {e[key]: e for e in entries}  # the usual case, and faster
    except (KeyError, TypeError):
        return {e.get(key): e for e in entries}


class InventoryView:
    """A node's inventory document with each type looked up and indexed at most once.

    Every resource of a node is observed against the same document: plan_node makes one
    view per node, so a type of hundreds of entries is indexed once, not once per resource.
    """

    __slots__ = ("document", "_types", "_indexes", "_shared")

    def __init__(self, document: Mapping | None, shared: dict | None = None):
        self.document = document
        self._types: dict = {}
        self._indexes: dict = {}
        self._shared = shared  # (id(entries), key) → (entries, index): indexes of contents nodes share

    def type(self, name: str):
        """(entries, reason) as `_type`."""
        found = self._types.get(name)
        if found is None:
            found = self._types[name] = _type(self.document, name)
        return found

    def index(self, name: str, key: str) -> dict:
        """The entries of a type that was observed (`type()` gave entries) by their `key`."""
        found = self._indexes.get((name, key))
        if found is None:
            entries = self.type(name)[0]
            if self._shared is None:
                found = _index(entries, key)
            else:  # the store hands nodes with the same content one list: index it once
                kept = self._shared.get((id(entries), key))
                if kept is None or kept[0] is not entries:
                    if len(self._shared) >= 4096:  # bounded: most contents are not shared by many nodes
                        self._shared.clear()
                    kept = self._shared[id(entries), key] = (entries, _index(entries, key))
                found = kept[1]
            self._indexes[name, key] = found
        return found


def _view(inventory) -> InventoryView:
    return inventory if isinstance(inventory, InventoryView) else InventoryView(inventory)


def observe(resource: DesiredResource, inventory: Mapping | InventoryView | None) -> Observation:
    return _OBSERVERS[resource.type](resource, _view(inventory))


def _observe_package(resource, inventory):
    entries, reason = inventory.type("AWS:Application")
    if entries is None:
        return Observation(UNKNOWN, reason)
    entry = inventory.index("AWS:Application", "Name").get(resource.id)
    if entry is None or entry.get("Installed") is False:
        return Observation(None)
    state = {"version": entry.get("Version", ""), "manager": entry.get("PackageManager", "apt")}
    if resource.spec.get("ensure") == "latest":
        updates, reason = inventory.type("plumb:AvailableUpdate")
        if updates is None:
            return Observation(UNKNOWN, reason)
        update = inventory.index("plumb:AvailableUpdate", "Name").get(resource.id)
        state["candidate"] = update.get("CandidateVersion") if update else state["version"]
    return Observation(state)


def _observe_path(resource, inventory):
    entries, reason = inventory.type("AWS:File")
    if entries is None:
        return Observation(UNKNOWN, reason)
    entry = inventory.index("AWS:File", "Path").get(resource.id)
    if entry is None:
        return Observation(UNKNOWN, f"{resource.id} was not observed: collect inventory again")
    if entry.get("Error"):
        return Observation(UNKNOWN, f"cannot observe {resource.id}: {entry['Error']}")
    if not entry.get("Exists"):
        return Observation(None)
    state = {"type": entry.get("FileType"), "mode": entry.get("Mode"), "owner": entry.get("Owner"),
             "group": entry.get("Group")}
    if entry.get("FileType") == "file":
        state["sha256"] = entry.get("Sha256")
        if "Content" in entry:
            state["content"] = entry["Content"]
    return Observation(state)


def _observe_user(resource, inventory):
    users, reason = inventory.type("plumb:User")
    if users is None:
        return Observation(UNKNOWN, reason)
    entry = inventory.index("plumb:User", "Name").get(resource.id)
    if entry is None:
        return Observation(None)
    state = {"uid": entry.get("Uid"), "shell": entry.get("Shell"), "home": entry.get("Home")}
    if "groups" in resource.spec:
        groups, reason = inventory.type("plumb:Group")
        if groups is None:
            return Observation(UNKNOWN, reason)
        state["groups"] = tuple(sorted(g["Name"] for g in groups if resource.id in (g.get("Members") or ())
                                       and g["Name"] in resource.spec["groups"]))
    return Observation(state)


def _observe_sysctl(resource, inventory):
    entries, reason = inventory.type("plumb:Sysctl")
    if entries is None:
        return Observation(UNKNOWN, reason)
    entry = inventory.index("plumb:Sysctl", "Key").get(resource.id)
    if entry is None:
        return Observation(UNKNOWN, f"sysctl {resource.id} was not observed: collect inventory again")
    if entry.get("Error") or not entry.get("Exists", True):
        return Observation(UNKNOWN, f"sysctl {resource.id} does not exist on this node"
                           if not entry.get("Error") else entry["Error"])
    return Observation({"value": " ".join(str(entry.get("Value", "")).split())})


def _observe_service(resource, inventory):
    entries, reason = inventory.type("AWS:Service")
    if entries is None:
        return Observation(UNKNOWN, reason)
    name = resource.id.removesuffix(".service")
    entry = inventory.index("AWS:Service", "Name").get(name)
    if entry is None:
        return Observation(None)
    if entry.get("Status") == "unknown":  # e.g. an init script without a status action: never guessed
        return Observation(UNKNOWN, f"the status of {name} is unknown on this node "
                                    f"({entry.get('Manager') or 'service manager'} gave no answer)")
    return Observation({"running": entry.get("Status") == "running",
                        "enabled": entry.get("StartType") in ("enabled", "enabled-runtime", "alias")})


_OBSERVERS: dict[str, Callable] = {
    "packages": _observe_package, "files": _observe_path, "directories": _observe_path,
    "users": _observe_user, "sysctl": _observe_sysctl, "services": _observe_service,
    "documents": lambda resource, inventory: Observation({}),  # nothing to observe: see _plan_document
}


# --- comparing: desired vs observed → (action, field changes, reason) ------------------------

def compare(resource: DesiredResource, observed: Any) -> tuple[Action, list[FieldChange], str]:
    return _COMPARERS[resource.type](resource.spec, observed, resource)


def _compare_package(spec, observed, resource):
    ensure = spec.get("ensure", "present")
    if ensure == "absent":
        if observed is None:
            return Action.NOOP, [], "not installed, as wanted"
        return Action.DELETE, [FieldChange("installed", observed["version"], None)], "installed, but should be absent"
    if observed is None:
        want = spec.get("version") or "any version"
        return Action.CREATE, [FieldChange("installed", None, want)], "not installed"
    installed = observed["version"]
    if ensure == "latest" and observed.get("candidate") and observed["candidate"] != installed:
        return (Action.UPDATE, [FieldChange("version", installed, observed["candidate"])],
                f"{installed} installed, {observed['candidate']} available")
    if spec.get("version"):
        constraint, satisfied = _version_check(spec["version"], installed, observed.get("manager", "apt"))
        if not satisfied:
            return (Action.UPDATE, [FieldChange("version", installed, str(constraint))],
                    f"{installed} installed, {constraint} wanted")
        return Action.NOOP, [], f"{installed} installed, satisfies {constraint}"
    return Action.NOOP, [], f"{installed} installed"


def _version_check(wanted: str, installed: str, manager: str) -> tuple[Constraint, bool]:
    """(the constraint, whether `installed` satisfies it). Pure, and a fleet has the same few
    versions on every node, so each comparison is made once."""
    try:
        return _cached_version_check(wanted, installed, manager)
    except TypeError:  # an unhashable value (no valid inventory has one): as without the cache
        return _cached_version_check.__wrapped__(wanted, installed, manager)


@functools.lru_cache(maxsize=8192)
def _cached_version_check(wanted: str, installed: str, manager: str) -> tuple[Constraint, bool]:
    constraint = parse_constraint(wanted)
    return constraint, constraint.satisfied_by(installed, comparator(manager))


def _compare_path(spec, observed, resource):
    wanted_type = "file" if resource.type == "files" else "directory"
    if spec.get("ensure") == "absent":
        if observed is None:
            return Action.NOOP, [], "absent, as wanted"
        return Action.DELETE, [FieldChange("exists", True, False)], "exists, but should be absent"
    if observed is None:
        return Action.CREATE, _attribute_changes(spec, {}, resource, creating=True), "does not exist"
    if observed.get("type") != wanted_type:
        return (Action.UPDATE, [FieldChange("type", observed.get("type"), wanted_type)],
                f"is a {observed.get('type')}, should be a {wanted_type}")
    changes = _attribute_changes(spec, observed, resource, creating=False)
    if not changes:
        what = f"sha256 {spec['sha256'][:12]}" if "sha256" in spec else wanted_type
        return Action.NOOP, [], f"in sync ({what}" + "".join(f", {k} {spec[k]}" for k in ("mode", "owner", "group")
                                                             if k in spec) + ")"
    return Action.UPDATE, changes, "differs: " + ", ".join(c.field for c in changes)


def _attribute_changes(spec, observed, resource, creating: bool) -> list[FieldChange]:
    changes = []
    if "sha256" in spec and observed.get("sha256") != spec["sha256"]:
        changes.append(FieldChange("content", _short(observed.get("sha256")), f"sha256:{spec['sha256'][:12]}",
                                   resource.sensitive))
    for key in ("mode", "owner", "group"):
        if key in spec and observed.get(key) != spec[key]:
            changes.append(FieldChange(key, observed.get(key), spec[key]))
    return changes


def _short(sha: str | None) -> str | None:
    return f"sha256:{sha[:12]}" if sha else None


def _compare_user(spec, observed, resource):
    if spec.get("ensure") == "absent":
        if observed is None:
            return Action.NOOP, [], "no such user, as wanted"
        return Action.DELETE, [FieldChange("exists", True, False)], "exists, but should be absent"
    if observed is None:
        return Action.CREATE, [FieldChange("exists", False, True)], "no such user"
    changes = [FieldChange(k, observed.get(k), spec[k]) for k in ("uid", "shell", "home", "groups")
               if k in spec and observed.get(k) != spec[k]]
    if changes:
        return Action.UPDATE, changes, "differs: " + ", ".join(c.field for c in changes)
    return Action.NOOP, [], "in sync"


def _compare_sysctl(spec, observed, resource):
    if observed["value"] == spec["value"]:
        return Action.NOOP, [], f"{resource.id} = {spec['value']}"
    return (Action.UPDATE, [FieldChange("value", observed["value"], spec["value"])],
            f"{resource.id} is {observed['value']}, wanted {spec['value']}")


def _compare_service(spec, observed, resource):
    if observed is None:
        if spec.get("ensure") == "stopped" and not spec.get("enabled"):
            return Action.NOOP, [], "not installed, so not running"
        return Action.UPDATE, [FieldChange("unit", None, resource.id)], "no such unit on this node"
    changes = []
    if "ensure" in spec and observed["running"] != (spec["ensure"] == "running"):
        changes.append(FieldChange("state", "running" if observed["running"] else "stopped", spec["ensure"]))
    if "enabled" in spec and observed["enabled"] != spec["enabled"]:
        changes.append(FieldChange("enabled", observed["enabled"], spec["enabled"]))
    if changes:
        return Action.UPDATE, changes, "differs: " + ", ".join(c.field for c in changes)
    return Action.NOOP, [], "in sync"


_COMPARERS: dict[str, Callable] = {
    "packages": _compare_package, "files": _compare_path, "directories": _compare_path,
    "users": _compare_user, "sysctl": _compare_sysctl, "services": _compare_service,
}


# --- classifying and assembling the node plan -----------------------------------------------

def classify(resource: DesiredResource, observation: Observation, action: Action,
             last: LastApplied | None) -> tuple[Classification, str]:
    """(classification, why) for a resource that needs a change."""
    if last is None:
        return Classification.PENDING_CHANGE, "not applied by plumb before"
    desired_moved = last.desired_hash != resource.desired_hash()
    node_moved = last.observed_hash != observation.projection_hash()
    if desired_moved and node_moved:
        return Classification.DRIFT_AND_CHANGE, f"{_what_moved(resource, last)} and the node changed outside plumb"
    if desired_moved:
        return Classification.PENDING_CHANGE, f"{_what_moved(resource, last)} since the last apply"
    return Classification.DRIFT, f"changed outside plumb since {last.applied_at or 'the last apply'}"


def _what_moved(resource: DesiredResource, last: LastApplied) -> str:
    """Why the desired state moved: a referenced parameter's new version (SSM's trigger), else the manifest."""
    before = dict(ref.rsplit(":", 1) for ref in last.references)
    moved = [f"{name} changed (version {before[name]} -> {version})"
             for name, version in (ref.rsplit(":", 1) for ref in resource.references)
             if name in before and before[name] != version]
    return ", ".join(moved) if moved else "the manifest changed"


def _plan_document(resource: DesiredResource, last: LastApplied | None, window: WindowState | None) -> ResourcePlan:
    """A document association on a node. Nothing on the node can be observed for it, so it
    runs when it never ran there, or when the document, its parameters or a parameter it
    references changed since it last ran (SSM's triggers; schedules are the watch loop's)."""
    if last is not None and last.desired_hash == resource.desired_hash():
        return _resource_plan(resource, Action.NOOP, Classification.IN_SYNC,
                              f"ran {last.applied_at or 'before'}; runs again when the document, its parameters or "
                              "a parameter it references change, or on its schedule")
    action = Action.CREATE if last is None else Action.UPDATE
    reason = (f"will run document {resource.id}: " +
              ("it has not run on this node" if last is None else f"{_what_moved(resource, last)} since it last ran"))
    classification, reason, until = window_gate(window, Classification.PENDING_CHANGE, reason)
    return _resource_plan(resource, action, classification, reason, blocked_until=until)


def window_gate(window: WindowState | None, classification: Classification,
                reason: str) -> tuple[Classification, str, str]:
    """(classification, reason, blocked_until) of a change governed by `window`: outside a
    closed window it is BLOCKED and says when the window next opens."""
    if window is None or window.open:
        return classification, reason, ""
    until = window.next_open.strftime("%Y-%m-%dT%H:%M:%SZ") if window.next_open else ""
    return Classification.BLOCKED, f"{reason}; {window.describe()}", until


def plan_resource(resource: DesiredResource, inventory: Mapping | InventoryView | None, last: LastApplied | None,
                  window: WindowState | None) -> ResourcePlan:
    return _plan_observed(resource, observe(resource, inventory), last, window)


def _plan_observed(resource: DesiredResource, observation: Observation, last: LastApplied | None,
                   window: WindowState | None) -> ResourcePlan:
    if resource.type == "documents":
        return _plan_document(resource, last, window)
    if observation.state is UNKNOWN:
        return _resource_plan(resource, Action.NOOP, Classification.UNKNOWN, f"unknown: {observation.reason}")
    action, changes, why = compare(resource, observation.state)
    if action is Action.NOOP:
        return _resource_plan(resource, action, Classification.IN_SYNC, why)
    classification, because = classify(resource, observation, action, last)
    reason = f"{why} ({because})"
    content_diff = _content_diff(resource, observation.state)
    triggers = resource.on_change if resource.type == "files" else ()
    classification, reason, until = window_gate(window, classification, reason)
    return _resource_plan(resource, action, classification, reason, changes=tuple(changes),
                          content_diff=content_diff, blocked_until=until, triggers=triggers)


def _resource_plan(resource: DesiredResource, action: Action, classification: Classification, reason: str,
                   **rest) -> ResourcePlan:
    return ResourcePlan(resource.address, resource.type, resource.id, resource.association, resource.source, action,
                        classification, reason, sensitive=resource.sensitive, severity=resource.severity,
                        window=resource.window, **rest)


def _content_diff(resource: DesiredResource, observed) -> str:
    """Unified diff of a text file's content; empty for secrets, binaries or unobserved content."""
    if resource.type != "files" or resource.sensitive or "content" not in resource.spec:
        return ""
    try:
        after = bytes(resource.spec["content"]).decode("utf-8")
    except UnicodeDecodeError:
        return ""
    if observed is None:
        before = ""
    elif isinstance(observed.get("content"), str):
        before = observed["content"]
    else:
        return ""
    if before == after:
        return ""
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                        fromfile=f"{resource.id} (node)", tofile=f"{resource.id} (manifests)"))


def plan_node(desired: DesiredNode, inventory: Mapping | None, last_applied: Mapping[str, LastApplied],
              windows: Mapping[str, WindowState], *, fingerprint: str = "", inventory_time: str = "") -> NodePlan:
    return Planner().plan_node(desired, inventory, last_applied, windows, fingerprint=fingerprint,
                               inventory_time=inventory_time)


class Planner:
    """plan_node for the nodes of one plan.

    `shared(resource)` says that a DesiredResource object is given to many nodes (the
    Compiler's are, for all but rendered files). Such a resource in sync or unknown on a
    node gets the ResourcePlan made for a node where it was observed the same: that plan
    depends on nothing else, and it is frozen, so sharing it is invisible.
    """

    def __init__(self, shared: Callable[[DesiredResource], bool] = lambda resource: False):
        self.shared = shared
        self._made: dict[tuple, ResourcePlan] = {}  # (id(resource), observation) → its in-sync/unknown plan
        self._indexes: dict = {}  # shared by the nodes' InventoryViews (see InventoryView)

    def plan_node(self, desired: DesiredNode, inventory: Mapping | None, last_applied: Mapping[str, LastApplied],
                  windows: Mapping[str, WindowState], *, fingerprint: str = "", inventory_time: str = "") -> NodePlan:
        view = InventoryView(inventory, self._indexes)
        resources = tuple([self._resource(r, view, last_applied, windows) for r in desired.resources])
        document = corrective_document(desired, resources)
        return NodePlan(desired.node, True, "", fingerprint, inventory_time, resources, document)

    def _resource(self, resource: DesiredResource, view: InventoryView, last_applied, windows) -> ResourcePlan:
        observation = observe(resource, view)
        key = _reuse_key(resource, observation) if self.shared(resource) else None
        if key is not None:
            made = self._made.get(key)
            if made is not None:
                return made
        planned = _plan_observed(resource, observation, last_applied.get(resource.address),
                                 windows.get(resource.window) if resource.window else None)
        if key is not None and planned.action is Action.NOOP:  # in sync or unknown: nothing else matters
            self._made[key] = planned
        return planned


def _reuse_key(resource: DesiredResource, observation: Observation) -> tuple:
    """What a shared resource's in-sync or unknown plan depends on besides the resource. The
    observed state is keyed by its repr, which tells apart all JSON values (1, 1.0, True, "1")."""
    state = observation.state
    return id(resource), ("unknown", observation.reason) if state is UNKNOWN else repr(state)


def unreachable(node: str, error: str) -> NodePlan:
    return NodePlan(node, reachable=False, error=error)


# --- the corrective document ----------------------------------------------------------------

STEP_NAME = re.compile(r"[^a-zA-Z0-9_.-]+")


def step_name(address: str) -> str:
    return STEP_NAME.sub("_", address).strip("_")[:128]


def corrective_document(desired: DesiredNode, plans: tuple[ResourcePlan, ...]) -> dict | None:
    """The SSM Command document of plumb:* steps that brings the node to the desired state."""
    by_address = {r.address: r for r in desired.resources}
    steps = [step_for(by_address[p.address]) for p in plans if p.will_change]
    if not steps:
        return None
    return {"schemaVersion": "2.2", "description": f"plumb: corrective changes for {desired.node}",
            "mainSteps": steps}


def step_for(resource: DesiredResource) -> dict:
    """The plumb:* step that makes the node match one desired resource."""
    spec = thaw(resource.spec)
    action, inputs = _STEP_BUILDERS[resource.type](resource, spec)
    return {"action": action, "name": step_name(resource.address), "inputs": inputs}


def _package_step(resource, spec):
    inputs = {"name": resource.id, "ensure": spec["ensure"]}
    if spec.get("version"):
        inputs["version"] = spec["version"]
    return "plumb:package", inputs


def _file_step(resource, spec):
    inputs = {"path": resource.id, "ensure": spec["ensure"]}
    inputs.update({k: spec[k] for k in ("mode", "owner", "group") if k in spec})
    if spec["ensure"] == "present":
        inputs["makeDirs"] = True
        if resource.sensitive:
            inputs["contentSha256"] = spec["sha256"]  # the content is filled in at apply time, never stored
        else:
            inputs["contentBase64"] = base64.b64encode(bytes(spec["content"])).decode()
    return "plumb:file", inputs


def _directory_step(resource, spec):
    inputs = {"path": resource.id, "ensure": spec["ensure"]}
    inputs.update({k: spec[k] for k in ("mode", "owner", "group") if k in spec})
    return "plumb:directory", inputs


def _user_step(resource, spec):
    inputs = {"name": resource.id, "ensure": spec["ensure"]}
    inputs.update({k: (list(v) if k == "groups" else v) for k, v in spec.items() if k in ("uid", "groups", "shell",
                                                                                          "home", "system")})
    return "plumb:user", inputs


def _sysctl_step(resource, spec):
    return "plumb:sysctl", {"key": resource.id, "value": spec["value"], "persist": spec["persist"]}


def _document_step(resource, spec):
    """Marks a document association to run; the engine runs the document itself (with its
    parameters resolved at apply time), so a saved plan never holds a secret parameter."""
    inputs = {"documentName": spec["document"], "documentSha256": spec["documentSha256"]}
    if resource.sensitive:
        inputs["parametersSha256"] = resource.desired_hash()
    else:
        inputs["parameters"] = spec["parameters"]
    return "plumb:runDocument", inputs


def _service_step(resource, spec):
    inputs = {"name": resource.id}
    inputs.update({k: spec[k] for k in ("ensure", "enabled") if k in spec})
    return "plumb:service", inputs


_STEP_BUILDERS: dict[str, Callable] = {
    "packages": _package_step, "files": _file_step, "directories": _directory_step, "users": _user_step,
    "sysctl": _sysctl_step, "services": _service_step, "documents": _document_step,
}
