"""Package version comparison, pure: Debian (dpkg) and RPM ordering, plus version constraints.

Owns `compare_deb()` (dpkg's verrevcmp over epoch, upstream version and revision: `~`
sorts before everything, even the end; letters before other characters), `compare_rpm()`
(rpmvercmp over epoch:version-release, with `~` and `^`) and `Constraint`, the parsed
form of a manifest's `version:` (`1.2-3` or `=1.2-3` exact, `>=1.22` minimum). Standard
library only, no I/O. The controller needs the same ordering to plan version drift, but
import-linter forbids `reconciler` importing `agent`: it can vendor this file, or the
module can move to a package both sides may import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

# ---------------------------------------------------------------- Debian


def _deb_split(version: str) -> Tuple[int, str, str]:
    version = version.strip()
    epoch = 0
    if ":" in version:
        head, version = version.split(":", 1)
        epoch = int(head) if head.isdigit() else 0
    upstream, _, revision = version.rpartition("-")
    if not upstream:
        upstream, revision = revision, ""
    return epoch, upstream, revision


def _deb_order(c: str) -> int:
    if c.isdigit():
        return 0
    if c.isascii() and c.isalpha():
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256 if c else 0


def _verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _deb_order(a[i]) if i < len(a) else 0
            bc = _deb_order(b[j]) if j < len(b) else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i, j = i + 1, j + 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i, j = i + 1, j + 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return -1 if first_diff < 0 else 1
    return 0


def compare_deb(a: str, b: str) -> int:
    """-1, 0 or 1 as `dpkg --compare-versions a lt|eq|gt b`."""
    ea, ua, ra = _deb_split(a)
    eb, ub, rb = _deb_split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


# ---------------------------------------------------------------- RPM

def _isalnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def rpmvercmp(a: str, b: str) -> int:
    """rpm's rpmvercmp() on one field (version or release)."""
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        while i < len(a) and not _isalnum(a[i]) and a[i] not in "~^":
            i += 1
        while j < len(b) and not _isalnum(b[j]) and b[j] not in "~^":
            j += 1
        ca, cb = a[i:i + 1], b[j:j + 1]
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        if ca == "^" or cb == "^":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i, j = i + 1, j + 1
            continue
        if not (ca and cb):
            break
        rc, i, j = _rpm_segment(a, i, b, j)
        if rc:
            return rc
    if i >= len(a) and j >= len(b):
        return 0
    return -1 if i >= len(a) else 1


def _rpm_segment(a: str, i: int, b: str, j: int) -> Tuple[int, int, int]:
    isnum = a[i].isdigit()
    pred: Callable[[str], bool] = (lambda c: c.isdigit()) if isnum else \
        (lambda c: c.isascii() and c.isalpha())
    ei, ej = i, j
    while ei < len(a) and pred(a[ei]):
        ei += 1
    while ej < len(b) and pred(b[ej]):
        ej += 1
    sa, sb = a[i:ei], b[j:ej]
    if not sb:
        return (1 if isnum else -1), ei, ej
    if isnum:
        sa, sb = sa.lstrip("0"), sb.lstrip("0")
        if len(sa) != len(sb):
            return (1 if len(sa) > len(sb) else -1), ei, ej
    if sa != sb:
        return (1 if sa > sb else -1), ei, ej
    return 0, ei, ej


def _rpm_split(evr: str) -> Tuple[int, str, Optional[str]]:
    evr = evr.strip()
    epoch = 0
    if ":" in evr:
        head, evr = evr.split(":", 1)
        epoch = int(head) if head.isdigit() else 0
    version, sep, release = evr.rpartition("-")
    if not sep:
        return epoch, evr, None
    return epoch, version, release


def compare_rpm(a: str, b: str) -> int:
    """Compare [epoch:]version[-release]; a side without a release ignores releases (as rpm)."""
    ea, va, ra = _rpm_split(a)
    eb, vb, rb = _rpm_split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    rc = rpmvercmp(va, vb)
    if rc or ra is None or rb is None:
        return rc
    return rpmvercmp(ra, rb)


# ---------------------------------------------------------------- constraints

_CONSTRAINT = re.compile(r"^\s*(>=|=)?\s*([^\s<>=]+)\s*$")


@dataclass(frozen=True)
class Constraint:
    op: str        # "=" exact, ">=" minimum
    version: str

    def satisfied_by(self, installed: str, compare: Callable[[str, str], int]) -> bool:
        rc = compare(installed, self.version)
        return rc == 0 if self.op == "=" else rc >= 0

    def __str__(self) -> str:
        return "%s%s" % (self.op, self.version)


def parse_constraint(text: str) -> Constraint:
    """`1.2-3` and `=1.2-3` are exact, `>=1.22` is a minimum; anything else is ValueError."""
    match = _CONSTRAINT.match(text or "")
    if not match:
        raise ValueError("version %r: expected an exact version (1.2-3 or =1.2-3) or a "
                         "minimum (>=1.22)" % text)
    return Constraint(match.group(1) or "=", match.group(2))
