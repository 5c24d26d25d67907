"""Versions, history, labels, selectors, GetParametersByPath, delete and concurrent writers."""

from __future__ import annotations

import pytest

from paramkit import error_of
from reconciler.parameters import MAX_VERSIONS, ParameterService, PutRequest, state_hash
from reconciler.store import open_store
from reconciler.store.base import ParameterConflict, ParameterWrite


# --- versions ------------------------------------------------------------------------------
def test_version_goes_up_only_when_the_value_changes(put, service):
    first = put("/v", "1", by="alice", now="2026-01-01T00:00:00Z")
    assert (first.version, first.modified_by, first.source) == (1, "alice", "cli")
    meta = put("/v", "1", description="now described", overwrite=True, by="bob", now="2026-01-02T00:00:00Z")
    assert (meta.version, meta.description, meta.modified_by, meta.modified_at) == \
        (1, "now described", "bob", "2026-01-02T00:00:00Z")
    assert [v.version for v in service.history("/v")] == [1]
    assert service.get("/v").description == "now described"  # rewritten in place
    same = put("/v", "1", overwrite=True, by="carol", now="2026-01-03T00:00:00Z")
    assert same == service.get("/v") and same.modified_by == "bob"  # identical put: nothing written
    second = put("/v", "2", overwrite=True, by="dave")
    assert second.version == 2 and second.description == "now described"  # kept from the latest
    assert [v.value for v in service.history("/v")] == ["1", "2"]


def test_history_keeps_100_versions_evicting_the_oldest(put, service):
    for n in range(1, MAX_VERSIONS + 2):
        put("/many", str(n), overwrite=True)
    history = service.history("/many")
    assert len(history) == MAX_VERSIONS
    assert (history[0].version, history[-1].version) == (2, MAX_VERSIONS + 1)
    assert error_of(service.get, "/many:1").code == "ParameterVersionNotFound"


def test_a_labelled_oldest_version_blocks_a_new_one(put, service):
    put("/full", "0")
    service.label("/full", ["keep"], version=1)
    for n in range(1, MAX_VERSIONS):
        put("/full", str(n), overwrite=True)
    error = error_of(put, "/full", "too many", overwrite=True)
    assert error.code == "ParameterMaxVersionLimitExceeded" and "keep" in error.message
    history = service.history("/full")
    assert len(history) == MAX_VERSIONS and history[-1].value == str(MAX_VERSIONS - 1)  # nothing written
    moved = put("/full", "moves the label", overwrite=True, labels=("keep",))  # the label moves in the same write
    assert moved.version == MAX_VERSIONS + 1 and moved.labels == ("keep",)
    assert service.history("/full")[0].version == 2


# --- labels --------------------------------------------------------------------------------
def test_labels_move_between_versions(put, service):
    put("/l", "a")
    put("/l", "b", overwrite=True)
    assert service.label("/l", ["prod", "blue"], version=1) == (1, [])
    assert service.get("/l:prod").version == 1
    assert service.label("/l", ["prod"]) == (2, [])  # latest by default
    history = service.history("/l")
    assert history[0].labels == ("blue",) and history[1].labels == ("prod",)
    assert service.get("/l", "prod").value == "b"


def test_invalid_labels_are_returned_not_fatal(put, service):
    put("/l", "a")
    bad = ["1starts-with-digit", "aws-x", "SSMy", "has space", "x" * 101, "slash/no"]
    version, invalid = service.label("/l", ["good.label_1-x", *bad])
    assert version == 1 and invalid == bad
    assert service.get("/l").labels == ("good.label_1-x",)
    assert service.label("/l", ["x" * 100]) == (1, [])


def test_label_limits(put, service):
    put("/l", "a")
    assert error_of(service.label, "/l", [f"l{i}" for i in range(11)]).code == "ValidationException"
    assert error_of(service.label, "/l", []).code == "ValidationException"
    service.label("/l", [f"l{i}" for i in range(10)])
    error = error_of(service.label, "/l", ["eleventh"])
    assert error.code == "ParameterVersionLabelLimitExceeded"
    assert service.label("/l", ["l0", "l9"]) == (1, [])  # already there: no more than 10
    assert error_of(service.label, "/l", ["x"], version=7).code == "ParameterVersionNotFound"
    assert error_of(service.label, "/nope", ["x"]).code == "ParameterNotFound"


def test_labels_in_a_put_request(put, service):
    put("/lp", "a", labels=("stable",))
    second = put("/lp", "b", overwrite=True, labels=("stable", "new"))
    assert second.labels == ("new", "stable") and service.history("/lp")[0].labels == ()
    same = put("/lp", "b", overwrite=True, labels=("extra",))  # no new version: added to the latest
    assert same.version == 2 and same.labels == ("extra", "new", "stable")
    assert error_of(put, "/lp", "c", overwrite=True, labels=("9bad",)).code == "ValidationException"
    many = tuple(f"m{i}" for i in range(8))
    assert error_of(put, "/lp", "b", overwrite=True, labels=many).code == "ParameterVersionLabelLimitExceeded"


