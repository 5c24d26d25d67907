"""The Parameter Store: SSM's rules for PutParameter, GetParameter(History), LabelParameterVersion,
UnlabelParameterVersion, DeleteParameter and GetParametersByPath, on top of a Store.

This module owns those rules (names, types, tiers, sizes, allowed patterns, policies,
versions, labels, selectors) and the errors SSM names for them; a store only carries out
the `ParameterWrite` computed here, atomically. The rules are pure functions; the
`ParameterService` adds the store and the controller's keys.

A SecureString's plaintext lives only in memory: it is sealed for the controller's key
before it is written, and its sha256 (`digest`) is what redaction markers show. No error
message carries a value.

Departures from SSM (see also the comments where they apply):
- a put whose value is unchanged does not make a new version: a metadata-only change
  updates the latest version in place, and an identical put changes nothing;
- names are normalised to start with "/" (SSM treats `/a` and `a` as one parameter too);
- allowed patterns are Python regular expressions (SSM: Java's), matched against the whole value;
- `Intelligent-Tiering` is resolved on every put and the resolved tier is what is stored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from .kinds.parameter import MAX_LEVELS, TIER_LIMITS, Policy, is_instant, name_problems, normalise_name
from .secrets import (PRIVATE_FILE, KeyPair, PublicKey, SecretError, load_keypair, load_public, seal, sealed_key_id,
                      unseal)
from .secrets import key_dir as resolve_key_dir
from .store.base import ParameterConflict, ParameterRecord, ParameterVersion, ParameterWrite, Store

TYPES = ("String", "StringList", "SecureString")
TIERS = ("Standard", "Advanced", "Intelligent-Tiering")
DATA_TYPES = ("text",)  # SSM's aws:ec2:image and aws:ssm:integration need AWS itself
SOURCES = ("cli", "git")
MAX_VERSIONS = 100
MAX_LABELS_PER_VERSION = 10
MAX_LABELS_PER_CALL = 10
MAX_POLICIES = 10
MAX_POLICIES_JSON = 4096
MAX_DESCRIPTION = 1024
MAX_ALLOWED_PATTERN = 1024
TIER_QUOTAS = {"Standard": 10_000, "Advanced": 100_000}  # parameters per tier (SSM: per account and Region)
POLICY_ATTRIBUTES = {
    "Expiration": ("Timestamp",),
    "ExpirationNotification": ("Before", "Unit"),
    "NoChangeNotification": ("After", "Unit"),
}
POLICY_UNITS = ("Days", "Hours")
_LABEL = re.compile(r"^(?![0-9])(?![aA][wW][sS])(?![sS][sS][mM])[a-zA-Z0-9_.-]{1,100}$")
_REFERENCE = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_COUNT = re.compile(r"^[1-9][0-9]*$")


class ParameterError(Exception):
    """A Parameter Store request SSM would refuse; `code` is SSM's error name. Never carries a value."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# --- pure rules ----------------------------------------------------------------------------
def value_digest(plaintext: str) -> str:
    """sha256 hex of the value's UTF-8 bytes (what redaction markers show the first 8 digits of)."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def redacted(version: ParameterVersion) -> str:
    """A SecureString's value for display: `(sensitive, sha256:xxxxxxxx)`, as render.redact shows secrets."""
    return f"(sensitive, sha256:{version.digest[:8]})"


