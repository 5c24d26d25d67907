"""AWS:File: what a requested path looks like, on a real temporary directory."""

import hashlib
import os

import pytest

from agent.collectors import file
from agent.collectors.base import Options


def entry_for(path, **options):
    return file.collect(Options(files=(str(path),), **options))[0]


def test_regular_file_reports_metadata_and_hash(tmp_path):
    path = tmp_path / "motd"
    path.write_text("hello\n")
    os.chmod(path, 0o640)
    os.utime(path, (0, 1700000000))
    entry = entry_for(path)
    assert entry["Exists"] is True
    assert entry["FileType"] == "file"
    assert entry["Size"] == 6
    assert entry["Mode"] == "0640"
    assert entry["Uid"] == os.getuid()
    assert entry["Owner"]
    assert entry["ModificationTime"] == "2023-11-14T22:13:20Z"
    assert entry["Sha256"] == hashlib.sha256(b"hello\n").hexdigest()
    assert entry["Name"] == "motd" and entry["InstalledDir"] == str(tmp_path)
    assert "Content" not in entry


def test_missing_path_is_an_entry_not_an_error(tmp_path):
    entry = entry_for(tmp_path / "absent")
    assert entry == {"Path": str(tmp_path / "absent"), "Name": "absent", "InstalledDir": str(tmp_path), "Exists": False}


def test_directory_and_symlink_types(tmp_path):
    (tmp_path / "target").write_text("x")
    (tmp_path / "link").symlink_to("target")
    assert entry_for(tmp_path)["FileType"] == "directory"
    link = entry_for(tmp_path / "link")
    assert link["FileType"] == "symlink"
    assert link["LinkTarget"] == "target"
    assert "Sha256" not in link


def test_special_modes_keep_their_setuid_digit(tmp_path):
    path = tmp_path / "tool"
    path.write_bytes(b"")
    os.chmod(path, 0o4755)
    assert entry_for(path)["Mode"] == "4755"


def test_content_of_small_text_files_only_when_asked(tmp_path):
    path = tmp_path / "conf"
    path.write_text("key = value\n")
    assert "Content" not in entry_for(path)
    assert entry_for(path, content=True)["Content"] == "key = value\n"


@pytest.mark.parametrize("data", [b"x" * 65, b"\xff\xfe binary"])
def test_content_is_omitted_for_large_or_binary_files(tmp_path, data):
    path = tmp_path / "blob"
    path.write_bytes(data)
    entry = entry_for(path, content=True, content_max_bytes=64)
    assert "Content" not in entry
    assert entry["Sha256"] == hashlib.sha256(data).hexdigest()


def test_unreadable_file_carries_an_error_and_its_metadata(tmp_path):
    path = tmp_path / "shadow"
    path.write_text("secret")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    entry = file.describe(file.observe(str(path), 100, opener=denied))
    assert entry["Exists"] is True
    assert entry["Error"] == "cannot read: Permission denied"
    assert entry["Size"] == 6
    assert "Sha256" not in entry


def test_unknown_owner_falls_back_to_numeric_ids(tmp_path):
    path = tmp_path / "orphan"
    path.write_text("")
    seen = file.observe(str(path))._replace(owner="", group="")
    entry = file.describe(seen)
    assert entry["Owner"] == str(os.getuid()) and entry["Group"] == str(os.getgid())


def test_relative_path_is_refused_since_it_means_nothing_on_a_remote_node():
    entry = entry_for("etc/hostname")
    assert entry["Exists"] is False
    assert entry["Error"] == "not an absolute path"
