"""plumb:user against the real account database (root, plumbtest_* names, cleaned up) and
plumb:sysctl against a fake /proc root, a persist file, and a real writable key if any."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess

import pytest

from agent.actions import sysctl, user
from executor_support import action_doc

needs_root_tools = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("useradd", "usermod", "userdel",
                                                           "groupadd", "groupdel")),
    reason="needs root and the shadow utilities")


def act(run_request, action, check=False, **inputs):
    return run_request(action_doc(action, **inputs), check=check).finished("act")


# ---------------------------------------------------------------- plumb:user

@pytest.fixture
def account():
    """A fresh user name and group name; both removed afterwards whatever happened."""
    name = "plumbtest_%s" % secrets.token_hex(4)
    group = "plumbtestg_%s" % secrets.token_hex(4)
    subprocess.run(["groupadd", group], check=True)
    yield name, group
    subprocess.run(["userdel", "-r", name], capture_output=True)
    subprocess.run(["groupdel", group], capture_output=True)


@needs_root_tools
def test_user_lifecycle_on_the_real_system(run_request, account, tmp_path):
    name, group = account
    planned = act(run_request, "plumb:user", check=True, name=name, shell="/bin/sh")
    assert planned["changed"] is True and planned["details"]["command"][0] == "useradd"
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
    created = act(run_request, "plumb:user", name=name, shell="/bin/sh", groups=[group],
                  home=str(tmp_path / "home"))
    assert created["status"] == "Success", created
    entry = pwd.getpwnam(name)
    assert (entry.pw_shell, entry.pw_dir) == ("/bin/sh", str(tmp_path / "home"))
    assert os.path.isdir(tmp_path / "home")
    assert user.observe(name).groups == (group,)
    same = act(run_request, "plumb:user", name=name, shell="/bin/sh", groups=[group])
    assert same["changed"] is False
    assert same["details"]["reason"] == "user already has the wanted attributes"
    changed = act(run_request, "plumb:user", name=name, shell="/bin/bash", groups=[])
    assert changed["details"]["changes"] == {
        "shell": {"before": "/bin/sh", "after": "/bin/bash"},
        "groups": {"before": [group], "after": []}}
    assert pwd.getpwnam(name).pw_shell == "/bin/bash" and user.observe(name).groups == ()
    removed = act(run_request, "plumb:user", name=name, ensure="absent", removeHome=True)
    assert removed["changed"] is True
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
    again = act(run_request, "plumb:user", name=name, ensure="absent")
    assert again["changed"] is False and again["details"]["reason"] == "user is already absent"


@needs_root_tools
def test_missing_group_fails_before_useradd(run_request, account):
    name, _ = account
    step = act(run_request, "plumb:user", name=name, groups=["plumbtest-no-such-group"])
    assert step["status"] == "Failed" and "does not exist" in step["stderr"]
    with pytest.raises(KeyError):
        pwd.getpwnam(name)


def spec(**inputs):
    return user.prepare(dict({"name": "alice"}, **inputs))


@pytest.mark.parametrize("inputs,seen,argv", [
    ({}, None, ["useradd", "-m", "alice"]),
    ({"system": True}, None, ["useradd", "-r", "-M", "alice"]),
    ({"uid": "1500", "groups": "wheel, docker", "shell": "/bin/zsh", "home": "/srv/a"}, None,
     ["useradd", "-u", "1500", "-G", "wheel,docker", "-s", "/bin/zsh", "-d", "/srv/a", "-m",
      "alice"]),
    ({"uid": 1501}, user.Observed(1500, (), "/bin/sh", "/home/alice"),
     ["usermod", "-u", "1501", "alice"]),
    ({"groups": ["docker"], "appendGroups": True}, user.Observed(1500, ("wheel",), "/bin/sh", "/h"),
     ["usermod", "-a", "-G", "docker", "alice"]),
    ({"groups": ["wheel"], "appendGroups": True},
     user.Observed(1500, ("wheel", "x"), "/bin/sh", "/h"), None),
    ({"groups": ["docker"]}, user.Observed(1500, ("wheel",), "/bin/sh", "/h"),
     ["usermod", "-G", "docker", "alice"]),
    ({"ensure": "absent", "removeHome": True}, user.Observed(1500, (), "/bin/sh", "/h"),
     ["userdel", "-r", "alice"]),
])
def test_user_plan_table(inputs, seen, argv):
    assert user.plan(spec(**inputs), seen)[0] == argv


@pytest.mark.parametrize("inputs,message", [
    ({"name": "Root; id"}, "not a valid user name"),
    ({"name": "-o"}, "not a valid user name"),
    ({"name": "a", "uid": "-1"}, "uid: expected a non-negative integer"),
    ({"name": "a", "shell": "bash"}, "shell: expected an absolute path"),
    ({"name": "a", "groups": ["-g0"]}, "invalid group name(s) -g0"),
])
def test_user_inputs_are_validated(inputs, message):
    with pytest.raises(Exception) as err:
        user.prepare(inputs)
    assert message in str(err.value)


# ---------------------------------------------------------------- plumb:sysctl

@pytest.fixture
def proc(tmp_path):
    root = tmp_path / "proc"
    (root / "sys" / "net" / "ipv4").mkdir(parents=True)
    (root / "sys" / "net" / "ipv4" / "ip_forward").write_text("0\n")
    (root / "sys" / "net" / "ipv4" / "tcp_rmem").write_text("4096\t131072\t6291456\n")
    return root


def test_runtime_value_is_written_once(run_request, proc):
    first = act(run_request, "plumb:sysctl", key="net.ipv4.ip_forward", value="1",
                procRoot=str(proc))
    assert first["changed"] is True
    assert first["details"]["changes"] == {"runtime": {"before": "0", "after": "1"}}
    assert (proc / "sys/net/ipv4/ip_forward").read_text() == "1\n"
    second = act(run_request, "plumb:sysctl", key="net/ipv4/ip_forward", value=1,
                 procRoot=str(proc))
    assert second["changed"] is False and second["details"]["reason"] == "already 1"


def test_whitespace_is_normalised_when_comparing(run_request, proc):
    step = act(run_request, "plumb:sysctl", key="net.ipv4.tcp_rmem", value="4096 131072  6291456",
               procRoot=str(proc))
    assert step["changed"] is False


def test_persist_replaces_the_line_for_the_key_and_keeps_the_rest(run_request, proc, tmp_path):
    conf = tmp_path / "sysctl.d" / "60-plumb.conf"
    conf.parent.mkdir()
    conf.write_text("# managed\nvm.swappiness = 10\nnet/ipv4/ip_forward=0\nkernel.x = 1\n")
    step = act(run_request, "plumb:sysctl", key="net.ipv4.ip_forward", value="1", persist=True,
               file=str(conf), procRoot=str(proc))
    assert set(step["details"]["changes"]) == {"runtime", "persisted"}
    assert conf.read_text() == ("# managed\nvm.swappiness = 10\nnet.ipv4.ip_forward = 1\n"
                                "kernel.x = 1\n")
    again = act(run_request, "plumb:sysctl", key="net.ipv4.ip_forward", value="1", persist=True,
                file=str(conf), procRoot=str(proc))
    assert again["changed"] is False and again["details"]["reason"] == "already 1 and persisted"


def test_persist_creates_the_file_and_check_mode_writes_nothing(run_request, proc, tmp_path):
    conf = tmp_path / "new" / "60-plumb.conf"
    checked = act(run_request, "plumb:sysctl", check=True, key="net.ipv4.ip_forward", value="1",
                  persist=True, file=str(conf), procRoot=str(proc))
    assert checked["changed"] is True and not conf.exists()
    assert (proc / "sys/net/ipv4/ip_forward").read_text() == "0\n"
    act(run_request, "plumb:sysctl", key="net.ipv4.ip_forward", value="1", persist=True,
        file=str(conf), procRoot=str(proc))
    assert conf.read_text() == "net.ipv4.ip_forward = 1\n"


def test_unknown_key_fails_and_bad_keys_are_refused(run_request, proc):
    step = act(run_request, "plumb:sysctl", key="net.ipv4.nope", value="1", procRoot=str(proc))
    assert step["status"] == "Failed" and "unknown sysctl key net.ipv4.nope" in step["stderr"]
    for key in ("../etc/passwd", "net/../../etc", "a..b", "/abs"):
        with pytest.raises(Exception, match="not a valid sysctl key"):
            sysctl.prepare({"key": key, "value": "1"})


@pytest.mark.parametrize("text,changed,result", [
    ("", True, "a.b = 1\n"),
    ("a.b = 1\n", False, "a.b = 1\n"),
    ("a.b=2\n", True, "a.b = 1\n"),
    ("# a.b = 2\nx = 3\n", True, "# a.b = 2\nx = 3\na.b = 1\n"),
    ("a.b = 2\nx = 3\na/b = 4\n", True, "a.b = 1\nx = 3\n"),
    ("-a.b = 1\n", False, "-a.b = 1\n"),
])
def test_render_conf_table(text, changed, result):
    assert sysctl.render_conf(text, "a.b", "1") == (result if changed else text, changed)


def writable(path):
    try:
        with open(path) as handle:
            current = handle.read()
        with open(path, "w") as handle:
            handle.write(current)
        return current.strip()
    except OSError:
        return None


DOMAINNAME = "/proc/sys/kernel/domainname"


@pytest.mark.skipif(writable(DOMAINNAME) is None, reason="kernel.domainname is not writable here")
def test_real_writable_key_is_set_and_restored(run_request):
    before = writable(DOMAINNAME)
    try:
        step = act(run_request, "plumb:sysctl", key="kernel.domainname", value="plumbtest.invalid")
        assert step["changed"] is True
        assert open(DOMAINNAME).read().strip() == "plumbtest.invalid"
        again = act(run_request, "plumb:sysctl", key="kernel.domainname", value="plumbtest.invalid")
        assert again["changed"] is False
    finally:
        with open(DOMAINNAME, "w") as handle:
            handle.write(before + "\n")
