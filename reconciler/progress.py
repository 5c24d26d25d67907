"""Progress on a terminal: one status line rewritten in place, plus a line per finished node.

Quiet when the stream is not a terminal (CI logs get only the per-node lines) and
entirely silent with --output json. Used by the CLI only.
"""

from __future__ import annotations

import sys
from collections import Counter

from .termstyle import Style


class Progress:
    def __init__(self, total: int, noun: str, *, enabled: bool = True, stream=None):
        self.total = total
        self.noun = noun
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self.style = Style.for_stream(self.stream)
        self.running = 0
        self.done: Counter = Counter()

    def started(self) -> None:
        self.running += 1
        self._redraw()

    def finished(self, line: str, outcome: str) -> None:
        self.running -= 1
        self.done[outcome] += 1
        if self.enabled:
            self._clear()
            self.stream.write(line + "\n")
        self._redraw()

    def note(self, line: str) -> None:
        if self.enabled:
            self._clear()
            self.stream.write(line + "\n")
            self._redraw()

    def close(self) -> None:
        self._clear()
        self.stream.flush()

    def _redraw(self) -> None:
        if not self.live:
            return
        finished = sum(self.done.values())
        parts = ", ".join(f"{n} {k}" for k, n in sorted(self.done.items()))
        text = f"[{finished}/{self.total} {self.noun}] {self.running} in progress" + (f"; {parts}" if parts else "")
        self.stream.write("\r\033[K" + self.style.dim(text))
        self.stream.flush()

    def _clear(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")
