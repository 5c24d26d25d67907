"""Rate control with SSM's semantics (reference/ssm.md 9.2), as a pure state machine.

MaxConcurrency is a number of nodes or a percentage of the targets; dispatch ramps up
exponentially: 1 node, then 2 more, 4 more, ... until MaxConcurrency nodes are in flight.
MaxErrors is a number or percentage; only Failed and ExecutionTimedOut count. Once errors
exceed it, nothing new starts; running invocations finish and the rest are Terminated.
The engine asks `may_start()` and reports `started()` / `finished(details)`; no I/O here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .statuses import Details


def resolve_limit(value: str, targets: int, *, minimum: int) -> int:
    """"10" → 10; "25%" of 10 targets → 2 (floored, at least `minimum`)."""
    if value.endswith("%"):
        return max(minimum, math.floor(targets * int(value[:-1]) / 100))
    return int(value)


@dataclass
class RateController:
    """Decides when the next invocation may start.

    Ramp: waves of 1, 2, 4, 8, ... invocations; a wave opens once every invocation
    started so far has been acknowledged (the node's agent accepted the document, or the
    invocation ended without reaching it). In flight never exceeds MaxConcurrency.
    """

    targets: int
    max_concurrency: int
    max_errors: int
    in_flight: int = 0
    started_total: int = 0
    acknowledged_total: int = 0
    errors: int = 0
    opened: int = 1  # invocations the ramp allows to have started so far
    next_wave: int = 2

    @classmethod
    def from_strings(cls, targets: int, max_concurrency: str, max_errors: str) -> "RateController":
        concurrency = resolve_limit(max_concurrency, targets, minimum=1)
        errors = resolve_limit(max_errors, targets, minimum=0)
        return cls(targets=targets, max_concurrency=max(1, concurrency), max_errors=errors)

    @property
    def stopped(self) -> bool:
        """True once errors exceed MaxErrors: nothing new may start."""
        return self.errors > self.max_errors

    def may_start(self) -> bool:
        return (not self.stopped and self.started_total < self.targets
                and self.in_flight < self.max_concurrency and self.started_total < self.opened)

    def started(self) -> None:
        self.in_flight += 1
        self.started_total += 1

    def acknowledged(self) -> None:
        self.acknowledged_total += 1
        if self.acknowledged_total >= self.opened:
            self.opened += self.next_wave
            self.next_wave *= 2

    def finished(self, details: Details, *, acknowledged: bool) -> None:
        """An invocation ended; `acknowledged` says whether acknowledged() was already called for it."""
        self.in_flight -= 1
        if not acknowledged:
            self.acknowledged()
        if details.counts_as_error:
            self.errors += 1
