"""The `Parameter` kind: a Parameter Store parameter (SSM PutParameter) kept in git.

metadata.name is the parameter name (`/prod/web/port`). This module owns SSM's naming
rules, the tier size limits and the value rules; sealed SecureString values stay sealed
here (they are opened only by the secrets module when handed to a node).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Iterator

from ..diagnostics import Diagnostic
from .base import Manifest, Meta, Origin, freeze

KIND = "Parameter"
SCHEMA = "parameter"

MAX_LEVELS = 15
# SSM: 2048 minus 1037 reserved = 1011 characters including the 45-character ARN prefix
# `arn:aws:ssm:us-east-2:111122223333:parameter/`, which replaces the leading slash.
MAX_NAME_LENGTH = 1011 - 45 + 1
TIER_LIMITS = {"Standard": 4096, "Advanced": 8192, "Intelligent-Tiering": 8192}
_NAME_CHARS = re.compile(r"^[a-zA-Z0-9_.\-/]+$")


class ParameterType(enum.Enum):
    STRING = "String"
    STRING_LIST = "StringList"
    SECURE_STRING = "SecureString"


@dataclass(frozen=True)
class Policy:
    type: str
    attributes: object
    version: str = "1.0"


@dataclass(frozen=True)
class Parameter:
    meta: Meta
    origin: Origin
    type: ParameterType
    value: str | None = None  # plain value (StringList joined with commas)
    sealed_value: str | None = None  # SecureString, as committed
    description: str = ""
    tier: str = "Standard"
    data_type: str = "text"
    allowed_pattern: str = ""
    labels: tuple[str, ...] = ()
    policies: tuple[Policy, ...] = ()
    managed: bool = True

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def key(self) -> str:
        """Identity for uniqueness: SSM treats `/a` and `a` as the same parameter."""
        return normalise_name(self.name)

    @property
    def secure(self) -> bool:
        return self.type is ParameterType.SECURE_STRING


def normalise_name(name: str) -> str:
    return name if name.startswith("/") else "/" + name


def build(manifest: Manifest) -> Parameter:
    spec = manifest.spec
    value = spec.get("value")
    if isinstance(value, list):
        value = ",".join(value)
    return Parameter(
        meta=manifest.meta,
        origin=manifest.origin,
        type=ParameterType(spec["type"]),
        value=value,
        sealed_value=spec.get("sealedValue"),
        description=spec.get("description", ""),
        tier=spec.get("tier", "Standard"),
        data_type=spec.get("dataType", "text"),
        allowed_pattern=spec.get("allowedPattern", ""),
        labels=tuple(spec.get("labels", ())),
        policies=tuple(Policy(p["type"], freeze(p["attributes"]), p.get("version", "1.0"))
                       for p in spec.get("policies", ())),
        managed=spec.get("managed", True),
    )


def name_problems(name: str) -> list[str]:
    """SSM's parameter naming rules; an empty list when the name is fine."""
    problems = []
    if not name.strip():
        return ["a parameter name cannot be empty"]
    if name != name.strip() or " " in name:
        problems.append("a parameter name cannot contain spaces")
    elif not _NAME_CHARS.match(name):
        bad = sorted({c for c in name if not _NAME_CHARS.match(c)})
        problems.append(f"a parameter name may only contain a-z A-Z 0-9 _ . - and /; found {' '.join(bad)}")
    bare = name.lstrip("/").lower()
    if bare.startswith(("aws", "ssm")):
        problems.append("a parameter name cannot start with 'aws' or 'ssm' (reserved, in any case)")
    if "/" in name.lstrip("/") and not name.startswith("/"):
        problems.append("a hierarchical parameter name must start with '/'")
    if "//" in name or (name.endswith("/") and len(name) > 1):
        problems.append("a parameter name cannot have an empty level ('//' or a trailing '/')")
    levels = name.strip("/").count("/") + 1
    if levels > MAX_LEVELS:
        problems.append(f"a parameter name can have at most {MAX_LEVELS} levels; this one has {levels}")
    if len(normalise_name(name)) > MAX_NAME_LENGTH:
        problems.append(f"a parameter name can be at most {MAX_NAME_LENGTH} characters long")
    return problems


