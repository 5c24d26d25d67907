"""plumb:file and plumb:directory on real files: observe first, change only what differs."""

from __future__ import annotations

import base64
import grp
import hashlib
import os
import pwd
import stat

import pytest

from executor_support import action_doc


def act(run_request, action, check=False, **inputs):
    return run_request(action_doc(action, **inputs), check=check).finished("act")


def sha(data):
    return hashlib.sha256(data).hexdigest()


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


# ---------------------------------------------------------------- plumb:file

def test_file_is_created_with_content_and_mode_then_left_alone(run_request, tmp_path):
    path = tmp_path / "app.conf"
    first = act(run_request, "plumb:file", path=str(path), content="port=80\n", mode="0640")
    assert first["status"] == "Success" and first["changed"] is True
    assert path.read_text() == "port=80\n" and mode_of(path) == 0o640
    assert set(first["details"]["changes"]) == {"ensure", "mode"}
    assert first["details"]["sha256After"] == sha(b"port=80\n")
    second = act(run_request, "plumb:file", path=str(path), content="port=80\n", mode="0640")
    assert second["changed"] is False
    assert second["details"]["reason"] == "file already has the wanted content and attributes"
    assert second["details"]["sha256Before"] == sha(b"port=80\n")


def test_content_change_is_reported_by_hash_never_by_content(run_request, tmp_path):
    path = tmp_path / "secret.env"
    path.write_text("TOKEN=old\n")
    path.chmod(0o600)
    step = act(run_request, "plumb:file", path=str(path), content="TOKEN=new-secret\n")
    assert path.read_text() == "TOKEN=new-secret\n"
    assert mode_of(path) == 0o600                      # kept: no mode was asked for
    assert step["details"]["changes"] == {
        "content": {"before": sha(b"TOKEN=old\n"), "after": sha(b"TOKEN=new-secret\n")}}
    assert "new-secret" not in str(step) and "old" not in step["stdout"]


def test_replace_is_atomic_new_inode_and_no_temporary_left(run_request, tmp_path):
    path = tmp_path / "f"
    path.write_text("a")
    before = os.stat(path).st_ino
    act(run_request, "plumb:file", path=str(path), content="b")
    assert os.stat(path).st_ino != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "work"]


def test_mode_only_change_keeps_the_inode(run_request, tmp_path):
    path = tmp_path / "f"
    path.write_text("same")
    path.chmod(0o644)
    inode = os.stat(path).st_ino
    step = act(run_request, "plumb:file", path=str(path), content="same", mode="0600")
    assert step["details"]["changes"] == {"mode": {"before": "0644", "after": "0600"}}
    assert os.stat(path).st_ino == inode and mode_of(path) == 0o600


def test_binary_content_from_base64(run_request, tmp_path):
    data = bytes(range(256))
    path = tmp_path / "blob"
    act(run_request, "plumb:file", path=str(path), contentBase64=base64.b64encode(data).decode())
    assert path.read_bytes() == data


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_owner_and_group_are_applied(run_request, tmp_path):
    user = pwd.getpwuid(65534).pw_name
    group = grp.getgrgid(65534).gr_name
    path = tmp_path / "owned"
    act(run_request, "plumb:file", path=str(path), content="x", owner=user, group=group)
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (65534, 65534)
    again = act(run_request, "plumb:file", path=str(path), content="x", owner="65534",
                group="65534")
    assert again["changed"] is False


def test_missing_parent_needs_make_dirs(run_request, tmp_path):
    path = tmp_path / "a" / "b" / "f"
    refused = act(run_request, "plumb:file", path=str(path), content="x")
    assert refused["status"] == "Failed" and "set makeDirs: true" in refused["stderr"]
    made = act(run_request, "plumb:file", path=str(path), content="x", makeDirs=True)
    assert made["status"] == "Success" and path.read_text() == "x"
    assert "parents" in made["details"]["changes"]


def test_absent_removes_and_is_then_a_no_op(run_request, tmp_path):
    path = tmp_path / "gone"
    path.write_text("x")
    removed = act(run_request, "plumb:file", path=str(path), ensure="absent")
    assert removed["changed"] is True and not path.exists()
    again = act(run_request, "plumb:file", path=str(path), ensure="absent")
    assert again["changed"] is False and again["details"]["reason"] == "file is already absent"


def test_symlinks_and_directories_are_refused(run_request, tmp_path):
    (tmp_path / "target").write_text("t")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    link = act(run_request, "plumb:file", path=str(tmp_path / "link"), content="x")
    assert link["status"] == "Failed" and "symbolic link" in link["stderr"]
    assert (tmp_path / "target").read_text() == "t"
    folder = act(run_request, "plumb:file", path=str(tmp_path), content="x")
    assert folder["status"] == "Failed" and "not a regular file" in folder["stderr"]


def test_check_mode_reports_changes_and_touches_nothing(run_request, tmp_path):
    path = tmp_path / "f"
    path.write_text("old")
    step = act(run_request, "plumb:file", check=True, path=str(path), content="new", mode="0600")
    assert step["changed"] is True and step["details"]["checkMode"] is True
    assert set(step["details"]["changes"]) == {"content", "mode"}
    assert step["stdout"].startswith("%s: would change" % path)
    assert path.read_text() == "old"


def test_unknown_owner_fails_with_the_name(run_request, tmp_path):
    step = act(run_request, "plumb:file", path=str(tmp_path / "f"), content="x",
               owner="plumbtest-nobody")
    assert step["status"] == "Failed" and "no such user" in step["stderr"]


# ---------------------------------------------------------------- plumb:directory

def test_directory_is_created_with_parents_and_mode(run_request, tmp_path):
    path = tmp_path / "a" / "b"
    step = act(run_request, "plumb:directory", path=str(path), mode="0750")
    assert step["changed"] is True and path.is_dir() and mode_of(path) == 0o750
    again = act(run_request, "plumb:directory", path=str(path), mode="0750")
    assert again["changed"] is False
    assert again["details"]["reason"] == "directory already has the wanted attributes"


def test_directory_mode_is_corrected(run_request, tmp_path):
    path = tmp_path / "d"
    path.mkdir(mode=0o777)
    path.chmod(0o777)
    step = act(run_request, "plumb:directory", path=str(path), mode="0755")
    assert step["details"]["changes"] == {"mode": {"before": "0777", "after": "0755"}}
    assert mode_of(path) == 0o755


def test_absent_removes_only_empty_directories_unless_recursive(run_request, tmp_path):
    path = tmp_path / "d"
    (path / "sub").mkdir(parents=True)
    (path / "sub" / "f").write_text("x")
    refused = act(run_request, "plumb:directory", path=str(path), ensure="absent")
    assert refused["status"] == "Failed" and "is not empty (1 entries)" in refused["stderr"]
    assert path.exists()
    removed = act(run_request, "plumb:directory", path=str(path), ensure="absent", recursive=True)
    assert removed["changed"] is True and not path.exists()
    again = act(run_request, "plumb:directory", path=str(path), ensure="absent")
    assert again["changed"] is False


def test_directory_over_a_file_is_refused(run_request, tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    step = act(run_request, "plumb:directory", path=str(path))
    assert step["status"] == "Failed" and "is not a directory" in step["stderr"]


def test_root_cannot_be_removed(run_request):
    run = run_request(action_doc("plumb:directory", path="/", ensure="absent", recursive=True))
    assert run.final["statusDetails"] == "InvalidDocument"
    assert "other than /" in run.final["message"]
