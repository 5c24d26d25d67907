"""A collector that fails, is missing its command, hangs or returns junk is `unknown`
with the reason; the other collectors still report."""

import time
import types

import pytest

from agent import inventory
from agent.collectors import COLLECTORS
from agent.collectors.base import CollectorError, Options, run


def fake(type_name, collect):
    return types.SimpleNamespace(TYPE_NAME=type_name, collect=collect)


@pytest.fixture
def registry(monkeypatch):
    def install(**collects):
        for type_name, collect in collects.items():
            monkeypatch.setitem(COLLECTORS, type_name, fake(type_name, collect))
    return install


def raises(options):
    raise RuntimeError("boom")


def missing_command(options):
    return run(["plumb-no-such-command", "--list"])


def failing_command(options):
    return run(["sh", "-c", "echo 'E: database locked' >&2; exit 3"])


def works(options):
    return [{"Name": "fine"}]


def test_failures_are_unknown_with_reasons_and_the_rest_is_ok(registry):
    registry(**{"AWS:Application": raises, "AWS:Service": missing_command, "AWS:Network": failing_command, "plumb:User": works})
    document = inventory.collect(["AWS:Application", "AWS:Service", "AWS:Network", "plumb:User"], Options())
    types_ = document["Types"]
    assert types_["AWS:Application"] == {"Status": "unknown", "Reason": "collector failed: RuntimeError: boom"}
    assert types_["AWS:Service"] == {"Status": "unknown", "Reason": "command not found: plumb-no-such-command"}
    assert types_["AWS:Network"] == {"Status": "unknown", "Reason": "sh exited 3: E: database locked"}
    assert types_["plumb:User"]["Status"] == "ok"
    assert types_["plumb:User"]["Content"] == [{"Name": "fine"}]


def test_command_timeout_is_a_reason(registry):
    registry(**{"plumb:Group": lambda options: run(["sleep", "5"], timeout=0.2)})
    report = inventory.collect(["plumb:Group"], Options())["Types"]["plumb:Group"]
    assert report == {"Status": "unknown", "Reason": "sleep timed out after 0.2s"}


def test_collector_still_running_at_the_deadline_is_unknown(registry):
    registry(**{"plumb:Group": lambda options: time.sleep(5) or [], "plumb:User": works})
    started = time.monotonic()
    document = inventory.collect(["plumb:Group", "plumb:User"], Options(), deadline=0.3)
    assert time.monotonic() - started < 2
    assert document["Types"]["plumb:Group"] == {"Status": "unknown", "Reason": "collector still running after 0.3s"}
    assert document["Types"]["plumb:User"]["Status"] == "ok"


def test_content_that_is_not_json_is_unknown(registry):
    registry(**{"plumb:User": lambda options: [{"Name": float("nan")}]})
    report = inventory.collect(["plumb:User"], Options())["Types"]["plumb:User"]
    assert report["Status"] == "unknown"
    assert report["Reason"].startswith("content is not JSON")


def test_collector_error_message_is_the_reason_verbatim(registry):
    def refuses(options):
        raise CollectorError("systemd is not running on this node")
    registry(**{"AWS:Service": refuses})
    report = inventory.collect(["AWS:Service"], Options())["Types"]["AWS:Service"]
    assert report == {"Status": "unknown", "Reason": "systemd is not running on this node"}
