"""Values for display: the one place where a plan value becomes text, and where a secret
becomes a marker.

Every renderer in `reconciler.render` (text, JSON, JUnit, SARIF, Markdown) prints
FieldChange values and content diffs only through this module, so a sensitive value has
no other path to the output. A sensitive value is shown as `(sensitive, sha256:xxxxxxxx)`
(the first 8 hex digits of the sha256 of its UTF-8 bytes): a change stays visible, the
value does not. A sensitive resource never shows its content diff, only the content
hashes: `(sensitive content changed, sha256:aaaaaaaa -> sha256:bbbbbbbb)`.

Pure functions of their arguments; called only by the renderers.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from reconciler.planmodel import Digest, FieldChange, ResourcePlan

ABSENT = "(none)"  # a value that does not exist (before a create, after a delete)
HASH_FIELDS = frozenset({"sha256"})  # FieldChange names whose values are content digests
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def short_hash(value: Any) -> str:
    """First 8 hex digits of the sha256 of the value's UTF-8 bytes (non-strings: canonical JSON)."""
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode("utf-8")
    else:
        data = _canonical_json(value).encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:8]


def display(value: Any, sensitive: bool) -> str:
    """A value as one line of text: `"0644"`, `true`, `[1, 2]`, `(none)`, or the secret marker."""
    if value is None:
        return ABSENT
    if isinstance(value, Digest):  # a secret's digest, standing in for it: never shown as itself
        return f"(sensitive, sha256:{value[:8]})"
    if sensitive:
        return f"(sensitive, sha256:{short_hash(value)})"
    if isinstance(value, bytes):
        return f"({len(value)} bytes, sha256:{short_hash(value)})"
    return _canonical_json(value)


def json_value(value: Any, sensitive: bool) -> Any:
    """A value for machine output: itself (as plain JSON data, keys sorted) or the secret marker."""
    if value is None:
        return None
    if sensitive or isinstance(value, (bytes, Digest)):
        return display(value, sensitive)
    return json.loads(_canonical_json(value))


def change_record(change: FieldChange, resource: ResourcePlan) -> dict[str, Any]:
    """A field change for machine output: `{field, before, after, sensitive}`, redacted."""
    secret = is_sensitive(change, resource)
    if secret and change.field in HASH_FIELDS:  # the same short digests `content()` shows
        before, after = (None if v is None else _digest(v) for v in (change.before, change.after))
    else:
        before, after = json_value(change.before, secret), json_value(change.after, secret)
    return {"field": change.field, "before": before, "after": after, "sensitive": secret}


def is_sensitive(change: FieldChange, resource: ResourcePlan) -> bool:
    """A change is redacted when it is marked sensitive or belongs to a sensitive resource."""
    return change.sensitive or resource.sensitive


def shown_changes(resource: ResourcePlan) -> tuple[FieldChange, ...]:
    """The field changes to list; a sensitive resource's content hashes go into `content()`."""
    if not resource.sensitive:
        return resource.changes
    return tuple(c for c in resource.changes if c.field not in HASH_FIELDS)


def field_line(change: FieldChange, resource: ResourcePlan) -> str:
    """`mode: "0600" -> "0644"`, redacted where it must be."""
    secret = is_sensitive(change, resource)
    show = _short_digest if change.field in HASH_FIELDS and not secret else lambda v: display(v, secret)
    return f"{change.field}: {show(change.before)} -> {show(change.after)}"


def content(resource: ResourcePlan) -> str:
    """The content diff to show: the unified diff, or for a sensitive resource a hash marker."""
    if not resource.sensitive:
        return resource.content_diff
    digests = [c for c in resource.changes if c.field in HASH_FIELDS]
    if digests:
        change = digests[0]
        return f"(sensitive content changed, {_digest(change.before)} -> {_digest(change.after)})"
    return "(sensitive content changed)" if resource.content_diff else ""


def printable(text: str) -> str:
    """Text safe for a terminal: control characters (other than tab and newline) made visible."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _short_digest(value: Any) -> str:
    """A content digest cut to 8 hex digits for reading; anything else shown as a value."""
    if isinstance(value, str) and _HEX_DIGEST.fullmatch(value):
        return value[:8] + "…"
    return display(value, False)


def _digest(value: Any) -> str:
    if value is None:
        return ABSENT
    if isinstance(value, str) and _HEX_DIGEST.fullmatch(value):
        return f"sha256:{value[:8]}"
    return f"sha256:{short_hash(value)}"  # not a digest after all: never show it raw


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