def state_hash(version: ParameterVersion) -> str:
    """A stable hash of what a version *is* (type, value digest, metadata, labels), leaving out
    its number and who wrote it when: reconcile compares desired, last-applied and actual by it."""
    state = {"type": version.type, "digest": version.digest, "description": version.description,
             "tier": version.tier, "allowed_pattern": version.allowed_pattern, "data_type": version.data_type,
             "policies": list(version.policies), "labels": sorted(version.labels)}
    return hashlib.sha256(json.dumps(state, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def split_selector(text: str) -> tuple[str, str]:
    """`/a/b:3` → (`/a/b`, `3`); `/a/b:prod` → (`/a/b`, `prod`); `/a/b` → (`/a/b`, ``).
    A name cannot contain ':', so the first one starts the selector."""
    name, colon, selector = text.strip().partition(":")
    if colon and not selector:
        raise ParameterError("ValidationException", f"'{text}' ends with ':' but names no version or label")
    return name, selector


def checked_name(name: str) -> str:
    """The normalised name (leading "/"), or ParameterError with SSM's code for the first rule broken.
    Leading and trailing whitespace is trimmed, as SSM does."""
    name = name.strip()
    problems = name_problems(name)
    if problems:
        levels = name.strip("/").count("/") + 1
        if " " in name:
            code = "ValidationException"
        elif levels > MAX_LEVELS and len(problems) == 1:
            code = "HierarchyLevelLimitExceededException"
        else:
            code = "ParameterPatternMismatchException"
        raise ParameterError(code, f"invalid parameter name '{name}': {'; '.join(problems)}")
    return normalise_name(name)


def label_problem(label: str) -> str | None:
    """Why SSM would refuse this version label, or None."""
    if not isinstance(label, str) or not _LABEL.match(label):
        return ("a label is 1-100 letters, digits, '.', '-' or '_', and cannot start with a digit, "
                "'aws' or 'ssm'")
    return None


def compile_pattern(pattern: str) -> re.Pattern | None:
    if not pattern:
        return None
    if len(pattern) > MAX_ALLOWED_PATTERN:
        raise ParameterError("ValidationException", f"an allowed pattern can be at most {MAX_ALLOWED_PATTERN} "
                                                    "characters long")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ParameterError("InvalidAllowedPatternException", f"invalid regular expression {pattern}: {exc}") \
            from None


def check_value(plaintext: str, type_: str, tier: str, allowed_pattern: str) -> None:
    """SSM's value rules: not empty, within the tier's size, no {{...}}, matching the allowed pattern
    (each item of a StringList). Messages never include the value."""
    if not plaintext:
        raise ParameterError("ValidationException", "a parameter value cannot be empty")
    size, limit = len(plaintext.encode("utf-8")), TIER_LIMITS[tier]
    if size > limit:
        hint = "; use the Advanced tier (up to 8192 bytes)" if tier == "Standard" else ""
        raise ParameterError("ValidationException", f"the value is {size} bytes; the {tier} tier allows {limit}{hint}")
    if _REFERENCE.search(plaintext):
        raise ParameterError("ValidationException", "a parameter value cannot contain {{...}} references")
    pattern = compile_pattern(allowed_pattern)
    if pattern is None:
        return
    items = plaintext.split(",") if type_ == "StringList" else [plaintext]
    for index, item in enumerate(items, 1):
        if not pattern.fullmatch(item):
            which = f"item {index} of the value" if type_ == "StringList" else "the value"
            raise ParameterError("ParameterPatternMismatchException",
                                 f"{which} does not match the allowed pattern {allowed_pattern}")


def normalise_policies(policies) -> tuple[dict, ...]:
    """SSM-shaped policies ({"Type", "Version", "Attributes"}) from SSM's form, the manifest's
    lowerCamel form or `kinds.parameter.Policy` objects. SSM's `[{}]` (clear them all) gives ()."""
    result = []
    for index, policy in enumerate(policies, 1):
        if isinstance(policy, Policy):
            type_, version, attributes = policy.type, policy.version, policy.attributes
        elif isinstance(policy, Mapping):
            if not policy:
                continue
            type_ = policy.get("Type", policy.get("type"))
            version = policy.get("Version", policy.get("version", "1.0"))
            attributes = policy.get("Attributes", policy.get("attributes", {}))
        else:
            raise ParameterError("InvalidPolicyTypeException", f"policy {index} is not an object")
        if not isinstance(attributes, Mapping):
            raise ParameterError("InvalidPolicyAttributeException", f"the attributes of policy {index} are not "
                                                                     "an object")
        result.append({"Type": type_, "Version": version,
                       "Attributes": {str(k)[:1].upper() + str(k)[1:]: v if isinstance(v, str) else str(v)
                                      for k, v in attributes.items()}})
    return tuple(result)


def check_policies(policies: tuple[dict, ...], tier: str) -> None:
    """SSM's policy rules (normalised policies): ≤ 10, known types and attributes, one Expiration,
    Advanced tier only."""
    if not policies:
        return
    if len(policies) > MAX_POLICIES:
        raise ParameterError("PoliciesLimitExceededException",
                             f"{len(policies)} policies; a parameter can have at most {MAX_POLICIES}")
    for index, policy in enumerate(policies, 1):
        _check_policy(index, policy)
    if sum(p["Type"] == "Expiration" for p in policies) > 1:
        raise ParameterError("IncompatiblePolicyException", "only one Expiration policy is allowed")
    if len(json.dumps(list(policies))) > MAX_POLICIES_JSON:
        raise ParameterError("ValidationException", f"the policies are longer than {MAX_POLICIES_JSON} characters")
    if tier != "Advanced":
        raise ParameterError("IncompatiblePolicyException",
                             f"parameter policies need the Advanced tier (or Intelligent-Tiering), not {tier}")


def _check_policy(index: int, policy: dict) -> None:
    kind = policy["Type"]
    if kind not in POLICY_ATTRIBUTES:
        raise ParameterError("InvalidPolicyTypeException", f"policy {index}: unknown type {kind!r}; expected one of "
                                                           f"{', '.join(POLICY_ATTRIBUTES)}")
    bad = "InvalidPolicyAttributeException"
    if policy["Version"] != "1.0":
        raise ParameterError(bad, f"policy {index} ({kind}): Version must be 1.0")
    attributes, wanted = policy["Attributes"], POLICY_ATTRIBUTES[kind]
    unknown = sorted(set(attributes) - set(wanted))
    missing = [a for a in wanted if a not in attributes]
    if unknown or missing:
        raise ParameterError(bad, f"policy {index} ({kind}) takes the attributes {', '.join(wanted)}"
                                  + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                                  + (f"; missing: {', '.join(missing)}" if missing else ""))
    if "Timestamp" in attributes and not is_instant(attributes["Timestamp"]):
        raise ParameterError(bad, f"policy {index} ({kind}): Timestamp {attributes['Timestamp']!r} is not an "
                                  "ISO-8601 instant (e.g. 2027-01-31T00:00:00Z or 2027-01-31T00:00:00+01:00)")
    for count in ("Before", "After"):
        if count in attributes and not _COUNT.match(attributes[count]):
            raise ParameterError(bad, f"policy {index} ({kind}): {count} must be a positive whole number")
    if "Unit" in attributes and attributes["Unit"] not in POLICY_UNITS:
        raise ParameterError(bad, f"policy {index} ({kind}): Unit must be Days or Hours")


def _utcnow() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- requests and the service ------------------------------------------------------------
@dataclass(frozen=True)
class PutRequest:
    """One PutParameter. On overwrite, a field left None keeps the parameter's current value of it
    (`value` and `sealed_value` both None: keep the value); on create, None means SSM's default
    (description "", tier Standard, allowed pattern "", data type text, no policies)."""

    name: str
    type: str
    value: str | None = None  # plaintext (a StringList comma-joined)
    sealed_value: str | None = None  # SecureString only: already sealed (plumb-sealed:v1:..., from a manifest)
    description: str | None = None
    tier: str | None = None  # Standard | Advanced | Intelligent-Tiering
    allowed_pattern: str | None = None
    data_type: str | None = None
    policies: tuple | None = None  # SSM-shaped dicts, manifest-shaped dicts or kinds.parameter.Policy
    labels: tuple[str, ...] = ()  # attached to the resulting version (moved off any other version)
    overwrite: bool = False


@dataclass(frozen=True)
class _Fields:
    description: str
    allowed_pattern: str
    data_type: str
    policies: tuple


def _fields(request: PutRequest, current: ParameterVersion | None) -> _Fields:
    """The request's metadata with None filled in from the current version (or SSM's defaults), checked."""

    def pick(field: str, default):
        value = getattr(request, field)
        return value if value is not None else (getattr(current, field) if current else default)

    fields = _Fields(pick("description", ""), pick("allowed_pattern", ""), pick("data_type", "text"),
                     normalise_policies(request.policies) if request.policies is not None
                     else (current.policies if current else ()))
    if len(fields.description) > MAX_DESCRIPTION:
        raise ParameterError("ValidationException", f"a description can be at most {MAX_DESCRIPTION} characters")
    if fields.data_type not in DATA_TYPES:
        raise ParameterError("ValidationException", f"unsupported data type {fields.data_type!r}; plumb supports "
                                                    f"{', '.join(DATA_TYPES)}")
    compile_pattern(fields.allowed_pattern)
    return fields


def _metadata(version: ParameterVersion) -> tuple:
    return (version.description, version.tier, version.allowed_pattern, version.data_type, version.policies)


class ParameterService:
    """The Parameter Store of one controller: SSM's operations on `store`, sealing SecureStrings
    with the key pair in `key_dir` (loaded when first needed: sealing a plaintext needs only the
    public key; opening a sealed value needs the private key)."""

    def __init__(self, store: Store, key_dir: str | os.PathLike | None = None):
        self.store = store
        self.key_dir = resolve_key_dir(key_dir)  # the one given, else $PLUMB_KEY_DIR, else .plumb/keys
        self._public: PublicKey | None = None
        self._keys: KeyPair | None = None
        self._counts: Counter | None = None

    # --- PutParameter -------------------------------------------------------------------
    def put(self, request: PutRequest, *, by: str, source: str = "cli", now: str | None = None,
            revision: str = "") -> ParameterVersion:
        """Create or overwrite a parameter; returns the version it now has (with its labels)."""
        write, result = self.plan_put(request, by=by, source=source, now=now, revision=revision)
        if write is not None:
            self._write(write)
        return result

    def plan_put(self, request: PutRequest, *, by: str, source: str = "cli", now: str | None = None,
                 revision: str = "") -> tuple[ParameterWrite | None, ParameterVersion]:
        """What `put` would write (None: nothing to do) and the version it would leave. Writes nothing."""
        now = now or _utcnow()
        name = checked_name(request.name)
        if request.type not in TYPES:
            raise ParameterError("UnsupportedParameterType", f"unsupported type {request.type!r}; expected one of "
                                                             f"{', '.join(TYPES)}")
        if source not in SOURCES:
            raise ParameterError("ValidationException", f"source must be one of {', '.join(SOURCES)}")
        record = self.store.parameter(name)
        current = record.latest if record else None
        if current is not None and not request.overwrite:
            raise ParameterError("ParameterAlreadyExists", f"the parameter {name} already exists; overwrite it to "
                                                           "change it")
        if current is not None and current.type != request.type:
            raise ParameterError("HierarchyTypeMismatchException",
                                 f"{name} is a {current.type}; its type cannot change to {request.type} "
                                 "(delete it and create it again)")
        plaintext, sealed = self._plaintext(request, current)
        fields = _fields(request, current)
        tier = self._tier(request, current, plaintext, fields.policies)
        check_value(plaintext, request.type, tier, fields.allowed_pattern)
        check_policies(fields.policies, tier)
        result, change = self._version(name, request.type, current, plaintext, sealed, fields, tier, now, by, source)
        history = self.store.parameter_history(name) if change == "value" and current is not None else []
        labels, result = _attach(request.labels, result, None if change == "value" else current)
        evict = _evictions(name, history, request.labels) if change == "value" else ()
        applied = None
        if source == "git" and (change or labels or record is None or record.applied_hash != state_hash(result)):
            applied = state_hash(result)
        if not change and not labels and applied is None:
            return None, result  # identical: nothing to write
        return ParameterWrite(name, current.version if current else 0,
                              new_version=result if change == "value" else None,
                              metadata=result if change == "metadata" else None, evict=evict, labels=labels,
                              applied_hash=applied, applied_at=now if applied else "",
                              applied_revision=revision if applied else ""), result

    def _plaintext(self, request: PutRequest, current: ParameterVersion | None) -> tuple[str, str | None]:
        """(plaintext, sealed value) of the value to put; the plaintext stays in memory."""
        secure = request.type == "SecureString"
        if request.value is not None and request.sealed_value is not None:
            raise ParameterError("ValidationException", "give a value or a sealed value, not both")
        if request.sealed_value is not None:
            if not secure:
                raise ParameterError("ValidationException", f"a sealed value is only for SecureString, "
                                                            f"not {request.type}")
            return self._open(request.sealed_value), request.sealed_value
        if request.value is not None:
            if not isinstance(request.value, str):
                raise ParameterError("ValidationException", "a parameter value must be text")
            return request.value, None
        if current is None:
            raise ParameterError("ValidationException", "a value is required to create a parameter")
        if secure:
            return self._open(current.sealed_value), current.sealed_value
        return current.value, None

    def _tier(self, request: PutRequest, current: ParameterVersion | None, plaintext: str, policies: tuple) -> str:
        """The tier the parameter will have: Intelligent-Tiering resolved, downgrades and quotas refused."""
        requested = request.tier or (current.tier if current else "Standard")
        if requested not in TIERS:
            raise ParameterError("ValidationException", f"unknown tier {requested!r}; expected one of "
                                                        f"{', '.join(TIERS)}")
        counts = self._tier_counts() if current is None else Counter()
        tier = requested
        if requested == "Intelligent-Tiering":
            advanced = ((current is not None and current.tier == "Advanced") or bool(policies)
                        or len(plaintext.encode("utf-8")) > TIER_LIMITS["Standard"]
                        or counts["Standard"] >= TIER_QUOTAS["Standard"])
            tier = "Advanced" if advanced else "Standard"
        if current is not None and current.tier == "Advanced" and tier == "Standard":
            raise ParameterError("ValidationException", f"{current.name} is an Advanced parameter and cannot move "
                                                        "back to Standard (delete it and create it again)")
        if counts[tier] >= TIER_QUOTAS[tier]:
            raise ParameterError("ParameterLimitExceeded", f"there are already {counts[tier]} {tier} parameters, "
                                                           f"the most there can be"
                                 + ("; use the Advanced tier or Intelligent-Tiering" if tier == "Standard" else ""))
        return tier

    def _tier_counts(self) -> Counter:
        """Parameters per tier; read once and kept until this service writes (a plan asks per new parameter)."""
        if self._counts is None:
            self._counts = Counter(record.latest.tier for record in self.store.parameters("/"))
        return self._counts

    def _version(self, name, type_, current, plaintext, sealed, fields: _Fields, tier, now, by,
                 source) -> tuple[ParameterVersion, str]:
        """(resulting version, what changes: "value", "metadata" or "").

        Departure from SSM, which makes a new version on every overwrite: the version goes up only
        when the value (its digest) changes; a metadata-only change rewrites the latest version's
        metadata in place, and an identical put changes nothing. This keeps reconcile idempotent:
        re-applying the same manifest never grows the history."""
        digest = value_digest(plaintext)
        common = dict(description=fields.description, tier=tier, allowed_pattern=fields.allowed_pattern,
                      data_type=fields.data_type, policies=fields.policies, modified_at=now, modified_by=by,
                      source=source)
        if current is None or digest != current.digest:
            if type_ == "SecureString":
                value, sealed = None, sealed or seal(plaintext, self._public_key())
            else:
                value, sealed = plaintext, None
            number = current.version + 1 if current else 1
            return ParameterVersion(name, number, type_, value, sealed, digest, **common), "value"
        updated = dataclasses.replace(current, **common)
        if _metadata(updated) == _metadata(current):
            return current, ""
        return updated, "metadata"

    # --- reads --------------------------------------------------------------------------
    def get(self, name: str, selector: str = "") -> ParameterVersion:
        """GetParameter: the latest version, or the one `selector` (a version number or a label)
        names; `name` may carry the selector itself (`/a/b:3`, `/a/b:prod`). No fallback."""
        if not selector:
            name, selector = split_selector(name)
        record = self._existing(name)
        if not selector or selector == str(record.latest.version):
            return record.latest
        history = self.store.parameter_history(record.name)
        if selector.isdigit():
            found = next((v for v in history if v.version == int(selector)), None)
            missing = f"{record.name} has no version {selector}"
        else:
            found = next((v for v in history if selector in v.labels), None)
            missing = f"{record.name} has no version labelled {selector}"
        if found is None:
            raise ParameterError("ParameterVersionNotFound", missing)
        return found

    def reveal(self, version: ParameterVersion) -> str:
        """The plaintext value (a SecureString is opened with the controller's private key)."""
        if version.type != "SecureString":
            return version.value or ""
        return unseal(version.sealed_value, self._keypair())

    def history(self, name: str) -> list[ParameterVersion]:
        """GetParameterHistory: every version kept, oldest first."""
        name = checked_lookup(name)
        versions = self.store.parameter_history(name)
        if not versions:
            raise ParameterError("ParameterNotFound", f"no parameter {name}")
        return versions

    def record(self, name: str) -> ParameterRecord | None:
        return self.store.parameter(checked_lookup(name))

    def list(self, path: str = "/", recursive: bool = False) -> list[ParameterRecord]:
        """GetParametersByPath: the parameters under `path` (a hierarchy prefix, not a full name);
        not recursive: only those one level below it (path "/": the top-level names)."""
        path = path.strip() or "/"
        if not path.startswith("/"):
            raise ParameterError("ValidationException", f"a path must start with '/': {path}")
        prefix = path.rstrip("/") + "/"
        records = self.store.parameters(prefix)
        if recursive:
            return records
        return [r for r in records if "/" not in r.name[len(prefix):]]

    # --- labels and delete ------------------------------------------------------------------
    def label(self, name: str, labels, version: int | None = None) -> tuple[int, list[str]]:
        """LabelParameterVersion: attach `labels` to `version` (default: the latest), moving each off
        any other version. Returns (the version labelled, the labels refused as invalid)."""
        labels = list(dict.fromkeys(labels))
        if not 1 <= len(labels) <= MAX_LABELS_PER_CALL:
            raise ParameterError("ValidationException", f"give 1 to {MAX_LABELS_PER_CALL} labels at a time")
        history, target = self._version_of(name, version)
        valid = [label for label in labels if label_problem(label) is None]
        invalid = [label for label in labels if label_problem(label) is not None]
        if len(set(target.labels) | set(valid)) > MAX_LABELS_PER_VERSION:
            raise ParameterError("ParameterVersionLabelLimitExceeded",
                                 f"version {target.version} of {target.name} would carry more than "
                                 f"{MAX_LABELS_PER_VERSION} labels")
        attach = tuple((label, target.version) for label in valid if label not in target.labels)
        if attach:
            self._write(ParameterWrite(target.name, history[-1].version, labels=attach))
        return target.version, invalid

    def unlabel(self, name: str, version: int, labels) -> tuple[list[str], list[str]]:
        """UnlabelParameterVersion: returns (labels removed, labels that were not on that version)."""
        history, target = self._version_of(name, version)
        labels = list(dict.fromkeys(labels))
        removed = [label for label in labels if label in target.labels]
        if removed:
            # A (label, 0) pair in a ParameterWrite detaches the label.
            self._write(ParameterWrite(target.name, history[-1].version, labels=tuple((l, 0) for l in removed)))
        return removed, [label for label in labels if label not in target.labels]

    def delete(self, name: str) -> ParameterVersion:
        """DeleteParameter: the parameter and its whole history; returns the latest version it had."""
        record = self._existing(name)
        self._write(ParameterWrite(record.name, record.latest.version, delete=True))
        return record.latest

    # --- plumbing ---------------------------------------------------------------------------
    def _existing(self, name: str) -> ParameterRecord:
        name = checked_lookup(name)
        record = self.store.parameter(name)
        if record is None:
            raise ParameterError("ParameterNotFound", f"no parameter {name}")
        return record

    def _version_of(self, name: str, version: int | None) -> tuple[list[ParameterVersion], ParameterVersion]:
        history = self.history(name)
        number = history[-1].version if version is None else version
        target = next((v for v in history if v.version == number), None)
        if target is None:
            raise ParameterError("ParameterVersionNotFound", f"{history[-1].name} has no version {number}")
        return history, target

    def _write(self, write: ParameterWrite) -> None:
        self._counts = None
        try:
            self.store.write_parameter(write)
        except ParameterConflict:
            raise ParameterError("TooManyUpdates", f"{write.name} changed while this change was being made; "
                                                   "read it again and retry") from None

    def _public_key(self) -> PublicKey:
        if self._keys is not None:
            return self._keys.public
        if self._public is None:
            try:
                self._public = load_public(self.key_dir)
            except SecretError:
                if not (self.key_dir / PRIVATE_FILE).exists():
                    raise
                self._public = self._keypair().public
        return self._public

    def _keypair(self) -> KeyPair:
        if self._keys is None:
            self._keys = load_keypair(self.key_dir)
        return self._keys

    def _open(self, sealed: str | None) -> str:
        """A sealed value's plaintext (in memory only), if it was sealed for this controller's key."""
        try:
            key_id = sealed_key_id(sealed)
        except SecretError as exc:
            raise ParameterError("ValidationException", str(exc)) from None
        mine = self._public_key().key_id
        if key_id != mine:
            raise ParameterError("InvalidKeyId", f"the value was sealed for key {key_id}, but this controller's key "
                                                 f"is {mine}; seal it again with this controller's sealing.pub "
                                                 "(plumb secret seal)")
        keys = self._keypair()
        try:
            return unseal(sealed, keys)
        except SecretError as exc:
            raise ParameterError("ValidationException", str(exc)) from None


def checked_lookup(name: str) -> str:
    """A name to look up: trimmed and normalised (a name that cannot exist is simply not found)."""
    return normalise_name(name.strip())


def _attach(labels, result: ParameterVersion, kept: ParameterVersion | None):
    """(label writes, result with its labels): `labels` attached to the resulting version; `kept` is the
    current version when the put makes no new version (its labels stay)."""
    problems = [label for label in labels if label_problem(label)]
    if problems:
        raise ParameterError("ValidationException", f"invalid label(s) {', '.join(map(str, problems))}: "
                                                    f"{label_problem(problems[0])}")
    existing = set(kept.labels) if kept else set()
    combined = existing | set(labels)
    if len(combined) > MAX_LABELS_PER_VERSION:
        raise ParameterError("ParameterVersionLabelLimitExceeded", f"version {result.version} of {result.name} "
                                                                   f"would carry more than {MAX_LABELS_PER_VERSION} "
                                                                   "labels")
    writes = tuple((label, result.version) for label in sorted(set(labels) - existing))
    return writes, dataclasses.replace(result, labels=tuple(sorted(combined)))


def _evictions(name: str, history: list[ParameterVersion], moving) -> tuple[int, ...]:
    """The oldest versions to drop so a new one keeps the history at MAX_VERSIONS; refused (SSM's
    ParameterMaxVersionLimitExceeded) when one of them still carries a label."""
    excess = history[:max(0, len(history) + 1 - MAX_VERSIONS)]
    for old in excess:
        labelled = sorted(set(old.labels) - set(moving))
        if labelled:
            raise ParameterError("ParameterMaxVersionLimitExceeded",
                                 f"{name} already has {MAX_VERSIONS} versions and the oldest, version "
                                 f"{old.version}, carries the label(s) {', '.join(labelled)}: move or remove them "
                                 "(plumb param unlabel) before adding a version")
    return tuple(old.version for old in excess)
