"""The embedded SQLite store (`sqlite:///.plumb/state.db`): WAL, migrations, durable writes.

Each public write is one transaction, committed before the call returns, so a process
killed at any point leaves every earlier write intact and nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

from ..secrets import is_sealed
from .base import (AppliedRecord, CommandRecord, ComplianceItem, InventorySnapshot, InvocationRecord, ParameterConflict,
                   ParameterRecord, ParameterVersion, ParameterWrite, ResourceEvent, StepRecord, Store, StoreError)
from .migrations import MIGRATIONS


def utcnow() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def path_of(url: str) -> str:
    """`sqlite:///rel/path.db` → `rel/path.db`; `sqlite:////abs/path.db` → `/abs/path.db`."""
    rest = url[len("sqlite://"):]
    if not rest.startswith("/"):
        raise StoreError(f"cannot read state URL '{url}': expected sqlite:///path/to/state.db")
    path = rest[1:]
    if not path:
        raise StoreError(f"state URL '{url}' names no file")
    return path


_APPLIED_COLUMNS = ("node, address, desired_hash, observed_hash, applied_at, git_revision, association, source, "
                    "parameter_refs")


def _applied(row) -> AppliedRecord:
    """An AppliedRecord from the _APPLIED_COLUMNS of a row."""
    refs = row[8]
    return AppliedRecord(*row[:8], references=() if refs == "[]" else tuple(json.loads(refs)))  # most have none


class _ReconcileRecords:
    """Last-applied state, resource history, compliance and node leases (mixed into SQLiteStore)."""

    _db: sqlite3.Connection

    def last_applied(self, node: str) -> dict[str, AppliedRecord]:
        rows = self._db.execute(f"SELECT {_APPLIED_COLUMNS} FROM last_applied WHERE node = ?", (node,))
        return {r[1]: _applied(r) for r in rows}

    def last_applied_by_node(self, nodes) -> dict[str, dict[str, AppliedRecord]]:
        found: dict[str, dict[str, AppliedRecord]] = {node: {} for node in nodes}
        for chunk in _chunks(list(found)):
            rows = self._db.execute(f"SELECT {_APPLIED_COLUMNS} FROM last_applied WHERE node IN ({_marks(chunk)})",
                                    chunk)
            for r in rows:
                found[r[0]][r[1]] = _applied(r)
        return found

    def record_applied(self, records, events=()) -> None:
        with _Transaction(self._db):
            self._db.executemany(
                f"INSERT INTO last_applied ({_APPLIED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(node, address) DO UPDATE SET "
                "desired_hash=excluded.desired_hash, observed_hash=excluded.observed_hash, "
                "applied_at=excluded.applied_at, git_revision=excluded.git_revision, "
                "association=excluded.association, source=excluded.source, parameter_refs=excluded.parameter_refs",
                [(r.node, r.address, r.desired_hash, r.observed_hash, r.applied_at, r.git_revision, r.association,
                  r.source, json.dumps(list(r.references))) for r in records])
            self._insert_events(events)

    def record_events(self, events) -> None:
        with _Transaction(self._db):
            self._insert_events(events)

    def _insert_events(self, events) -> None:
        self._db.executemany(
            "INSERT INTO resource_events (node, address, event, at, git_revision, association, source, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(e.node, e.address, e.event, e.at, e.git_revision, e.association, e.source, e.detail) for e in events])

    def resource_events(self, node: str, limit: int = 1000) -> list[ResourceEvent]:
        rows = self._db.execute("SELECT node, address, event, at, git_revision, association, source, detail FROM "
                                "resource_events WHERE node = ? ORDER BY id LIMIT ?", (node, limit))
        return [ResourceEvent(*r) for r in rows]

    def put_compliance(self, node: str, compliance_type: str, items) -> None:
        items = list(items)
        with _Transaction(self._db):
            self._db.execute("DELETE FROM compliance WHERE node = ? AND compliance_type = ?", (node, compliance_type))
            self._db.executemany(
                "INSERT INTO compliance VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(i.node, i.compliance_type, i.item_id, i.status, i.severity, i.execution_id, i.execution_time,
                  i.title, json.dumps(i.details, sort_keys=True)) for i in items])
            self._db.executemany(
                "INSERT INTO compliance_history (node, compliance_type, item_id, status, severity, execution_id, "
                "execution_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(i.node, i.compliance_type, i.item_id, i.status, i.severity, i.execution_id, i.execution_time)
                 for i in items])

    def compliance(self, compliance_type: str | None = None, node: str | None = None) -> list[ComplianceItem]:
        where = [(clause, value) for clause, value in (("node = ?", node), ("compliance_type = ?", compliance_type))
                 if value]
        query = "SELECT * FROM compliance" + (" WHERE " + " AND ".join(c for c, _ in where) if where else "")
        rows = self._db.execute(query + " ORDER BY node, compliance_type, item_id", [v for _, v in where])
        return [ComplianceItem(*r[:8], details=json.loads(r[8])) for r in rows]

    def acquire_lease(self, node: str, owner: str, ttl_seconds: int) -> str | None:
        now = datetime.now(timezone.utc)
        expires = (now + timedelta(seconds=ttl_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
        host = socket.gethostname()
        with _Transaction(self._db):
            row = self._db.execute("SELECT owner, pid, host, expires_at FROM leases WHERE node = ?", (node,)).fetchone()
            if row and row[0] != owner and not _lease_is_stale(row, host, now):
                return f"{row[0]} (pid {row[1]} on {row[2]}, until {row[3]})"
            self._db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?)",
                             (node, owner, os.getpid(), host, utcnow(), expires))
        return None

    def release_lease(self, node: str, owner: str) -> None:
        with _Transaction(self._db):
            self._db.execute("DELETE FROM leases WHERE node = ? AND owner = ?", (node, owner))


_VERSION_COLUMNS = ("version, type, value, sealed_value, digest, description, tier, allowed_pattern, data_type, "
                    "policies, modified_at, modified_by, source")


class _ParameterStore:
    """Parameter Store tables (mixed into SQLiteStore): parameters, their versions and labels.

    SSM's rules live in `reconciler.parameters`; this class only carries out a
    ParameterWrite atomically. A label written as (label, 0) is detached (UnlabelParameterVersion).
    """

    _db: sqlite3.Connection

    def parameter(self, name: str) -> ParameterRecord | None:
        records = self._parameter_records("p.name = ?", (name,))
        return records[0] if records else None

    def parameters(self, prefix: str = "/") -> list[ParameterRecord]:
        return self._parameter_records("substr(p.name, 1, ?) = ?", (len(prefix), prefix))

    def _parameter_records(self, where: str, args: tuple) -> list[ParameterRecord]:
        rows = self._db.execute(
            f"SELECT p.name, p.created_at, p.applied_hash, p.applied_at, p.applied_revision, {_VERSION_COLUMNS} "
            "FROM parameters p JOIN parameter_versions v ON v.name = p.name AND v.version = "
            f"(SELECT MAX(version) FROM parameter_versions WHERE name = p.name) WHERE {where} ORDER BY p.name",
            args).fetchall()
        labels = self._labels(f"l.name IN (SELECT p.name FROM parameters p WHERE {where})", args)
        return [ParameterRecord(_parameter_version(r[0], r[5:], labels), r[1], r[2], r[3], r[4]) for r in rows]

    def parameter_history(self, name: str) -> list[ParameterVersion]:
        rows = self._db.execute(f"SELECT {_VERSION_COLUMNS} FROM parameter_versions WHERE name = ? ORDER BY version",
                                (name,))
        labels = self._labels("l.name = ?", (name,))
        return [_parameter_version(name, r, labels) for r in rows]

    def _labels(self, where: str, args: tuple) -> dict[tuple[str, int], tuple[str, ...]]:
        found: dict[tuple[str, int], list[str]] = {}
        for name, label, version in self._db.execute(
                f"SELECT l.name, l.label, l.version FROM parameter_labels l WHERE {where} ORDER BY l.label", args):
            found.setdefault((name, version), []).append(label)
        return {key: tuple(value) for key, value in found.items()}

    def write_parameter(self, write: ParameterWrite) -> None:
        try:
            self._write_parameter(write)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"parameter {write.name}: the write breaks the store's integrity ({exc})") from None

    def _write_parameter(self, write: ParameterWrite) -> None:
        db, name = self._db, write.name
        with _Transaction(db):
            exists = db.execute("SELECT 1 FROM parameters WHERE name = ?", (name,)).fetchone() is not None
            latest = db.execute("SELECT MAX(version) FROM parameter_versions WHERE name = ?", (name,)).fetchone()[0]
            current = (latest or 0) if exists else 0
            if current != write.expected_version:
                raise ParameterConflict(f"parameter {name} is at version {current}, not {write.expected_version}: "
                                        "it changed since it was read")
            if write.delete:
                db.execute("DELETE FROM parameters WHERE name = ?", (name,))  # versions and labels cascade
                return
            if write.new_version is not None:
                self._insert_version(write, exists)
            if write.metadata is not None:
                self._update_metadata(write.metadata, current)
            if write.evict:
                db.executemany("DELETE FROM parameter_versions WHERE name = ? AND version = ?",
                               [(name, v) for v in write.evict])
            for label, version in write.labels:
                if version:
                    db.execute("INSERT INTO parameter_labels VALUES (?, ?, ?) ON CONFLICT(name, label) "
                               "DO UPDATE SET version = excluded.version", (name, label, version))
                else:
                    db.execute("DELETE FROM parameter_labels WHERE name = ? AND label = ?", (name, label))
            if write.applied_hash is not None:
                db.execute("UPDATE parameters SET applied_hash = ?, applied_at = ?, applied_revision = ? "
                           "WHERE name = ?", (write.applied_hash, write.applied_at, write.applied_revision, name))

    def _insert_version(self, write: ParameterWrite, exists: bool) -> None:
        new = write.new_version
        if new.name != write.name or new.version != write.expected_version + 1:
            raise StoreError(f"parameter {write.name}: a new version must be {write.expected_version + 1} "
                             f"of {write.name}, not {new.version} of {new.name}")
        if new.type == "SecureString" and (new.value is not None or not is_sealed(new.sealed_value)):
            raise StoreError(f"parameter {write.name}: a SecureString is only ever stored sealed")
        if not exists:
            self._db.execute("INSERT INTO parameters (name, created_at) VALUES (?, ?)", (new.name, new.modified_at))
        self._db.execute(f"INSERT INTO parameter_versions (name, {_VERSION_COLUMNS}) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (new.name, new.version, new.type, new.value, new.sealed_value, new.digest, new.description,
                          new.tier, new.allowed_pattern, new.data_type, json.dumps(list(new.policies), sort_keys=True),
                          new.modified_at, new.modified_by, new.source))

    def _update_metadata(self, meta: ParameterVersion, current: int) -> None:
        if meta.version != current:
            raise StoreError(f"parameter {meta.name}: a metadata change applies to the latest version ({current}), "
                             f"not {meta.version}")
        self._db.execute("UPDATE parameter_versions SET description = ?, tier = ?, allowed_pattern = ?, data_type = ?, "
                         "policies = ?, modified_at = ?, modified_by = ?, source = ? WHERE name = ? AND version = ?",
                         (meta.description, meta.tier, meta.allowed_pattern, meta.data_type,
                          json.dumps(list(meta.policies), sort_keys=True), meta.modified_at, meta.modified_by,
                          meta.source, meta.name, meta.version))


def _parameter_version(name: str, row, labels: dict) -> ParameterVersion:
    """A ParameterVersion from the _VERSION_COLUMNS of a row."""
    version = row[0]
    return ParameterVersion(name, version, row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8],
                            tuple(json.loads(row[9])), labels.get((name, version), ()), row[10], row[11], row[12])


def _controller() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lease_is_stale(row, host: str, now: datetime) -> bool:
    """Expired, or held by a process on this host that no longer exists (e.g. killed with SIGKILL)."""
    owner, pid, lease_host, expires_at = row
    if expires_at < now.strftime("%Y-%m-%dT%H:%M:%SZ"):
        return True
    if lease_host == host:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


class SQLiteStore(_ReconcileRecords, _ParameterStore, Store):
    def __init__(self, connection: sqlite3.Connection, path: str):
        self._db = connection
        self.path = path

    @classmethod
    def open(cls, url: str) -> "SQLiteStore":
        path = path_of(url)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the state store {path}: {exc}") from None
        store = cls(db, path)
        store._migrate()
        store.abandon_stale_commands()
        return store

    def abandon_stale_commands(self) -> int:
        """Commands left InProgress by a controller on this host that no longer runs (killed):
        their unfinished invocations become Cancelled with the reason, so the record is honest."""
        host = _controller().rsplit(":", 1)[0]
        stale = [row[0] for row in self._db.execute(
            "SELECT command_id, controller FROM commands WHERE status = 'InProgress'")
            if row[1].rsplit(":", 1)[0] == host and not _alive(int(row[1].rsplit(":", 1)[1]))]
        message = "the controller stopped before this finished (killed?); nothing more was done"
        for command_id in stale:
            with self._tx():
                self._db.execute("UPDATE invocations SET status='Cancelled', status_details='Cancelled', message=?, "
                                 "finished_at=? WHERE command_id=? AND status IN ('Pending', 'InProgress')",
                                 (message, utcnow(), command_id))
                self._db.execute("UPDATE commands SET status='Cancelled', status_details='Cancelled', finished_at=? "
                                 "WHERE command_id=?", (utcnow(), command_id))
        return len(stale)

    # --- plumbing ----------------------------------------------------------------------
    def _migrate(self) -> None:
        db = self._db
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                   "name TEXT NOT NULL, applied_at TEXT NOT NULL)")
        done = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            with self._tx():
                for statement in filter(str.strip, sql.split(";")):
                    db.execute(statement)
                db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, utcnow()))
        newest = max(v for v, _, _ in MIGRATIONS)
        found = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]
        if found > newest:
            raise StoreError(f"the state store {self.path} was written by a newer plumb "
                             f"(schema {found}, this plumb knows {newest})")

    def _tx(self):
        return _Transaction(self._db)

    def schema_version(self) -> int:
        return self._db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    # --- inventory ---------------------------------------------------------------------
    def save_inventory(self, node: str, document: dict) -> InventorySnapshot:
        now = utcnow()
        fingerprint = inventory_fingerprint(document)
        captured = document.get("CaptureTime", now)
        with self._tx():
            self._db.execute("INSERT INTO nodes VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET last_seen=excluded.last_seen",
                             (node, now, now))
            skeleton, contents = _split_contents(document)
            self._db.executemany("INSERT OR IGNORE INTO inventory_contents VALUES (?, ?)", contents)
            cursor = self._db.execute(
                "INSERT INTO inventory_snapshots (node, captured_at, stored_at, fingerprint, document) "
                "VALUES (?, ?, ?, ?, ?)", (node, captured, now, fingerprint, json.dumps(skeleton, sort_keys=True)))
            self._db.executemany("INSERT OR IGNORE INTO first_seen VALUES (?, ?, ?, ?)",
                                 [(node, kind, key, captured) for kind, key in _first_seen_keys(document)])
        return InventorySnapshot(node, captured, now, fingerprint, document, cursor.lastrowid)

    def latest_inventory(self, node: str) -> InventorySnapshot | None:
        row = self._db.execute(
            "SELECT id, captured_at, stored_at, fingerprint, document FROM inventory_snapshots "
            "WHERE node = ? ORDER BY id DESC LIMIT 1", (node,)).fetchone()
        if row is None:
            return None
        return InventorySnapshot(node, row[1], row[2], row[3], self._joined([json.loads(row[4])])[0], row[0])

    def latest_inventories(self, nodes) -> dict[str, InventorySnapshot]:
        found = {}
        for chunk in _chunks(list(dict.fromkeys(nodes))):
            rows = self._db.execute(
                "SELECT node, id, captured_at, stored_at, fingerprint, document FROM inventory_snapshots WHERE id IN "
                f"(SELECT MAX(id) FROM inventory_snapshots WHERE node IN ({_marks(chunk)}) GROUP BY node)", chunk)
            rows = list(rows)
            documents = self._joined([json.loads(r[5]) for r in rows])
            for r, document in zip(rows, documents):
                found[r[0]] = InventorySnapshot(r[0], r[2], r[3], r[4], document, r[1])
        return found

    def _joined(self, skeletons: list[dict]) -> list[dict]:
        """Stored inventory documents made whole again: each type's content, stored once per distinct
        content (see _split_contents), read and parsed once per call and shared by the documents
        that have it — so callers must treat inventory documents as read-only."""
        refs = {report["ContentRef"] for doc in skeletons for report in (doc.get("Types") or {}).values()
                if isinstance(report, dict) and "ContentRef" in report}
        parsed: dict[str, object] = {}
        for chunk in _chunks(sorted(refs)):
            for ref, text in self._db.execute(f"SELECT hash, content FROM inventory_contents WHERE hash IN "
                                              f"({_marks(chunk)})", chunk):
                parsed[ref] = json.loads(text)
        for doc in skeletons:
            for report in (doc.get("Types") or {}).values():
                if isinstance(report, dict) and "ContentRef" in report:
                    report["Content"] = parsed[report.pop("ContentRef")]
        return skeletons

    def inventory_nodes(self) -> list[tuple[str, str]]:
        rows = self._db.execute(
            "SELECT node, captured_at FROM inventory_snapshots WHERE id IN "
            "(SELECT MAX(id) FROM inventory_snapshots GROUP BY node) ORDER BY node")
        return [(r[0], r[1]) for r in rows]

    def register_node(self, name: str, manifest: str, by: str) -> None:
        with self._tx():
            self._db.execute("INSERT INTO registered_nodes VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                             "manifest=excluded.manifest, registered_at=excluded.registered_at, "
                             "registered_by=excluded.registered_by", (name, manifest, utcnow(), by))

    def deregister_node(self, name: str) -> bool:
        with self._tx():
            return self._db.execute("DELETE FROM registered_nodes WHERE name = ?", (name,)).rowcount > 0

    def registered_nodes(self) -> list[tuple[str, str, str, str]]:
        return [tuple(r) for r in self._db.execute("SELECT name, manifest, registered_at, registered_by FROM "
                                                   "registered_nodes ORDER BY name")]

    def watch_state(self, scope: str) -> tuple[str, dict[str, tuple[str, str | None]]] | None:
        row = self._db.execute("SELECT digest, histories FROM watch_state WHERE scope = ?", (scope,)).fetchone()
        if row is None:
            return None
        return row[0], {name: (first, last) for name, (first, last) in json.loads(row[1]).items()}

    def save_watch_state(self, scope: str, digest: str,
                         histories: dict[str, tuple[str, str | None]]) -> None:
        with self._tx():
            self._db.execute("INSERT INTO watch_state VALUES (?, ?, ?, ?) ON CONFLICT(scope) DO UPDATE SET "
                             "digest=excluded.digest, histories=excluded.histories, updated_at=excluded.updated_at",
                             (scope, digest, json.dumps(histories, sort_keys=True), utcnow()))

    def first_seen_anywhere(self, kind: str, keys) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _chunks(sorted(set(keys))):
            rows = self._db.execute(f"SELECT key, MIN(seen) FROM first_seen WHERE kind = ? AND key IN ({_marks(chunk)}) "
                                    "GROUP BY key", [kind, *chunk])
            found.update(dict(rows))
        return found

    def first_seen(self, node: str, kind: str, key: str) -> str | None:
        row = self._db.execute("SELECT seen FROM first_seen WHERE node=? AND kind=? AND key=?",
                               (node, kind, key)).fetchone()
        return row[0] if row else None

    # --- Run Command -------------------------------------------------------------------
    def create_command(self, command: CommandRecord, nodes: Iterable[str]) -> None:
        nodes = list(nodes)
        with self._tx():
            self._db.execute(
                "INSERT INTO commands VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (command.command_id, command.document_name, command.document_hash,
                 json.dumps(command.parameters, sort_keys=True), json.dumps(command.targets),
                 command.max_concurrency, command.max_errors, command.requested_at, command.status,
                 command.status_details, command.finished_at, len(nodes), _controller()))
            self._db.executemany(
                "INSERT INTO invocations (command_id, node, status, status_details) VALUES (?, ?, 'Pending', 'Pending')",
                [(command.command_id, n) for n in nodes])

    def update_invocation(self, command_id, node, *, status, status_details, response_code=None, message="",
                          started_at="", finished_at="") -> None:
        with self._tx():
            cursor = self._db.execute(
                "UPDATE invocations SET status=?, status_details=?, response_code=COALESCE(?, response_code), "
                "message=?, started_at=CASE WHEN ?='' THEN started_at ELSE ? END, "
                "finished_at=CASE WHEN ?='' THEN finished_at ELSE ? END WHERE command_id=? AND node=?",
                (status, status_details, response_code, message, started_at, started_at, finished_at,
                 finished_at, command_id, node))
            if cursor.rowcount != 1:
                raise StoreError(f"no invocation of command {command_id} on node {node}")

    def add_step(self, command_id: str, node: str, step: StepRecord) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO invocation_steps (command_id, node, name, action, status, response_code, stdout, "
                "stderr, full_stdout, full_stderr, changed, details, started_at, finished_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (command_id, node, step.name, step.action, step.status, step.response_code, step.stdout,
                 step.stderr, step.full_stdout, step.full_stderr,
                 None if step.changed is None else int(step.changed), json.dumps(step.details, sort_keys=True),
                 step.started_at, step.finished_at))

    def finish_command(self, command_id: str, status: str, status_details: str, finished_at: str) -> None:
        with self._tx():
            self._db.execute("UPDATE commands SET status=?, status_details=?, finished_at=? WHERE command_id=?",
                             (status, status_details, finished_at, command_id))

    def get_command(self, command_id: str) -> CommandRecord | None:
        row = self._db.execute("SELECT * FROM commands WHERE command_id = ?", (command_id,)).fetchone()
        return self._command(row, with_invocations=True) if row else None

    def list_commands(self, limit: int = 20) -> list[CommandRecord]:
        rows = self._db.execute("SELECT * FROM commands ORDER BY requested_at DESC, rowid DESC LIMIT ?", (limit,))
        return [self._command(r, with_invocations=False) for r in rows.fetchall()]

    def _command(self, row, with_invocations: bool) -> CommandRecord:
        row = tuple(row)[:12]
        invocations = self._invocations(row[0]) if with_invocations else ()
        return CommandRecord(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]), row[5], row[6],
                             row[7], row[8], row[9], row[10], row[11], invocations)

    def _invocations(self, command_id: str) -> tuple[InvocationRecord, ...]:
        steps: dict[str, list[StepRecord]] = {}
        for r in self._db.execute("SELECT node, name, action, status, response_code, stdout, stderr, full_stdout, "
                                  "full_stderr, changed, details, started_at, finished_at FROM invocation_steps "
                                  "WHERE command_id = ? ORDER BY id", (command_id,)):
            steps.setdefault(r[0], []).append(StepRecord(
                r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], None if r[9] is None else bool(r[9]),
                json.loads(r[10]), r[11], r[12]))
        rows = self._db.execute("SELECT node, status, status_details, response_code, message, started_at, "
                                "finished_at FROM invocations WHERE command_id = ? ORDER BY node", (command_id,))
        return tuple(InvocationRecord(command_id, r[0], r[1], r[2], r[3], r[4], r[5], r[6], tuple(steps.get(r[0], ())))
                     for r in rows)


def _chunks(items: list, size: int = 500):
    """Slices of at most `size` items: one query each, well under SQLite's bound-parameter limit."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _marks(chunk: list) -> str:
    return ",".join("?" * len(chunk))


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error (the connection is in autocommit mode)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def inventory_fingerprint(document: dict) -> str:
    """sha256 of the per-type content hashes: changes exactly when observed content changes."""
    types = document.get("Types", {})
    parts = [f"{name}={types[name].get('Status')}:{types[name].get('ContentHash', '')}" for name in sorted(types)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _split_contents(document: dict) -> tuple[dict, list[tuple[str, str]]]:
    """(the document with each type's Content replaced by a reference, [(hash, content JSON)]).

    The hash is computed here, over plumb's own canonical JSON — never the agent's ContentHash,
    which a node could forge to make its content stand in for another node's."""
    skeleton = dict(document)
    types, contents = {}, []
    for name, report in (document.get("Types") or {}).items():
        if isinstance(report, dict) and "Content" in report:
            text = json.dumps(report["Content"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            contents.append((digest, text))
            report = {k: v for k, v in report.items() if k != "Content"} | {"ContentRef": digest}
        types[name] = report
    if "Types" in document:
        skeleton["Types"] = types
    return skeleton, contents


def _first_seen_keys(document: dict):
    """("package", "name=version") for installed packages, ("update", ...) for candidates."""
    types = document.get("Types", {})
    for entry in types.get("AWS:Application", {}).get("Content", ()) or ():
        if entry.get("Name") and entry.get("Version"):
            yield "package", f"{entry['Name']}={entry['Version']}"
    for entry in types.get("plumb:AvailableUpdate", {}).get("Content", ()) or ():
        if entry.get("Name") and entry.get("CandidateVersion"):
            yield "update", f"{entry['Name']}={entry['CandidateVersion']}"
        for version in entry.get("Versions") or ():  # every newer version (a security one may not be the candidate)
            if entry.get("Name") and version.get("Version") and version["Version"] != entry.get("CandidateVersion"):
                yield "update", f"{entry['Name']}={version['Version']}"
