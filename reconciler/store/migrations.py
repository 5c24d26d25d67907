"""Schema migrations of the SQLite store, applied in order, each in its own transaction.

Append only: never edit a migration that has shipped; add the next one.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "inventory and Run Command", """
        CREATE TABLE nodes (
            name        TEXT PRIMARY KEY,
            first_seen  TEXT NOT NULL,
            last_seen   TEXT NOT NULL
        );
        CREATE TABLE inventory_snapshots (
            id           INTEGER PRIMARY KEY AUTOINCREMENT,
            node         TEXT NOT NULL REFERENCES nodes(name),
            captured_at  TEXT NOT NULL,
            stored_at    TEXT NOT NULL,
            fingerprint  TEXT NOT NULL,
            document     TEXT NOT NULL
        );
        CREATE INDEX inventory_snapshots_node ON inventory_snapshots(node, id);
        CREATE TABLE first_seen (
            node   TEXT NOT NULL,
            kind   TEXT NOT NULL,
            key    TEXT NOT NULL,
            seen   TEXT NOT NULL,
            PRIMARY KEY (node, kind, key)
        );
        CREATE TABLE commands (
            command_id      TEXT PRIMARY KEY,
            document_name   TEXT NOT NULL,
            document_hash   TEXT NOT NULL,
            parameters      TEXT NOT NULL,
            targets         TEXT NOT NULL,
            max_concurrency TEXT NOT NULL,
            max_errors      TEXT NOT NULL,
            requested_at    TEXT NOT NULL,
            status          TEXT NOT NULL,
            status_details  TEXT NOT NULL,
            finished_at     TEXT NOT NULL DEFAULT '',
            target_count    INTEGER NOT NULL
        );
        CREATE TABLE invocations (
            command_id     TEXT NOT NULL REFERENCES commands(command_id),
            node           TEXT NOT NULL,
            status         TEXT NOT NULL,
            status_details TEXT NOT NULL,
            response_code  INTEGER,
            message        TEXT NOT NULL DEFAULT '',
            started_at     TEXT NOT NULL DEFAULT '',
            finished_at    TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (command_id, node)
        );
        CREATE TABLE invocation_steps (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            command_id    TEXT NOT NULL,
            node          TEXT NOT NULL,
            name          TEXT NOT NULL,
            action        TEXT NOT NULL,
            status        TEXT NOT NULL,
            response_code INTEGER,
            stdout        TEXT NOT NULL,
            stderr        TEXT NOT NULL,
            full_stdout   TEXT,
            full_stderr   TEXT,
            changed       INTEGER,
            details       TEXT NOT NULL,
            started_at    TEXT NOT NULL,
            finished_at   TEXT NOT NULL,
            FOREIGN KEY (command_id, node) REFERENCES invocations(command_id, node)
        );
    """),
    (2, "last-applied state, executions, compliance, node leases", """
        CREATE TABLE last_applied (
            node           TEXT NOT NULL,
            address        TEXT NOT NULL,
            desired_hash   TEXT NOT NULL,
            observed_hash  TEXT NOT NULL,
            applied_at     TEXT NOT NULL,
            git_revision   TEXT NOT NULL,
            association    TEXT NOT NULL,
            source         TEXT NOT NULL,
            PRIMARY KEY (node, address)
        );
        CREATE TABLE resource_events (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            node           TEXT NOT NULL,
            address        TEXT NOT NULL,
            event          TEXT NOT NULL,
            at             TEXT NOT NULL,
            git_revision   TEXT NOT NULL,
            association    TEXT NOT NULL,
            source         TEXT NOT NULL,
            detail         TEXT NOT NULL
        );
        CREATE INDEX resource_events_node ON resource_events(node, id);
        CREATE TABLE compliance (
            node           TEXT NOT NULL,
            compliance_type TEXT NOT NULL,
            item_id        TEXT NOT NULL,
            status         TEXT NOT NULL,
            severity       TEXT NOT NULL,
            execution_id   TEXT NOT NULL,
            execution_time TEXT NOT NULL,
            title          TEXT NOT NULL,
            details        TEXT NOT NULL,
            PRIMARY KEY (node, compliance_type, item_id)
        );
        CREATE TABLE compliance_history (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            node           TEXT NOT NULL,
            compliance_type TEXT NOT NULL,
            item_id        TEXT NOT NULL,
            status         TEXT NOT NULL,
            severity       TEXT NOT NULL,
            execution_id   TEXT NOT NULL,
            execution_time TEXT NOT NULL
        );
        CREATE TABLE leases (
            node        TEXT PRIMARY KEY,
            owner       TEXT NOT NULL,
            pid         INTEGER NOT NULL,
            host        TEXT NOT NULL,
            acquired_at TEXT NOT NULL,
            expires_at  TEXT NOT NULL
        );
    """),
    (3, "which controller process runs a command", """
        ALTER TABLE commands ADD COLUMN controller TEXT NOT NULL DEFAULT ''
    """),
    # A SecureString's plaintext is in no column: `value` is NULL for it (the CHECK makes
    # sure) and `sealed_value` holds it sealed for the controller's key; `digest` is the
    # plaintext's sha256, which redaction markers show.
    (4, "Parameter Store", """
        CREATE TABLE parameters (
            name             TEXT PRIMARY KEY,
            created_at       TEXT NOT NULL,
            applied_hash     TEXT NOT NULL DEFAULT '',
            applied_at       TEXT NOT NULL DEFAULT '',
            applied_revision TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE parameter_versions (
            name            TEXT NOT NULL REFERENCES parameters(name) ON DELETE CASCADE,
            version         INTEGER NOT NULL,
            type            TEXT NOT NULL,
            value           TEXT,
            sealed_value    TEXT,
            digest          TEXT NOT NULL,
            description     TEXT NOT NULL,
            tier            TEXT NOT NULL,
            allowed_pattern TEXT NOT NULL,
            data_type       TEXT NOT NULL,
            policies        TEXT NOT NULL,
            modified_at     TEXT NOT NULL,
            modified_by     TEXT NOT NULL,
            source          TEXT NOT NULL,
            PRIMARY KEY (name, version),
            CHECK (type <> 'SecureString' OR (value IS NULL AND sealed_value LIKE 'plumb-sealed:%'))
        );
        CREATE TABLE parameter_labels (
            name     TEXT NOT NULL,
            label    TEXT NOT NULL,
            version  INTEGER NOT NULL,
            PRIMARY KEY (name, label),
            FOREIGN KEY (name, version) REFERENCES parameter_versions(name, version) ON DELETE CASCADE
        );
        CREATE INDEX parameter_labels_version ON parameter_labels(name, version)
    """),
    (5, "the Parameter Store versions each resource was last applied with", """
        ALTER TABLE last_applied ADD COLUMN parameter_refs TEXT NOT NULL DEFAULT '[]'
    """),
    (6, "when a package version was first seen anywhere in the fleet (patch approval dates)", """
        CREATE INDEX first_seen_kind_key ON first_seen(kind, key, seen)
    """),
    (7, "inventory contents stored once per distinct content (fleets share package lists)", """
        CREATE TABLE inventory_contents (
            hash     TEXT PRIMARY KEY,
            content  TEXT NOT NULL
        )
    """),
    (8, "nodes registered with plumb node register (beside the Node manifests in git)", """
        CREATE TABLE registered_nodes (
            name          TEXT PRIMARY KEY,
            manifest      TEXT NOT NULL,
            registered_at TEXT NOT NULL,
            registered_by TEXT NOT NULL
        )
    """),
    (9, "the watch loop's schedule state, so a restart keeps to the schedules", """
        CREATE TABLE watch_state (
            scope       TEXT PRIMARY KEY,
            digest      TEXT NOT NULL,
            histories   TEXT NOT NULL,
            updated_at  TEXT NOT NULL
        )
    """),
]
