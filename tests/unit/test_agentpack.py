"""The agent zipapp: deterministic bytes, only agent files, and it runs."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile

from reconciler import agentpack


def _names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def test_the_same_sources_give_the_same_bytes():
    sources = agentpack.agent_sources()
    assert agentpack.build(sources) == agentpack.build(dict(reversed(list(sources.items()))))


def test_agent_zipapp_returns_its_sha256_and_is_cached():
    data, digest = agentpack.agent_zipapp()
    assert digest == hashlib.sha256(data).hexdigest()
    assert agentpack.agent_zipapp()[0] is data


def test_a_changed_source_changes_the_hash():
    sources = agentpack.agent_sources()
    changed = dict(sources, **{"agent/__init__.py": sources["agent/__init__.py"] + b"\n"})
    assert agentpack.build(changed) != agentpack.build(sources)


def test_entries_are_sorted_with_a_fixed_time_and_mode():
    archive = zipfile.ZipFile(io.BytesIO(agentpack.agent_zipapp()[0]))
    names = archive.namelist()
    assert names == sorted(names)
    assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in archive.infolist()} == {0o100644}


def test_it_holds_only_the_agents_python_files_and_the_entry_point():
    names = _names(agentpack.agent_zipapp()[0])
    assert "__main__.py" in names and "agent/serve.py" in names and "agent/__main__.py" in names
    others = [n for n in names if n != "__main__.py"]
    assert all(n.startswith("agent/") and n.endswith(".py") for n in others), others
    assert not any("__pycache__" in n or n.startswith("reconciler/") for n in names)


def test_remote_path_is_named_by_the_first_16_hex_of_the_hash():
    digest = "0123456789abcdef" + "f" * 48
    assert agentpack.agent_filename(digest) == "plumb-agent-0123456789abcdef.pyz"
    assert agentpack.agent_path(digest) == "~/.cache/plumb/plumb-agent-0123456789abcdef.pyz"
    assert agentpack.agent_path(digest, "/opt/plumb") == "/opt/plumb/plumb-agent-0123456789abcdef.pyz"


def _run_pyz(tmp_path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """Run the zipapp with no site-packages (-S) and no environment (-E), away from the repo:
    what works here works on a node with nothing but Python."""
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(agentpack.agent_zipapp()[0])
    return subprocess.run([sys.executable, "-E", "-S", str(pyz), *args], input=stdin,
                          capture_output=True, timeout=120, check=True, cwd=tmp_path)


def test_the_zipapp_serves_hello(tmp_path):
    done = _run_pyz(tmp_path, "serve", stdin=b'{"id":1,"op":"hello"}\n')
    answer = json.loads(done.stdout.decode().splitlines()[0])
    assert answer["id"] == 1 and answer["result"]["agentVersion"]


def test_the_zipapp_runs_the_agent_cli(tmp_path):
    done = _run_pyz(tmp_path, "collect", "--types", "AWS:InstanceInformation")
    document = json.loads(done.stdout)
    assert list(document["Types"]) == ["AWS:InstanceInformation"]

