"""Run Command: send a Command document to many nodes with SSM's rate controls.

One invocation per node. Dispatch follows `RateController` (exponential ramp,
MaxConcurrency, MaxErrors); every state change is written to the store as it happens, so
an interrupted run leaves an exact record. Events go to a callback for the CLI to render.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..kinds.base import thaw
from ..kinds.document import Document
from ..kinds.node import Node
from ..scrub import Scrubber
from ..ratecontrol import RateController
from ..statuses import Details, command_outcome
from ..store import CommandRecord, StepRecord, Store
from ..store.sqlite import utcnow
from ..transport import TransportError, session_for

_AGENT_STATUS = {"Success": Details.SUCCESS, "Failed": Details.FAILED, "TimedOut": Details.EXECUTION_TIMED_OUT,
                 "Cancelled": Details.CANCELLED}
_AGENT_DETAILS = {"ExecutionTimedOut": Details.EXECUTION_TIMED_OUT, "InvalidPlatform": Details.INVALID_PLATFORM}


@dataclass(frozen=True)
class Event:
    """What the CLI hears: kind is started | step | finished | terminated."""

    kind: str
    node: str
    details: Details | None = None
    message: str = ""
    step: StepRecord | None = None


@dataclass
class RunRequest:
    document: Document
    parameters: dict
    nodes: Sequence[Node]
    targets: list[str]
    max_concurrency: str = "50"
    max_errors: str = "0"
    command_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    recorded_parameters: dict | None = None  # what the record keeps: as given, references unresolved
    content: dict | None = None  # the document to send, when plumb rewrote it (docparams.inline_references)
    scrubber: Scrubber = field(default_factory=Scrubber)  # secrets handed out: masked in all output


def document_hash(document: Document) -> str:
    canonical = json.dumps(thaw(document.content), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def run(request: RunRequest, store: Store, on_event: Callable[[Event], None] = lambda e: None) -> str:
    """Run the command to completion; returns its command id (the record is in the store)."""
    nodes = list(request.nodes)
    recorded = request.recorded_parameters if request.recorded_parameters is not None else request.parameters
    record = CommandRecord(request.command_id, request.document.name, document_hash(request.document),
                           recorded, request.targets, request.max_concurrency, request.max_errors,
                           utcnow(), status="InProgress", status_details="InProgress")
    store.create_command(record, [n.name for n in nodes])
    control = RateController.from_strings(len(nodes), request.max_concurrency, request.max_errors)
    outcomes: dict[str, Details] = {}
    acked = asyncio.Event()  # set when an invocation is acknowledged: the ramp may open a wave
    pending = list(nodes)
    running: set[asyncio.Task] = set()

    async def one(node: Node) -> None:
        outcomes[node.name] = await _invoke(request, node, store, on_event, control, acked)

    while pending or running:
        while pending and control.may_start():
            control.started()
            running.add(asyncio.create_task(one(pending.pop(0))))
        if not running:
            break  # nothing in flight and nothing may start: stopped by MaxErrors
        waiter = asyncio.create_task(acked.wait())
        done, _ = await asyncio.wait(running | {waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        for task in done - {waiter}:
            running.discard(task)
            task.result()  # a bug in _invoke must surface, not vanish
        acked.clear()
    for node in pending:  # never started: MaxErrors exceeded
        outcomes[node.name] = Details.TERMINATED
        store.update_invocation(request.command_id, node.name, status=Details.TERMINATED.status.value,
                                status_details=Details.TERMINATED.value,
                                message="not run: the command exceeded MaxErrors", finished_at=utcnow())
        on_event(Event("terminated", node.name, Details.TERMINATED, "not run: the command exceeded MaxErrors"))
    status, details = command_outcome([outcomes[n.name] for n in nodes], control.stopped)
    store.finish_command(request.command_id, status.value, details, utcnow())
    return request.command_id


async def _invoke(request: RunRequest, node: Node, store: Store, on_event, control: RateController,
                  acked: asyncio.Event) -> Details:
    command_id = request.command_id
    started = utcnow()
    store.update_invocation(command_id, node.name, status="InProgress", status_details="InProgress",
                            started_at=started)
    on_event(Event("started", node.name))
    session = session_for(node)
    try:
        try:
            await session.open()
        except TransportError as exc:
            return _finish(store, command_id, node, Details.UNDELIVERABLE, str(exc), on_event, control, False)
        control.acknowledged()
        acked.set()

        def on_agent_event(event: dict) -> None:
            if event.get("event") == "step_finished":
                step = _step_record(event, request.scrubber)
                store.add_step(command_id, node.name, step)
                on_event(Event("step", node.name, step=step))

        content = request.content if request.content is not None else thaw(request.document.content)
        request_body = {"document": content, "parameters": request.parameters,
                        "invocationId": f"{command_id}:{node.name}"}
        try:
            result = await session.execute(request_body, on_event=on_agent_event)
        except TransportError as exc:
            message = request.scrubber.text(str(exc))
            if exc.reason == "connection_lost":
                message += " (the command may have partly run)"
            details = Details.EXECUTION_TIMED_OUT if exc.reason == "timeout" else Details.FAILED
            return _finish(store, command_id, node, details, message, on_event, control, True)
        details = _AGENT_DETAILS.get(result.get("statusDetails")) or _AGENT_STATUS.get(result.get("status"),
                                                                                          Details.FAILED)
        return _finish(store, command_id, node, details, request.scrubber.text(result.get("message", "")), on_event,
                       control, True,
                       response_code=result.get("exitCode"))
    finally:
        await session.close()


def _finish(store, command_id, node, details: Details, message, on_event, control, acknowledged,
            response_code=None) -> Details:
    store.update_invocation(command_id, node.name, status=details.status.value, status_details=details.value,
                            response_code=response_code, message=message, finished_at=utcnow())
    control.finished(details, acknowledged=acknowledged)
    on_event(Event("finished", node.name, details, message))
    return details


def _step_record(event: dict, clean: Scrubber) -> StepRecord:
    return StepRecord(
        name=event.get("step", ""), action=event.get("action", ""), status=event.get("status", ""),
        response_code=event.get("exitCode"), stdout=clean.text(event.get("stdout", "")),
        stderr=clean.text(event.get("stderr", "")), full_stdout=clean.text(event.get("fullStdout")),
        full_stderr=clean.text(event.get("fullStderr")), changed=event.get("changed"),
        details=clean.value(event.get("details") or {}), started_at=event.get("startedAt", ""),
        finished_at=event.get("finishedAt", ""))
