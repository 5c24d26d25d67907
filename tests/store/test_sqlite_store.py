"""The SQLite store on a real database file: migrations, WAL, inventory, Run Command records."""

from __future__ import annotations

import sqlite3

import pytest

from reconciler.store import CommandRecord, StepRecord, StoreError, open_store
from reconciler.store.sqlite import inventory_fingerprint


def _doc(version="1.0", update="1.1"):
    return {
        "SchemaVersion": "1.0", "AgentVersion": "0.1.0", "CaptureTime": "2026-11-22T10:00:00Z",
        "Node": {"ComputerName": "web-1"},
        "Types": {
            "AWS:Application": {"Status": "ok", "ContentHash": f"h-{version}",
                                "Content": [{"Name": "nginx", "Version": version}]},
            "plumb:AvailableUpdate": {"Status": "ok", "ContentHash": f"u-{update}",
                                      "Content": [{"Name": "nginx", "CandidateVersion": update}]},
        },
    }


@pytest.fixture
def store(tmp_path):
    with open_store(f"sqlite:///{tmp_path}/state.db") as s:
        yield s


def test_creates_database_with_wal_and_migrations(tmp_path):
    path = tmp_path / "sub" / "state.db"
    store = open_store(f"sqlite:///{path}")
    version = store.schema_version()
    assert version >= 1
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert open_store(f"sqlite:///{path}").schema_version() == version  # idempotent


def test_refuses_a_database_from_a_newer_plumb(tmp_path):
    path = tmp_path / "state.db"
    open_store(f"sqlite:///{path}").close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'now')")
    db.commit()
    with pytest.raises(StoreError, match="newer plumb"):
        open_store(f"sqlite:///{path}")


def test_bad_urls_are_clear_errors():
    with pytest.raises(StoreError, match="expected sqlite:///"):
        open_store("mysql://x")
    with pytest.raises(StoreError, match="not available yet"):
        open_store("postgresql://localhost/plumb")


def test_inventory_roundtrip_and_latest(store):
    first = store.save_inventory("web-1", _doc("1.0"))
    second = store.save_inventory("web-1", _doc("1.2"))
    latest = store.latest_inventory("web-1")
    assert latest.snapshot_id == second.snapshot_id != first.snapshot_id
    assert latest.document["Types"]["AWS:Application"]["Content"][0]["Version"] == "1.2"
    assert store.latest_inventory("nope") is None
    assert store.inventory_nodes() == [("web-1", "2026-11-22T10:00:00Z")]


def test_fingerprint_follows_content_not_capture_time():
    a, b = _doc(), _doc()
    b["CaptureTime"] = "2030-01-01T00:00:00Z"
    assert inventory_fingerprint(a) == inventory_fingerprint(b)
    assert inventory_fingerprint(a) != inventory_fingerprint(_doc("2.0"))


def test_first_seen_keeps_the_first_observation(store):
    store.save_inventory("web-1", _doc(update="1.1"))
    later = _doc(update="1.1")
    later["CaptureTime"] = "2026-12-01T00:00:00Z"
    store.save_inventory("web-1", later)
    assert store.first_seen("web-1", "update", "nginx=1.1") == "2026-11-22T10:00:00Z"
    assert store.first_seen("web-1", "package", "nginx=1.0") == "2026-11-22T10:00:00Z"
    assert store.first_seen("web-2", "update", "nginx=1.1") is None


def test_command_invocations_and_steps(store):
    command = CommandRecord("c-1", "AWS-RunShellScript", "abc", {"commands": ["uptime"]}, ["tag:role=web"],
                            "50%", "0", "2026-11-22T10:00:00Z")
    store.create_command(command, ["web-1", "web-2"])
    store.update_invocation("c-1", "web-1", status="InProgress", status_details="InProgress",
                            started_at="2026-11-22T10:00:01Z")
    store.add_step("c-1", "web-1", StepRecord("run", "aws:runShellScript", "Success", 0, "ok\n", "",
                                              started_at="t0", finished_at="t1", details={"a": 1}))
    store.update_invocation("c-1", "web-1", status="Success", status_details="Success", response_code=0,
                            finished_at="2026-11-22T10:00:02Z")
    store.update_invocation("c-1", "web-2", status="Failed", status_details="Undeliverable",
                            message="web-2: unreachable")
    store.finish_command("c-1", "Success", "Success", "2026-11-22T10:00:03Z")
    got = store.get_command("c-1")
    assert got.status == "Success" and got.target_count == 2
    web1, web2 = got.invocations
    assert web1.started_at == "2026-11-22T10:00:01Z" and web1.response_code == 0
    assert web1.steps[0].stdout == "ok\n" and web1.steps[0].details == {"a": 1}
    assert web2.status_details == "Undeliverable" and web2.message == "web-2: unreachable"
    assert [c.command_id for c in store.list_commands()] == ["c-1"]
    with pytest.raises(StoreError):
        store.update_invocation("c-1", "nope", status="Success", status_details="Success")


