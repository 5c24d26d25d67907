"""plumb:User and plumb:Group: getent output becomes account entries."""

from pathlib import Path

import pytest

from agent.collectors import groups, users
from agent.collectors.base import CollectorError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "collectors"


def test_users_have_ids_home_and_shell_but_no_password():
    found = users.parse((FIXTURES / "getent-passwd.debian12.txt").read_text())
    assert len(found) == 24
    assert found[0] == {"Name": "root", "Uid": 0, "Gid": 0, "Gecos": "root", "Home": "/root", "Shell": "/bin/bash"}
    assert all(set(entry) == {"Name", "Uid", "Gid", "Gecos", "Home", "Shell"} for entry in found)


def test_users_are_ordered_by_uid():
    found = users.parse((FIXTURES / "getent-passwd.debian12.txt").read_text())
    assert [entry["Uid"] for entry in found] == sorted(entry["Uid"] for entry in found)


def test_groups_list_their_members():
    found = {g["Name"]: g for g in groups.parse((FIXTURES / "getent-group.debian12.txt").read_text())}
    assert len(found) == 47
    assert found["root"] == {"Name": "root", "Gid": 0, "Members": []}
    assert found["ssl-cert"]["Members"] == ["postgres"]
    assert all(isinstance(g["Members"], list) for g in found.values())


def test_group_member_list_is_split_on_commas():
    assert groups.parse("sudo:x:27:alice,bob\n") == [{"Name": "sudo", "Gid": 27, "Members": ["alice", "bob"]}]


@pytest.mark.parametrize("parse, line", [(users.parse, "root:x:0:0:root\n"), (groups.parse, "wheel:x:ten:\n")])
def test_malformed_lines_are_parse_errors(parse, line):
    with pytest.raises(CollectorError, match="line 1"):
        parse(line)
