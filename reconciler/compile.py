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
import posixpath
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from . import templating
from .diagnostics import Diagnostic
from .kinds.association import Association, Resource
from .kinds.base import freeze, thaw
from .kinds.node import Node
from .model import Model
from .planmodel import Source
from .targets import matches

# resolve(reference_body, secure) -> value; raises ResolveError when it cannot.
Resolver = Callable[[str, bool], str]


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
    """Remembers whether rendering touched a secret, so the resource is marked sensitive."""

    resolve: Resolver
    secret: bool = False

    def __call__(self, body: str, secure: bool) -> str:
        if secure:
            self.secret = True
        try:
            return self.resolve(body, secure)
        except ResolveError as exc:
            raise templating.TemplateError(templating.TemplateProblem(0, str(exc))) from None


def facts_from_inventory(document: Mapping | None) -> dict:
    """The `node.facts` templates see: AWS:InstanceInformation's attributes (empty if unknown)."""
    if not document:
        return {}
    info = document.get("Types", {}).get("AWS:InstanceInformation", {})
    content = info.get("Content") or [{}]
    return dict(content[0]) if info.get("Status") == "ok" else {}


def compile_node(model: Model, node: Node, facts: Mapping[str, Any], resolve: Resolver) -> DesiredNode:
    resources: list[DesiredResource] = []
    problems: list[Diagnostic] = []
    node_view = {"name": node.name, "labels": dict(node.labels), "facts": dict(facts)}
    for assoc in model.associations:
        if not assoc.resources or not matches(assoc.targets, node.name, node.labels):
            continue
        tracker = _Tracking(resolve)
        params = _render_parameters(assoc, node_view, tracker, problems)
        if params is None:
            continue
        params_secret = tracker.secret
        for resource in assoc.resources:
            tracker.secret = params_secret
            built = _compile_resource(model, assoc, resource, {"node": node_view, "params": params}, tracker,
                                      problems)
            if built is not None:
                resources.append(built)
    return DesiredNode(node.name, tuple(resources), tuple(problems))


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


def _compile_resource(model, assoc: Association, resource: Resource, context, tracker, problems):
    desired = dict(resource.desired)
    line, column = assoc.origin.key_at(resource.pointer)
    source = Source(assoc.origin.file, line, column, resource.pointer)
    if resource.type == "files" and resource.ensure == "present":
        try:
            desired["content"] = _file_content(model, resource, context, tracker)
        except templating.TemplateError as exc:
            problems.append(_template_diagnostic(model, assoc, resource, context["node"]["name"], exc))
            return None
    spec = _normalise(resource.type, desired)
    on_change = tuple(f"{verb}:{name}" for action in desired.get("onChange", ()) for verb, name in action.items())
    return DesiredResource(resource.address, resource.type, resource.id, assoc.name, source, freeze(spec),
                           assoc.compliance_severity, assoc.maintenance_window, tracker.secret, on_change)


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
    """Resolve `{{ssm:...}}` from the manifests' own Parameter values (no store involved).

    Versions need the parameter store; SecureString needs the controller's key. Both are
    reported as errors rather than guessed.
    """

    def resolve(body: str, secure: bool) -> str:
        name, _, selector = body.partition(":")
        if body.count(":") > 1 or (selector and "/" in selector):
            name, selector = body.rsplit(":", 1)
        param = model.parameter(name)
        if param is None:
            raise ResolveError(f"no Parameter named '{name}'")
        if secure or param.secure:
            raise ResolveError(f"'{name}' is a SecureString: resolving secrets needs the parameter store "
                               "and the controller's key, which this version does not have yet")
        if selector.isdigit():
            raise ResolveError(f"{{{{ssm:{body}}}}} asks for version {selector}: versions need the parameter "
                               "store, which this version does not have yet")
        if selector and selector not in param.labels:
            raise ResolveError(f"'{name}' has no label '{selector}' in the manifests")
        return param.value or ""

    return resolve
