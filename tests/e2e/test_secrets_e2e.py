"""A SecureString committed sealed, end to end, as a user runs it over a real sshd.

The secret is sealed with `plumb secret seal`, committed, written into a 0600 file on a
node over SSH, and handed to a document that echoes it. Then it is searched for in every
output plumb makes: plan text/JSON/JUnit/SARIF/Markdown, the saved plan, reconcile
output, command records, drift history, compliance, parameter listings, error messages,
watch-loop logs and every column of every table of the store (and the raw database file).
Only the node's file may hold it.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SECRET = "s3cr3t-Pl4nted-7f0c!x"
SECRET_2 = "an0ther-Pl4nted-91ab#y"
OUT_OF_BAND = "0ut-of-band-Pl4nted-55"
ALL_SECRETS = (SECRET, SECRET_2, OUT_OF_BAND)


def _git(cwd, *args):
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@x"})


class World:
    def __init__(self, sshd, tmp: Path):
        self.tmp = tmp
        self.manifests = tmp / "repo" / "manifests"
        self.manifests.mkdir(parents=True)
        self.root = tmp / "node-ssh"
        self.env = {**os.environ, "PLUMB_MANIFESTS": str(self.manifests),
                    "PLUMB_STATE": f"sqlite:///{tmp}/state.db", "PLUMB_KEY_DIR": str(tmp / "keys"),
                    "XDG_CACHE_HOME": str(tmp / "cache"), "NO_COLOR": "1"}
        self.outputs: list[tuple[str, str]] = []  # (what, text) of everything plumb printed or wrote
        self.sshd = sshd

    def plumb(self, *args, stdin: str | None = None, timeout=180) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "reconciler", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, cwd=self.tmp, input=stdin)
        self.outputs.append((f"plumb {' '.join(args)} (stdout)", done.stdout))
        self.outputs.append((f"plumb {' '.join(args)} (stderr)", done.stderr))
        return done

    def seal(self, secret: str) -> str:
        sealed = self.plumb("secret", "seal", stdin=secret + "\n")
        assert sealed.returncode == 0, sealed.stderr
        return sealed.stdout.strip()

    def write(self, sealed: str, greeting: str = "hello") -> None:
        docs = [
            {"apiVersion": "plumb.dev/v1", "kind": "Node", "metadata": {"name": "ssh-1"}, "spec": self.sshd.spec()},
            {"apiVersion": "plumb.dev/v1", "kind": "Parameter", "metadata": {"name": "/app/db/password"},
             "spec": {"type": "SecureString", "sealedValue": sealed, "description": "db password"}},
            {"apiVersion": "plumb.dev/v1", "kind": "Parameter", "metadata": {"name": "/app/greeting"},
             "spec": {"type": "String", "value": greeting}},
            {"apiVersion": "plumb.dev/v1", "kind": "Document", "metadata": {"name": "echo-secret"},
             "spec": {"schemaVersion": "2.2", "description": "a careless script that prints its secret",
                      "parameters": {"pw": {"type": "String"}},
                      "mainSteps": [{"action": "aws:runShellScript", "name": "careless",
                                     "inputs": {"runCommand": ['echo "the password is {{ pw }}"',
                                                               'echo "again: {{ pw }}" >&2']}}]}},
            {"apiVersion": "plumb.dev/v1", "kind": "Association", "metadata": {"name": "app-secrets"},
             "spec": {"targets": [{"key": "InstanceIds", "values": ["ssh-1"]}],
                      "state": {"directories": {str(self.root): {"mode": "0755"}},
                                "files": {str(self.root / "db.env"): {
                                    "content": "PASSWORD={{ssm-secure:/app/db/password}}\n"
                                               "GREETING={{ssm:/app/greeting}}\n",
                                    "mode": "0600"}}}}},
            {"apiVersion": "plumb.dev/v1", "kind": "Association", "metadata": {"name": "careless-doc"},
             "spec": {"targets": [{"key": "InstanceIds", "values": ["ssh-1"]}],
                      "document": {"name": "echo-secret",
                                   "parameters": {"pw": "{{ssm-secure:/app/db/password}}"}}}},
        ]
        (self.manifests / "fleet.yaml").write_text(yaml.safe_dump_all(docs))
        if not (self.manifests.parent / ".git").exists():
            _git(self.manifests.parent, "init", "-q")
        _git(self.manifests.parent, "add", ".")
        _git(self.manifests.parent, "commit", "-qm", "fleet")

    def add_file(self, path: Path) -> None:
        self.outputs.append((str(path), path.read_text(encoding="utf-8", errors="replace")))

    def leaks(self) -> list[str]:
        found = []
        for secret in ALL_SECRETS:
            encoded = base64.b64encode(secret.encode()).decode()
            for what, text in self.outputs:
                if secret in text or encoded in text:
                    found.append(f"{secret!r} in {what}")
            db = self.tmp / "state.db"
            with sqlite3.connect(db) as conn:
                conn.execute("PRAGMA wal_checkpoint(FULL)")
                tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
                for table in tables:
                    for row in conn.execute(f"SELECT * FROM {table}"):
                        if any(isinstance(v, str) and (secret in v or encoded in v) for v in row):
                            found.append(f"{secret!r} in table {table}")
            for path in self.tmp.glob("state.db*"):
                if secret.encode() in path.read_bytes():
                    found.append(f"{secret!r} in the raw file {path.name}")
        return found


@pytest.fixture
def world(sshd, tmp_path):
    return World(sshd, tmp_path)


def test_a_sealed_secret_reaches_only_the_node_file(world):
    keygen = world.plumb("secret", "keygen")
    assert keygen.returncode == 0, keygen.stderr
    assert oct((world.tmp / "keys" / "sealing.key").stat().st_mode & 0o777) == "0o600"
    sealed = world.seal(SECRET)
    assert sealed.startswith("plumb-sealed:v1:")
    world.write(sealed)

    reports = {name: world.tmp / name for name in ("plan.json", "junit.xml", "plan.sarif", "plan.md")}
    first = world.plumb("plan", "--detailed-exitcode", "--out", str(reports["plan.json"]), "--junit",
                        str(reports["junit.xml"]), "--sarif", str(reports["plan.sarif"]), "--markdown",
                        str(reports["plan.md"]))
    assert first.returncode == 2, first.stdout + first.stderr
    assert "+ parameters:/app/db/password" in first.stdout
    assert "value: (none) -> (sensitive, sha256:" in first.stdout
    assert "will run document echo-secret: it has not run on this node" in first.stdout
    as_json = world.plumb("plan", "--output", "json")
    assert json.loads(as_json.stdout)
    for path in reports.values():
        world.add_file(path)

    applied = world.plumb("reconcile", "--plan", str(reports["plan.json"]))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    target = world.root / "db.env"
    assert target.read_text() == f"PASSWORD={SECRET}\nGREETING=hello\n"
    assert oct(target.stat().st_mode & 0o777) == "0o600"

    clean = world.plumb("plan", "--detailed-exitcode")
    assert clean.returncode == 0, clean.stdout + clean.stderr

    # The document echoed the secret: what plumb kept and shows of its output is scrubbed.
    commands = world.plumb("command", "list", "--output", "json")
    ids = [c["command_id"] for c in json.loads(commands.stdout)]
    shown = [world.plumb("command", "show", command_id, "--output", "json").stdout for command_id in ids]
    assert any("the password is (sensitive, sha256:" in text for text in shown), shown

    # A change made outside git is drift; reconcile restores git's value.
    put = world.plumb("param", "put", "/app/db/password", "--type", "SecureString", "--overwrite",
                      stdin=OUT_OF_BAND + "\n")
    assert put.returncode == 0, put.stderr
    drift = world.plumb("plan", "--detailed-exitcode")
    assert drift.returncode == 2, drift.stdout
    assert "Changed outside plumb (drift)" in drift.stdout and "parameters:/app/db/password" in drift.stdout
    restored = world.plumb("reconcile")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert target.read_text() == f"PASSWORD={SECRET}\nGREETING=hello\n"

    # A new sealed value in git: the parameter, the file and the document that use it all change.
    world.write(world.seal(SECRET_2))
    moved = world.plumb("plan", "--detailed-exitcode")
    assert moved.returncode == 2, moved.stdout
    assert "/app/db/password changed (version" in moved.stdout, moved.stdout
    again = world.plumb("reconcile")
    assert again.returncode == 0, again.stdout + again.stderr
    assert target.read_text() == f"PASSWORD={SECRET_2}\nGREETING=hello\n"
    assert oct(target.stat().st_mode & 0o777) == "0o600"

    # Everything else a user looks at.
    for args in (("param", "get", "/app/db/password"), ("param", "get", "/app/db/password", "--output", "json"),
                 ("param", "history", "/app/db/password"), ("param", "list", "--recursive"),
                 ("drift", "history", "ssh-1"), ("drift", "history", "(parameter store)"),
                 ("compliance", "--output", "json"), ("param", "get", "/app/db/password:99"),
                 ("reconcile", "--watch", "--max-cycles", "1", "--metrics-address", "")):
        world.plumb(*args)
    decrypted = world.plumb("param", "get", "/app/db/password", "--decrypt")
    assert SECRET_2 in decrypted.stdout  # asked for, explicitly
    world.outputs.remove((f"plumb param get /app/db/password --decrypt (stdout)", decrypted.stdout))

    assert world.leaks() == []