def test_unlabel(put, service):
    put("/u", "a")
    service.label("/u", ["one", "two"])
    assert service.unlabel("/u", 1, ["one", "absent"]) == (["one"], ["absent"])
    assert service.get("/u").labels == ("two",)
    assert error_of(service.get, "/u:one").code == "ParameterVersionNotFound"
    assert error_of(service.unlabel, "/u", 5, ["two"]).code == "ParameterVersionNotFound"


# --- selectors -----------------------------------------------------------------------------
def test_selectors_never_fall_back(put, service):
    put("/sel", "a")
    put("/sel", "b", overwrite=True)
    service.label("/sel", ["old"], version=1)
    assert service.get("/sel:1").value == "a"
    assert service.get("/sel", "2").value == "b"
    assert service.get("sel:old").value == "a"
    assert service.get("/sel").value == "b"
    assert error_of(service.get, "/sel:3").code == "ParameterVersionNotFound"
    assert error_of(service.get, "/sel:missing").code == "ParameterVersionNotFound"
    assert error_of(service.get, "/nothing:1").code == "ParameterNotFound"
    assert error_of(service.get, "/nothing").code == "ParameterNotFound"


# --- GetParametersByPath -------------------------------------------------------------------
def test_list_by_path(put, service):
    for name in ("/a", "top", "/b/c", "/b/d/e", "/b/d/f", "/bb/x", "/b/d/g/h"):
        put(name, "v")
    names = lambda records: [r.name for r in records]  # noqa: E731
    assert names(service.list("/")) == ["/a", "/top"]
    assert names(service.list()) == ["/a", "/top"]
    assert names(service.list("/b")) == ["/b/c"]
    assert names(service.list("/b/")) == ["/b/c"]
    assert names(service.list("/b/d")) == ["/b/d/e", "/b/d/f"]
    assert names(service.list("/b", recursive=True)) == ["/b/c", "/b/d/e", "/b/d/f", "/b/d/g/h"]
    assert len(service.list("/", recursive=True)) == 7
    assert service.list("/b/c") == []  # a full name is not a path
    assert service.list("/nowhere", recursive=True) == []
    assert error_of(service.list, "b").code == "ValidationException"


def test_list_records_carry_latest_and_labels(put, service):
    put("/r/x", "1")
    put("/r/x", "2", overwrite=True)
    service.label("/r/x", ["prod"])
    [record] = service.list("/r")
    assert record.latest.version == 2 and record.latest.labels == ("prod",) and record.created_at


# --- delete --------------------------------------------------------------------------------
def test_delete_removes_history_and_labels(put, service, store):
    put("/del", "a")
    put("/del", "b", overwrite=True)
    service.label("/del", ["x"], version=1)
    assert service.delete("del").version == 2
    assert service.record("/del") is None and store.parameter_history("/del") == []
    assert error_of(service.get, "/del").code == "ParameterNotFound"
    assert error_of(service.delete, "/del").code == "ParameterNotFound"
    again = put("/del", "c")
    assert again.version == 1 and again.labels == ()
    counts = [store._db.execute(f"SELECT COUNT(*) FROM {t} WHERE name = '/del'").fetchone()[0]
              for t in ("parameter_versions", "parameter_labels")]
    assert counts == [1, 0]


# --- git writes and concurrency ------------------------------------------------------------
def test_a_write_from_git_records_what_was_applied(put, service):
    version = put("/g", "v", source="git", by="reconcile git:abc1234 manifests/p.yaml:3", revision="abc1234",
                  now="2026-02-01T00:00:00Z", labels=("stable",))
    record = service.record("/g")
    assert record.applied_hash == state_hash(version) == state_hash(record.latest)
    assert (record.applied_at, record.applied_revision, record.latest.source) == \
        ("2026-02-01T00:00:00Z", "abc1234", "git")
    put("/g", "by hand", overwrite=True)  # a CLI write leaves the applied state alone
    assert service.record("/g").applied_hash == state_hash(version)
    write, _ = service.plan_put(PutRequest("/g", "String", value="by hand", overwrite=True), by="r", source="git",
                                revision="def5678")
    assert write.applied_hash and write.new_version is None and write.applied_revision == "def5678"
    service.put(PutRequest("/g", "String", value="by hand", overwrite=True), by="r", source="git", revision="def")
    assert service.plan_put(PutRequest("/g", "String", value="by hand", overwrite=True), by="r",
                            source="git")[0] is None  # applied and identical: nothing to write


def test_a_stale_writer_gets_too_many_updates(put, store, db_url, key_dir):
    put("/race", "1")

    class Racing:
        """The store, but another controller writes between our read and our write."""

        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def write_parameter(self, write):
            with open_store(db_url) as other:
                ParameterService(other, key_dir).put(PutRequest("/race", "String", value="theirs", overwrite=True),
                                                     by="other")
            self.inner.write_parameter(write)

    racing = ParameterService(Racing(store), key_dir)
    error = error_of(racing.put, PutRequest("/race", "String", value="ours", overwrite=True), by="us")
    assert error.code == "TooManyUpdates"
    assert store.parameter("/race").latest.value == "theirs"
    with pytest.raises(ParameterConflict):
        store.write_parameter(ParameterWrite("/race", 0, delete=True))
