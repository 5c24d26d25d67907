"""SSM's status vocabularies as enums (reference/ssm.md 9.3), and how they aggregate.

Invocation `status` is the coarse state; `details` is the fine one (StatusDetails).
"""

from __future__ import annotations

import enum


class Status(str, enum.Enum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    DELAYED = "Delayed"
    SUCCESS = "Success"
    CANCELLED = "Cancelled"
    FAILED = "Failed"
    TIMED_OUT = "TimedOut"
    CANCELLING = "Cancelling"


class Details(str, enum.Enum):
    """Invocation StatusDetails."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    DELAYED = "Delayed"
    SUCCESS = "Success"
    DELIVERY_TIMED_OUT = "DeliveryTimedOut"
    EXECUTION_TIMED_OUT = "ExecutionTimedOut"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    UNDELIVERABLE = "Undeliverable"
    TERMINATED = "Terminated"
    INVALID_PLATFORM = "InvalidPlatform"
    ACCESS_DENIED = "AccessDenied"

    @property
    def status(self) -> Status:
        return _STATUS_OF[self]

    @property
    def terminal(self) -> bool:
        return self not in (Details.PENDING, Details.IN_PROGRESS, Details.DELAYED)

    @property
    def counts_as_error(self) -> bool:
        """Only Failed and ExecutionTimedOut count towards MaxErrors."""
        return self in (Details.FAILED, Details.EXECUTION_TIMED_OUT)


_STATUS_OF = {
    Details.PENDING: Status.PENDING,
    Details.IN_PROGRESS: Status.IN_PROGRESS,
    Details.DELAYED: Status.DELAYED,
    Details.SUCCESS: Status.SUCCESS,
    Details.DELIVERY_TIMED_OUT: Status.TIMED_OUT,
    Details.EXECUTION_TIMED_OUT: Status.TIMED_OUT,
    Details.FAILED: Status.FAILED,
    Details.CANCELLED: Status.CANCELLED,
    Details.UNDELIVERABLE: Status.FAILED,
    Details.TERMINATED: Status.FAILED,
    Details.INVALID_PLATFORM: Status.FAILED,
    Details.ACCESS_DENIED: Status.FAILED,
}

_NOT_COUNTED = (Details.UNDELIVERABLE, Details.INVALID_PLATFORM, Details.ACCESS_DENIED)


def command_outcome(details: list[Details], errors_exceeded: bool) -> tuple[Status, str]:
    """The command's (Status, StatusDetails) once every invocation is terminal (SSM 9.3)."""
    if not details:
        return Status.FAILED, "NoInstancesInTag"
    if all(d is Details.SUCCESS for d in details):
        return Status.SUCCESS, "Success"
    if all(d in _NOT_COUNTED or d is Details.SUCCESS for d in details) and any(d is Details.SUCCESS for d in details):
        return Status.SUCCESS, "Success"
    if errors_exceeded:
        timed_out = sum(d is Details.EXECUTION_TIMED_OUT for d in details)
        failed = sum(d is Details.FAILED for d in details)
        if timed_out > failed:
            return Status.TIMED_OUT, "ExecutionTimedOut"
        return Status.FAILED, "Failed"
    if all(d in _NOT_COUNTED for d in details):
        return Status.FAILED, details[0].value
    return Status.FAILED, "Incomplete"
