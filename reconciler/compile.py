"""Compile: associations × targeted nodes → the desired resources of each node. Pure.

For each node, every association whose targets match it contributes its resources, in
the association's resource order (packages, users, directories, files, sysctl, services).
Association parameters and file templates/contents are rendered with Jinja2 in the
sandbox (StrictUndefined) with `node` (name, labels, facts from inventory) and `params`;
`{{ssm:...}}` references resolve through the `resolve` callback the caller passes.
A template problem becomes a located diagnostic and the resource is left out.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from . import docparams, templating
from .diagnostics import Diagnostic
from .kinds.association import Association, Resource
from .kinds.base import freeze, thaw
from .kinds.node import Node
from .kinds.parameter import normalise_name
from .model import Model
from .planmodel import Source
from .references import ParameterReference
from .targets import matches

@dataclass(frozen=True)
class Resolved:
    """What a `{{ssm:...}}` reference resolved to: the value and which version of which parameter."""

    value: str
    name: str  # normalised ("/a/b")
    version: int  # 0 when unknown (the manifests' own value, before the store has it)
    type: str = "String"  # String | StringList | SecureString

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


# resolve(reference_body, secure) -> Resolved (or a plain str); raises ResolveError when it cannot.
Resolver = Callable[[str, bool], "Resolved | str"]


class ResolveError(Exception):
    pass


@dataclass(frozen=True)
class DesiredResource:
    address: str
    type: str
    id: str
    association: str
    source: Source
    spec: Mapping[str, Any]  # normalised desired fields (see _normalise)
    severity: str = "UNSPECIFIED"
    window: str = ""
    sensitive: bool = False
    on_change: tuple[str, ...] = ()  # "restart:nginx", "reload:nginx"
    references: tuple[str, ...] = ()  # Parameter Store versions used to render it: "/a/b:3", sorted

    def desired_hash(self) -> str:
        """Stable hash of what is wanted (content by its sha256), for last-applied comparison."""
        items = sorted((k, v) for k, v in thaw(self.spec).items() if k != "content")
        return hashlib.sha256(repr(items).encode()).hexdigest()


@dataclass(frozen=True)
class DesiredNode:
    node: str
    resources: tuple[DesiredResource, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()


@dataclass
class _Tracking:
    """Remembers whether rendering touched a secret, so the resource is marked sensitive, and
    which parameter versions it used (SSM re-runs an association when one of them changes)."""

    resolve: Resolver
    secret: bool = False
    refs: set = field(default_factory=set)
    last: object = None  # what the last call resolved to

    def __call__(self, body: str, secure: bool) -> str:
        if secure:
            self.secret = True
        try:
            found = self.resolve(body, secure)
        except ResolveError as exc:
            raise templating.TemplateError(templating.TemplateProblem(0, str(exc))) from None
        self.last = found
        if isinstance(found, Resolved):
            self.refs.add(found.ref)
            if found.type == "SecureString":
                self.secret = True
            return found.value
        return found

    def resolve_full(self, reference: ParameterReference) -> Resolved:
        """A reference resolved with its type (for SSM's StringList splitting)."""
        body = reference.name + (f":{reference.selector}" if reference.selector else "")
        value = self(body, reference.secure)
        last = self.last
        return last if isinstance(last, Resolved) else Resolved(value, normalise_name(reference.name), 0)

    def mark(self, secret: bool, refs) -> None:
        self.secret, self.refs = secret, set(refs)


def facts_from_inventory(document: Mapping | None) -> dict:
    """The `node.facts` templates see: AWS:InstanceInformation's attributes (empty if unknown)."""
    if not document:
        return {}
    info = document.get("Types", {}).get("AWS:InstanceInformation", {})
    content = info.get("Content") or [{}]
    return dict(content[0]) if info.get("Status") == "ok" else {}


def compile_node(model: Model, node: Node, facts: Mapping[str, Any], resolve: Resolver) -> DesiredNode:
    return Compiler(model, resolve).compile(node, facts)


class Compiler:
    """Compiles nodes against one model: `compile_node` for many nodes, faster.

    What does not depend on the node is worked out once per association and shared by
    every node's result: each resource's declaration position and onChange actions and —
    for all but files whose content is a template, rendered per node in the same order as
    before — its whole DesiredResource (frozen, so sharing it is invisible).
    """

    def __init__(self, model: Model, resolve: Resolver):
        self.model = model
        self.resolve = resolve
        # Keyed by id(): the associations belong to self.model, which this compiler keeps alive.
        self._statics: dict[int, tuple[_Static, ...]] = {}
        self._shared: dict[tuple[int, bool], tuple[DesiredResource | None, ...]] = {}
        self._shared_ids: set[int] = set()
        self._texts: dict[str, str] = {}

    def compile(self, node: Node, facts: Mapping[str, Any]) -> DesiredNode:
        resources: list[DesiredResource] = []
        problems: list[Diagnostic] = []
        node_view = {"name": node.name, "labels": dict(node.labels), "facts": dict(facts)}
        for assoc in self.model.associations:
            if not (assoc.resources or assoc.document) or not matches(assoc.targets, node.name, node.labels):
                continue
            tracker = _Tracking(self.resolve)
            if assoc.document is not None:
                built = self._document(assoc, node_view, tracker, problems)
                if built is not None:
                    resources.append(built)
                continue
            params = _render_parameters(assoc, node_view, tracker, problems)
            if params is None:
                continue
            params_secret, params_refs = tracker.secret, set(tracker.refs)
            context = {"node": node_view, "params": params}
            statics = self._statics_of(assoc)
            for resource, static, shared in zip(assoc.resources, statics, self._shared_of(assoc, params_secret)):
                if shared is not None:  # nothing to render: the same on every node
                    resources.append(shared)
                    continue
                tracker.mark(params_secret, params_refs)
                built = self._rendered(assoc, resource, static, context, tracker, problems)
                if built is not None:
                    resources.append(built)
        return DesiredNode(node.name, tuple(resources), tuple(problems))

    def _statics_of(self, assoc: Association) -> tuple[_Static, ...]:
        statics = self._statics.get(id(assoc))
        if statics is None:
            statics = self._statics[id(assoc)] = tuple(_static(self.model, assoc, r) for r in assoc.resources)
        return statics

    def _shared_of(self, assoc: Association, secret: bool) -> tuple[DesiredResource | None, ...]:
        """Each resource's DesiredResource when it is the same on every node (None: rendered per node).
        Nothing is rendered for them, so they are sensitive exactly when the parameters were."""
        shared = self._shared.get((id(assoc), secret))
        if shared is None:
            shared = self._shared[id(assoc), secret] = tuple(
                None if static.spec is None else
                DesiredResource(r.address, r.type, r.id, assoc.name, static.source, static.spec,
                                assoc.compliance_severity, assoc.maintenance_window, secret, static.on_change)
                for r, static in zip(assoc.resources, self._statics_of(assoc)))
            self._shared_ids.update(id(r) for r in shared if r is not None)
        return shared

    def shares(self, resource: DesiredResource) -> bool:
        """Whether `resource` is one object this compiler gives every node it applies to."""
        return id(resource) in self._shared_ids  # they live in self._shared, so their ids are theirs

    def _rendered(self, assoc: Association, resource: Resource, static: _Static, context, tracker, problems):
        """A file's DesiredResource, its content rendered for this node."""
        try:
            content = self._file_content(resource, context, tracker)
        except templating.TemplateError as exc:
            problems.append(_template_diagnostic(self.model, assoc, resource, context["node"]["name"], exc))
            return None
        spec = _normalise(resource.type, {**resource.desired, "content": content})
        return DesiredResource(resource.address, resource.type, resource.id, assoc.name, static.source,
                               _frozen(spec), assoc.compliance_severity, assoc.maintenance_window, tracker.secret,
                               static.on_change, tuple(sorted(tracker.refs)))

    def _document(self, assoc: Association, node_view, tracker, problems) -> DesiredResource | None:
        """A document association on one node: the document to run with its parameters rendered.

        The spec holds the document's digest and the parameters; a changed document, a changed
        parameter or a changed referenced parameter version changes its desired hash, which is
        what makes it run again (SSM's triggers). Secret parameter values live only in memory.
        """
        ref = assoc.document
        doc = self.model.document(ref.name)
        pointer = "/spec/document"
        line, column = assoc.origin.key_at(pointer)
        source = Source(assoc.origin.file, line, column, pointer)
        given = {}
        for name, value in ref.parameters.items():
            try:
                given[name] = _document_value(doc, name, value, {"node": node_view}, tracker, assoc.origin.file)
            except templating.TemplateError as exc:
                problems.append(assoc.origin.diagnostic(
                    f"{pointer}/parameters/{name}", f"cannot render parameter '{name}' for node "
                    f"'{node_view['name']}': {exc.problem.message}", code="template"))
                return None
        try:
            parameters = docparams.resolve(doc, given, sensitive=tracker.secret)
            content, inlined, _, _ = docparams.inline_references(doc.content, tracker.resolve_full)
        except docparams.InvalidParameters as exc:
            problems.append(assoc.origin.diagnostic(f"{pointer}/parameters", f"for node '{node_view['name']}': {exc}",
                                                    code="InvalidParameters"))
            return None
        except templating.TemplateError as exc:  # a reference inside the document's steps
            problems.append(doc.origin.diagnostic("/spec/mainSteps", f"for node '{node_view['name']}' (association "
                                                  f"{assoc.name}): {exc.problem.message}", code="template"))
            return None
        # "content" (the document with its {{ssm:...}} made parameters) is left out of the desired
        # hash, as a file's content is: what it depends on is in documentSha256 and parameters.
        spec = {"document": doc.name, "documentSha256": document_digest(doc), "parameters": {**parameters, **inlined},
                "content": content}
        return DesiredResource(f"documents:{assoc.name}", "documents", doc.name, assoc.name, source, freeze(spec),
                               assoc.compliance_severity, assoc.maintenance_window, tracker.secret, (),
                               tuple(sorted(tracker.refs)))


    def _file_content(self, resource: Resource, context, tracker) -> bytes:
        desired = resource.desired
        if "template" in desired and "source" not in desired:  # as _file_content, the text decoded once
            path = desired["template"]
            text = self._texts.get(path)
            if text is None:
                text = self._texts[path] = self.model.assets[path].decode("utf-8")
            return templating.render(text, context, tracker, path).encode("utf-8")
        return _file_content(self.model, resource, context, tracker)


def document_digest(doc) -> str:
    """sha256 of a document's canonical JSON: what `documentSha256` and command records carry."""
    canonical = json.dumps(thaw(doc.content), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _document_value(doc, name: str, value, context, tracker, file: str) -> list[str]:
    """An association's value for a document parameter, rendered, as the list docparams takes.

    SSM's StringList rule: a StringList document parameter given exactly one `{{ssm:...}}`
    reference to a StringList parameter receives its items (split on commas)."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    out: list[str] = []
    param = doc.parameters.get(name)
    for item in values:
        text = item if isinstance(item, str) else json.dumps(item)
        whole = docparams.whole_reference(param, text)
        if whole is not None:
            found = tracker.resolve_full(whole)
            if found.type == "StringList":
                out.extend(found.value.split(","))
                continue
        out.append(templating.render(text, context, tracker, file))
    return out



@dataclass(frozen=True)
class _Static:
    """The node-independent part of a compiled resource (spec None: a file rendered per node)."""

    source: Source
    on_change: tuple[str, ...]
    spec: Mapping[str, Any] | None


def _static(model: Model, assoc: Association, resource: Resource) -> _Static:
    line, column = assoc.origin.key_at(resource.pointer)
    source = Source(assoc.origin.file, line, column, resource.pointer)
    on_change = tuple(f"{verb}:{name}" for action in resource.desired.get("onChange", ())
                      for verb, name in action.items())
    desired = dict(resource.desired)
    if resource.type == "files" and resource.ensure == "present":
        content = _constant_content(model, resource)
        if content is None:
            return _Static(source, on_change, None)
        desired["content"] = content
    return _Static(source, on_change, _frozen(_normalise(resource.type, desired)))


def _constant_content(model: Model, resource: Resource) -> bytes | None:
    """What _file_content gives on every node, when the content does not depend on the node
    (a source file, or a text without Jinja syntax); None when it must be rendered per node."""
    desired = resource.desired
    if "source" in desired:
        return model.assets[desired["source"]]
    text = model.assets[desired["template"]].decode("utf-8") if "template" in desired else desired["content"]
    return text.encode("utf-8") if templating.is_constant(text) else None


_SCALARS = (str, bytes, int, float, type(None))


def _frozen(spec: dict) -> Mapping[str, Any]:
    """freeze(spec), without walking the scalars and bytes a normalised spec is made of."""
    return MappingProxyType({k: v if isinstance(v, _SCALARS) else freeze(v) for k, v in spec.items()})


def _render_parameters(assoc: Association, node_view, tracker, problems) -> dict | None:
    rendered = {}
    for name, value in assoc.parameters.items():
        pointer = f"/spec/parameters/{name}"
        try:
            rendered[name] = _render_value(value, {"node": node_view}, tracker, assoc.origin.file)
        except templating.TemplateError as exc:
            problems.append(assoc.origin.diagnostic(pointer, f"cannot render parameter '{name}' for node "
                                                    f"'{node_view['name']}': {exc.problem.message}", code="template"))
            return None
    return rendered


def _render_value(value, context, tracker, name):
    if isinstance(value, str):
        return templating.render(value, context, tracker, name)
    if isinstance(value, (list, tuple)):
        return [_render_value(v, context, tracker, name) for v in value]
    return value


def _file_content(model, resource: Resource, context, tracker) -> bytes:
    desired = resource.desired
    if "source" in desired:
        return model.assets[desired["source"]]
    if "template" in desired:
        text = model.assets[desired["template"]].decode("utf-8")
        return templating.render(text, context, tracker, desired["template"]).encode("utf-8")
    return templating.render(desired["content"], context, tracker, resource.id).encode("utf-8")


def _template_diagnostic(model, assoc, resource, node_name, exc) -> Diagnostic:
    problem = exc.problem
    template = resource.desired.get("template")
    where = f"for node '{node_name}'"
    if template and problem.line:
        return Diagnostic(f"template error {where}: {problem.message}", posixpath.join(model.root, template),
                          problem.line, 0, code="template",
                          hint=f"used by association '{assoc.name}' ({assoc.origin.ref(resource.pointer)})")
    field_ = "template" if template else "content"
    return assoc.origin.diagnostic(f"{resource.pointer}/{field_}", f"template error {where}: {problem.message}",
                                   code="template")


def _normalise(rtype: str, desired: dict) -> dict:
    """The fields that are compared with inventory, with defaults filled in."""
    spec: dict[str, Any] = {"ensure": desired.get("ensure", "present")}
    if rtype == "packages":
        spec["version"] = desired.get("version", "")
    elif rtype in ("files", "directories"):
        for key in ("mode", "owner", "group"):
            if key in desired:
                spec[key] = _mode(desired[key]) if key == "mode" else desired[key]
        if rtype == "files" and spec["ensure"] == "present":
            content = desired["content"]
            spec["content"] = content
            spec["sha256"] = hashlib.sha256(content).hexdigest()
    elif rtype == "users":
        spec.update({k: desired[k] for k in ("uid", "shell", "home", "system") if k in desired})
        if "groups" in desired:
            spec["groups"] = tuple(sorted(desired["groups"]))
    elif rtype == "sysctl":
        spec = {"value": " ".join(str(desired["value"]).split()), "persist": desired.get("persist", True)}
    elif rtype == "services":
        spec = {k: desired[k] for k in ("ensure", "enabled") if k in desired}
    return spec


def _mode(text: str) -> str:
    """"644" and "0644" are the same mode: always four digits."""
    return text.rjust(4, "0")


def model_resolver(model: Model) -> Resolver:
    """Resolve `{{ssm:...}}` from the manifests' own Parameter values (no store involved):
    for benchmarks and tests of pure planning. The CLI resolves through engine.paramsync.

    Versions need the parameter store; SecureString needs the controller's key. Both are
    reported as errors rather than guessed.
    """

    by_key: dict = {}
    for parameter in model.parameters:  # as model.parameter(), without a scan per reference
        by_key.setdefault(parameter.key, parameter)

    def resolve(body: str, secure: bool) -> Resolved:
        name, _, selector = body.partition(":")
        if body.count(":") > 1 or (selector and "/" in selector):
            name, selector = body.rsplit(":", 1)
        param = by_key.get(normalise_name(name))
        if param is None:
            raise ResolveError(f"ParameterNotFound: no Parameter named '{name}'")
        if secure or param.secure:
            raise ResolveError(f"'{name}' is a SecureString: opening it needs the controller's key and the "
                               "parameter store (plan from the CLI, not offline from the manifests alone)")
        if selector.isdigit():
            raise ResolveError(f"{{{{ssm:{body}}}}} asks for version {selector}: versions live in the parameter "
                               "store, which this planning path does not read")
        if selector and selector not in param.labels:
            raise ResolveError(f"ParameterVersionNotFound: '{name}' has no label '{selector}' in the manifests")
        return Resolved(param.value or "", param.key, 0, param.type.value)

    return resolve
