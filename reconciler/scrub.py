"""Scrubbing secrets out of text that plumb did not write itself: step output, error
messages, anything a node or a program echoed back.

Renderers never print a secret because they only see digests; but a document may `echo`
a secret it was handed, and an error from a node may quote it. A Scrubber knows the
plaintexts handed out in this run and replaces each occurrence with the same marker
the renderers use, `(sensitive, sha256:xxxxxxxx)`. Secrets shorter than MIN_LENGTH are
not scrubbed (masking every "a" would make output unreadable; keep secrets long).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Iterable

MIN_LENGTH = 4


def marker(secret: str) -> str:
    return f"(sensitive, sha256:{hashlib.sha256(secret.encode('utf-8')).hexdigest()[:8]})"


class Scrubber:
    def __init__(self, secrets: Iterable[str] = ()):
        self._secrets: set[str] = set()
        self._pattern: re.Pattern | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        forms = {secret, secret.strip()}
        forms |= {line.strip() for line in secret.splitlines()}  # a multi-line secret echoed line by line
        new = {f for f in forms if len(f) >= MIN_LENGTH} - self._secrets
        if new:
            self._secrets |= new
            self._pattern = None

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def text(self, text: str | None) -> str | None:
        if not text or not self._secrets:
            return text
        if self._pattern is None:  # longest first, so a secret containing another is masked whole
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))
        return self._pattern.sub(lambda m: marker(m.group()), text)

    def value(self, value: Any) -> Any:
        """Every string inside a JSON-like value, scrubbed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value