def check(param: Parameter) -> Iterator[Diagnostic]:
    origin = param.origin
    for problem in name_problems(param.name):
        yield origin.diagnostic("/metadata/name", problem, code="parameter-name")
    yield from _check_value(param)
    yield from _check_policies(param)


def _check_value(param: Parameter) -> Iterator[Diagnostic]:
    origin = param.origin
    spec_has = origin.source.values
    if param.secure:
        if "/spec/value" in spec_has:
            yield origin.diagnostic(
                "/spec/value", "a SecureString value must be committed sealed, never in plain text",
                key=True, code="secret", hint="use `plumb secret seal` and put its output in sealedValue")
        elif param.sealed_value is None:
            yield origin.diagnostic("/spec", "missing required field 'sealedValue' for a SecureString")
        return
    if param.sealed_value is not None:
        yield origin.diagnostic("/spec/sealedValue", f"sealedValue is only for SecureString, not {param.type.value}",
                                key=True, hint="use value")
    if param.value is None:
        yield origin.diagnostic("/spec", "missing required field 'value'")
        return
    raw = param.origin.source.values.get("/spec/value")
    if param.type is ParameterType.STRING_LIST:
        yield from _check_list_items(param)
    elif raw is not None and raw.text is None:
        yield origin.diagnostic("/spec/value", "a list value is only allowed for StringList",
                                expected="a string")
    limit = TIER_LIMITS[param.tier]
    size = len(param.value.encode("utf-8"))
    if size > limit:
        yield origin.diagnostic("/spec/value", f"the value is {size} bytes; the {param.tier} tier allows {limit}",
                                hint="use tier: Advanced (up to 8192 bytes)" if param.tier == "Standard" else "")
    if "{{" in param.value:
        yield origin.diagnostic("/spec/value", "a parameter value cannot contain {{...}} references",
                                hint="Parameter Store does not nest references")
    yield from _check_pattern(param)


def _check_list_items(param: Parameter) -> Iterator[Diagnostic]:
    items = param.origin.source.values
    index = 0
    while f"/spec/value/{index}" in items:
        pos = items[f"/spec/value/{index}"]
        if pos.text is not None and "," in pos.text:
            yield param.origin.diagnostic(f"/spec/value/{index}",
                                          "a StringList item cannot contain a comma (there is no escaping)",
                                          hint="use type: String if commas are data")
        index += 1


def _check_pattern(param: Parameter) -> Iterator[Diagnostic]:
    if not param.allowed_pattern:
        return
    try:
        pattern = re.compile(param.allowed_pattern)
    except re.error as exc:
        yield param.origin.diagnostic("/spec/allowedPattern", f"invalid regular expression: {exc}",
                                      code="InvalidAllowedPatternException")
        return
    values = param.value.split(",") if param.type is ParameterType.STRING_LIST else [param.value]
    for value in values:
        if not pattern.fullmatch(value):
            yield param.origin.diagnostic(
                "/spec/value", f"the value does not match allowedPattern {param.allowed_pattern}",
                code="ParameterPatternMismatchException")


def _check_policies(param: Parameter) -> Iterator[Diagnostic]:
    if not param.policies:
        return
    if param.tier == "Standard":
        yield param.origin.diagnostic("/spec/policies", "parameter policies need tier: Advanced "
                                      "(or Intelligent-Tiering)", code="IncompatiblePolicyException")
    expirations = [i for i, p in enumerate(param.policies) if p.type == "Expiration"]
    if len(expirations) > 1:
        yield param.origin.diagnostic(f"/spec/policies/{expirations[1]}",
                                      "only one Expiration policy is allowed",
                                      code="IncompatiblePolicyException")
    for index, policy in enumerate(param.policies):
        stamp = policy.attributes.get("timestamp")
        if stamp is not None and not is_instant(stamp):
            yield param.origin.diagnostic(
                f"/spec/policies/{index}/attributes/timestamp", f"'{stamp}' is not an ISO-8601 instant",
                expected="e.g. 2027-01-31T00:00:00Z or 2027-01-31T00:00:00+01:00",
                code="InvalidPolicyAttributeException")


def is_instant(text: str) -> bool:
    from datetime import datetime

    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return parsed.tzinfo is not None
