"""Helpers for the executor tests: run a request in-process, build documents, load fixtures."""

from __future__ import annotations

from pathlib import Path

import yaml

from agent import executor

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ROOT / "tests" / "fixtures" / "documents"


def load_fixture(path: Path):
    return yaml.safe_load(path.read_text())


def fixture_paths(sub: str):
    return sorted((DOCUMENTS / sub).glob("*.yaml"))


class Run:
    """The events of one invocation, with lookups by step."""

    def __init__(self, events):
        self.events = events
        self.final = events[-1]

    def finished(self, step):
        return next(e for e in self.events if e["event"] == "step_finished" and e["step"] == step)

    def started(self):
        return [e["step"] for e in self.events if e["event"] == "step_started"]

    def output(self, step, stream="stdout"):
        return "".join(e["data"] for e in self.events if e["event"] == "step_output"
                       and e["step"] == step and e["stream"] == stream)


def execute(request):
    events = []
    executor.execute(request, events.append)
    return Run(events)


def shell_doc(*lines, parameters=None, **inputs):
    """A one-step aws:runShellScript document."""
    return {"schemaVersion": "2.2", "parameters": parameters or {},
            "mainSteps": [{"action": "aws:runShellScript", "name": "run",
                           "inputs": dict(inputs, runCommand=list(lines))}]}


def action_doc(action, **inputs):
    """A one-step document for a built-in plumb:* action."""
    return {"schemaVersion": "2.2",
            "mainSteps": [{"action": action, "name": "act", "inputs": inputs}]}
