"""The inventory document: selection of types, content hashes, the schema, the CLI."""

import hashlib
import json
import subprocess
import sys
import types
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest

from agent import __main__ as cli
from agent import __version__, inventory
from agent.collectors.base import CollectorError, Options

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "inventory.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


@pytest.fixture(scope="module")
def apt_cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("apt-cache"))


def agent(*args, python=sys.executable):
    done = subprocess.run(
        [python, "-m", "agent", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    return done


class TestSelection:
    def test_default_is_every_type_but_file_and_sysctl(self):
        selection = inventory.select(None, Options())
        assert "AWS:File" not in selection.collectors and "plumb:Sysctl" not in selection.collectors
        assert {"AWS:InstanceInformation", "AWS:Application", "AWS:Service", "AWS:Network", "plumb:User",
                "plumb:Group", "plumb:AvailableUpdate", "Custom:*"} <= set(selection.collectors)

    def test_files_and_sysctl_keys_bring_their_types_in(self):
        selection = inventory.select(None, Options(files=("/etc/hostname",), sysctl_keys=("kernel.hostname",)))
        assert {"AWS:File", "plumb:Sysctl"} <= set(selection.collectors)
        narrowed = inventory.select(["plumb:User"], Options(files=("/etc/hostname",)))
        assert narrowed.collectors == ("plumb:User", "AWS:File")

    def test_types_narrow_and_custom_names_filter_custom_types(self):
        selection = inventory.select(["AWS:Network", "Custom:Rack"], Options())
        assert selection.collectors == ("AWS:Network", "Custom:*")
        assert selection.keeps("Custom:Rack") and not selection.keeps("Custom:Other")
        assert inventory.select(["AWS:Network"], Options()).keeps("Custom:Rack") is False

    def test_unknown_type_is_refused(self):
        with pytest.raises(ValueError, match="unknown inventory type 'AWS:Nope'"):
            inventory.select(["AWS:Nope"], Options())


class TestDocument:
    def test_content_hash_is_sha256_of_canonical_json(self):
        content = [{"b": "2", "a": "é"}]
        expected = hashlib.sha256('[{"a":"é","b":"2"}]'.encode("utf-8")).hexdigest()
        assert inventory.content_hash(content) == expected
        assert inventory.content_hash([{"a": "é", "b": "2"}]) == expected

    def test_document_envelope(self):
        now = datetime(2024, 5, 1, 12, 30, 5, tzinfo=timezone.utc)
        document = inventory.document({"plumb:User": [], "AWS:Service": CollectorError("no")}, "web-1", now)
        assert document == {
            "SchemaVersion": "1.0",
            "AgentVersion": __version__,
            "CaptureTime": "2024-05-01T12:30:05Z",
            "Node": {"ComputerName": "web-1"},
            "Types": {
                "AWS:Service": {"Status": "unknown", "Reason": "no"},
                "plumb:User": {"Status": "ok", "ContentHash": inventory.content_hash([]), "Content": []},
            },
        }
        assert VALIDATOR.is_valid(document)


class TestSchema:
    def valid_document(self):
        return inventory.document({"plumb:User": [], "Custom:Rack": [{"Row": "C"}]}, "web-1", datetime.now(timezone.utc))

    def test_schema_is_valid_draft_2020_12(self):
        jsonschema.Draft202012Validator.check_schema(SCHEMA)

    @pytest.mark.parametrize(
        "breakage",
        [
            lambda d: d.update(Extra=1),
            lambda d: d["Types"].update({"custom:rack": {"Status": "unknown", "Reason": "x"}}),
            lambda d: d["Types"]["plumb:User"].pop("ContentHash"),
            lambda d: d["Types"]["plumb:User"].update(Reason="x"),
            lambda d: d["Types"].update({"AWS:Service": {"Status": "unknown"}}),
            lambda d: d["Types"].update({"AWS:Service": {"Status": "unknown", "Reason": "x", "Content": []}}),
            lambda d: d["Types"]["Custom:Rack"]["Content"][0].update(Watts=450),
            lambda d: d.update(CaptureTime="2024-05-01 12:00:00"),
        ],
    )
    def test_schema_refuses_broken_documents(self, breakage):
        document = self.valid_document()
        assert VALIDATOR.is_valid(document)
        breakage(document)
        assert not VALIDATOR.is_valid(document)


class TestCommandLine:
    def test_real_collect_on_this_machine_validates_against_the_schema(self, apt_cache_dir):
        done = agent("collect", "--files", "/etc/hostname", "--sysctl", "kernel.hostname", "--apt-cache-dir", apt_cache_dir)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert len(lines) == 1
        document = json.loads(lines[0])
        errors = [f"{e.json_path}: {e.message}" for e in VALIDATOR.iter_errors(document)]
        assert errors == []
        reported = document["Types"]
        assert reported["AWS:File"]["Content"][0]["Path"] == "/etc/hostname"
        assert reported["plumb:Sysctl"]["Content"][0]["Value"] == document["Node"]["ComputerName"]
        assert reported["AWS:InstanceInformation"]["Status"] == "ok"
        assert reported["AWS:Application"]["Status"] == "ok"
        for name, report in reported.items():
            assert report["Status"] == "ok" or report["Reason"], name

    def test_version_prints_the_agent_version(self):
        done = agent("version")
        assert (done.returncode, done.stdout.strip()) == (0, __version__)

    def test_unknown_type_is_a_usage_error(self):
        done = agent("collect", "--types", "AWS:Nope")
        assert done.returncode == 2
        assert "unknown inventory type 'AWS:Nope'" in done.stderr
        assert done.stdout == ""

    def test_content_max_bytes_turns_content_on(self, capsys, tmp_path):
        path = tmp_path / "small"
        path.write_text("abc")
        assert cli.main(["collect", "--types", "AWS:File", "--files", str(path), "--content-max-bytes", "10"]) == 0
        document = json.loads(capsys.readouterr().out)
        assert document["Types"]["AWS:File"]["Content"][0]["Content"] == "abc"

    def test_execute_hands_its_arguments_to_the_executor(self, monkeypatch):
        seen = []
        executor = types.SimpleNamespace(main=lambda argv=None: seen.append(argv) or 7)
        monkeypatch.setitem(sys.modules, "agent.executor", executor)
        monkeypatch.setattr("agent.executor", executor, raising=False)
        assert cli.main(["execute", "--dry-run"]) == 7
        assert seen == [["--dry-run"]]