def test_writes_are_durable_across_connections(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    writer = open_store(url)
    writer.save_inventory("web-1", _doc())
    reader = open_store(url)  # a second process would see the same
    assert reader.latest_inventory("web-1") is not None


def test_last_applied_events_and_compliance(store):
    from reconciler.store import AppliedRecord, ComplianceItem, ResourceEvent

    record = AppliedRecord("web-1", "files:/etc/motd", "d1", "o1", "2026-11-22T10:00:00Z", "abc123", "motd",
                           "manifests/a.yaml:12")
    event = ResourceEvent("web-1", "files:/etc/motd", "changed", "2026-11-22T10:00:00Z", "abc123", "motd",
                          "manifests/a.yaml:12", "content")
    store.record_applied([record], [event])
    store.record_applied([AppliedRecord(**{**record.__dict__, "desired_hash": "d2"})])
    assert store.last_applied("web-1")["files:/etc/motd"].desired_hash == "d2"
    assert store.resource_events("web-1") == [event]
    item = ComplianceItem("web-1", "Association", "motd", "COMPLIANT", "HIGH", "e1", "2026-11-22T10:00:00Z",
                          "motd", {"resources": 3})
    store.put_compliance("web-1", "Association", [item])
    store.put_compliance("web-1", "Association", [ComplianceItem(**{**item.__dict__, "status": "NON_COMPLIANT"})])
    (current,) = store.compliance("Association")
    assert current.status == "NON_COMPLIANT" and current.details == {"resources": 3}


def test_leases_exclude_a_second_owner_but_not_a_dead_one(store):
    assert store.acquire_lease("web-1", "run-a", 60) is None
    assert store.acquire_lease("web-1", "run-a", 60) is None  # re-entrant for the same owner
    assert "run-a" in store.acquire_lease("web-1", "run-b", 60)
    store.release_lease("web-1", "run-a")
    assert store.acquire_lease("web-1", "run-b", 60) is None
    store._db.execute("UPDATE leases SET pid = 999999999")  # a holder that no longer exists
    assert store.acquire_lease("web-1", "run-c", 60) is None


def test_a_command_left_in_progress_by_a_dead_controller_is_marked_cancelled(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    with open_store(url) as store:
        store.create_command(CommandRecord("c-dead", "AWS-RunShellScript", "h", {}, [], "1", "0", "t0",
                                           status="InProgress", status_details="InProgress"), ["n1", "n2"])
        store.update_invocation("c-dead", "n1", status="Success", status_details="Success")
        store._db.execute("UPDATE commands SET controller = ? WHERE command_id = 'c-dead'",
                          (f"{__import__('socket').gethostname()}:999999999",))
        store.create_command(CommandRecord("c-live", "AWS-RunShellScript", "h", {}, [], "1", "0", "t1",
                                           status="InProgress", status_details="InProgress"), ["n1"])
    with open_store(url) as store:
        dead = store.get_command("c-dead")
        assert dead.status == "Cancelled"
        assert [(i.node, i.status) for i in dead.invocations] == [("n1", "Success"), ("n2", "Cancelled")]
        assert "controller stopped" in dead.invocations[1].message
        assert store.get_command("c-live").status == "InProgress", "its controller (this test) is alive"


def test_inventory_contents_are_stored_once_and_read_back_whole(store, tmp_path):
    import copy

    first, second = _doc(), _doc()
    second["Node"] = {"ComputerName": "web-2"}
    store.save_inventory("web-1", copy.deepcopy(first))
    store.save_inventory("web-2", copy.deepcopy(second))
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT COUNT(*) FROM inventory_contents").fetchone()[0] == 2  # shared by both nodes
        assert "nginx" not in db.execute("SELECT document FROM inventory_snapshots LIMIT 1").fetchone()[0]
    assert store.latest_inventory("web-1").document == first
    both = store.latest_inventories(["web-1", "web-2"])
    assert both["web-2"].document == second
    assert both["web-1"].document["Types"]["AWS:Application"]["Content"] == first["Types"]["AWS:Application"]["Content"]


def test_a_forged_content_hash_cannot_stand_in_for_another_nodes_content(store):
    forged = _doc(version="6.6.6")
    forged["Types"]["AWS:Application"]["ContentHash"] = "h-1.0"  # claims web-1's hash, other content
    store.save_inventory("evil", forged)
    store.save_inventory("web-1", _doc())
    assert store.latest_inventory("web-1").document["Types"]["AWS:Application"]["Content"] == \
        [{"Name": "nginx", "Version": "1.0"}]
    assert store.latest_inventory("evil").document["Types"]["AWS:Application"]["Content"] == \
        [{"Name": "nginx", "Version": "6.6.6"}]
