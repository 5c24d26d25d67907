"""The SQLite store's Parameter Store tables: one transaction per ParameterWrite, and its guards."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from reconciler.store import open_store
from reconciler.store.base import AppliedRecord, ParameterConflict, ParameterVersion, ParameterWrite, StoreError
from reconciler.store.migrations import MIGRATIONS


def _version(name="/a", version=1, value="v", **fields):
    return ParameterVersion(name, version, fields.pop("type", "String"), value, fields.pop("sealed_value", None),
                            fields.pop("digest", "d" * 64), modified_at=f"2026-01-0{version % 9 + 1}T00:00:00Z",
                            **fields)


def test_migration_4_makes_the_parameter_tables(store):
    assert store.schema_version() >= 5
    tables = {row[0] for row in store._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"parameters", "parameter_versions", "parameter_labels"} <= tables


def test_writes_reads_and_labels(store):
    store.write_parameter(ParameterWrite("/a", 0, new_version=_version(policies=({"Type": "Expiration"},))))
    store.write_parameter(ParameterWrite("/a", 1, new_version=_version(version=2, value="w"),
                                         labels=(("prod", 2), ("old", 1))))
    record = store.parameter("/a")
    assert (record.latest.version, record.latest.value, record.latest.labels) == (2, "w", ("prod",))
    assert record.created_at == "2026-01-02T00:00:00Z"
    assert [v.labels for v in store.parameter_history("/a")] == [("old",), ("prod",)]
    assert store.parameter_history("/a")[0].policies == ({"Type": "Expiration"},)
    store.write_parameter(ParameterWrite("/a", 2, labels=(("old", 2), ("prod", 0))))  # move one, detach one
    assert [v.labels for v in store.parameter_history("/a")] == [(), ("old",)]


def test_metadata_change_rewrites_the_latest_version_in_place(store):
    store.write_parameter(ParameterWrite("/a", 0, new_version=_version()))
    changed = dataclasses.replace(_version(), description="new", tier="Advanced", modified_by="ops")
    store.write_parameter(ParameterWrite("/a", 1, metadata=changed, applied_hash="h", applied_at="t",
                                         applied_revision="r"))
    record = store.parameter("/a")
    assert (record.latest.description, record.latest.tier, record.latest.modified_by) == ("new", "Advanced", "ops")
    assert (record.applied_hash, record.applied_at, record.applied_revision) == ("h", "t", "r")
    with pytest.raises(StoreError, match="latest version"):
        store.write_parameter(ParameterWrite("/a", 1, metadata=dataclasses.replace(changed, version=3)))


def test_expected_version_is_checked_in_the_transaction(store):
    with pytest.raises(ParameterConflict):
        store.write_parameter(ParameterWrite("/a", 1, new_version=_version(version=2)))
    store.write_parameter(ParameterWrite("/a", 0, new_version=_version()))
    with pytest.raises(ParameterConflict):
        store.write_parameter(ParameterWrite("/a", 0, new_version=_version()))
    with pytest.raises(StoreError, match="must be 2"):
        store.write_parameter(ParameterWrite("/a", 1, new_version=_version(version=5)))
    assert [v.version for v in store.parameter_history("/a")] == [1]


def test_evict_and_delete(store):
    for n in (1, 2, 3):
        store.write_parameter(ParameterWrite("/a", n - 1, new_version=_version(version=n)))
    store.write_parameter(ParameterWrite("/a", 3, new_version=_version(version=4), evict=(1, 2)))
    assert [v.version for v in store.parameter_history("/a")] == [3, 4]
    store.write_parameter(ParameterWrite("/a", 4, labels=(("x", 4),)))
    store.write_parameter(ParameterWrite("/a", 4, delete=True))
    assert store.parameter("/a") is None and store.parameter_history("/a") == []
    assert store._db.execute("SELECT COUNT(*) FROM parameter_labels").fetchone()[0] == 0


def test_a_label_on_a_missing_version_is_refused_atomically(store):
    store.write_parameter(ParameterWrite("/a", 0, new_version=_version()))
    with pytest.raises(StoreError):
        store.write_parameter(ParameterWrite("/a", 1, new_version=_version(version=2), labels=(("x", 9),)))
    assert [v.version for v in store.parameter_history("/a")] == [1]  # rolled back


def test_a_secure_string_is_only_stored_sealed(store):
    plain = _version(type="SecureString", value="plaintext", sealed_value=None)
    with pytest.raises(StoreError, match="sealed"):
        store.write_parameter(ParameterWrite("/a", 0, new_version=plain))
    with pytest.raises(sqlite3.IntegrityError):  # and the table itself refuses it
        store._db.execute("INSERT INTO parameters VALUES ('/b', 't', '', '', '')")
        store._db.execute("INSERT INTO parameter_versions VALUES ('/b', 1, 'SecureString', 'plaintext', NULL, 'd', "
                          "'', 'Standard', '', 'text', '[]', 't', 'x', 'cli')")
    assert store.parameter("/a") is None


def test_prefixes_are_literal(store):
    for name in ("/a_b/x", "/aXb/y", "/a%/z"):
        store.write_parameter(ParameterWrite(name, 0, new_version=_version(name)))
    assert [r.name for r in store.parameters("/a_b/")] == ["/a_b/x"]
    assert [r.name for r in store.parameters("/a%")] == ["/a%/z"]
    assert [r.name for r in store.parameters()] == ["/a%/z", "/aXb/y", "/a_b/x"]


def test_last_applied_keeps_the_parameter_versions_a_resource_was_rendered_with(store):
    record = AppliedRecord("web-1", "files:/etc/app.env", "d", "o", "2026-01-01T00:00:00Z", "abc", "app", "f.yaml:3",
                           references=("/app/db/password:3", "/app/port:1"))
    store.record_applied([record, AppliedRecord("web-1", "files:/etc/motd", "d", "o", "t", "abc", "motd", "m:1")])
    found = store.last_applied("web-1")
    assert found["files:/etc/app.env"] == record and found["files:/etc/motd"].references == ()
    store.record_applied([dataclasses.replace(record, references=("/app/db/password:4",))])
    assert store.last_applied_by_node(["web-1"])["web-1"]["files:/etc/app.env"].references == ("/app/db/password:4",)


def test_a_store_from_before_the_parameter_store_upgrades_in_place(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
               "applied_at TEXT NOT NULL)")
    for version, name, sql in MIGRATIONS[:3]:
        for statement in filter(str.strip, sql.split(";")):
            db.execute(statement)
        db.execute("INSERT INTO schema_migrations VALUES (?, ?, 'then')", (version, name))
    db.execute("INSERT INTO last_applied VALUES ('n', 'files:/x', 'd', 'o', 't', 'r', 'a', 's')")
    db.commit()
    db.close()
    with open_store(f"sqlite:///{path}") as store:
        assert store.schema_version() >= 5
        assert store.last_applied("n")["files:/x"].references == ()
        assert store.parameters() == []
