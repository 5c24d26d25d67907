"""Custom:*: SSM custom inventory files become their own types; bad files are reported."""

from pathlib import Path

import pytest

from agent.collectors import custom
from agent.collectors.base import CollectorError, Options

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "collectors" / "custom"


def collect(directory):
    return custom.collect(Options(custom_dir=str(directory)))


def test_each_valid_file_is_one_type_and_an_object_is_one_entry():
    assert collect(FIXTURES / "valid") == {
        "Custom:RackInfo": [{"RackLocation": "Bay B/Row C/Rack D/Shelf E", "RackId": "r-0042"}],
        "Custom:SoftwareLicense": [
            {"Product": "Oracle Database", "Edition": "Standard Two", "Seats": "4"},
            {"Product": "Acme Backup", "Edition": "Pro", "Seats": "1"},
        ],
    }


def test_missing_directory_means_no_custom_types(tmp_path):
    assert collect(tmp_path / "absent") == {}


def test_broken_files_make_their_type_unknown_and_the_rest_still_report():
    found = collect(FIXTURES / "invalid")
    assert found["Custom:Location"] == [{"Site": "fra1"}]
    assert "not a string" in str(found["Custom:Power"])
    assert "defined by both dup-a.json and dup-b.json" in str(found["Custom:Owner"])
    stray = str(found["Custom:*"])
    assert "lowercase.json: TypeName 'custom:rack'" in stray
    assert "truncated.json: not JSON" in stray
    assert set(found) == {"Custom:Location", "Custom:Power", "Custom:Owner", "Custom:*"}


@pytest.mark.parametrize("type_name", ["custom:Rack", "CUSTOM:Rack", "Custom:rack", "AWS:Rack", "Custom:", "Custom:" + "R" * 100])
def test_type_name_must_be_custom_with_capitals(type_name):
    with pytest.raises(CollectorError, match="TypeName"):
        custom.check_type_name(type_name)


@pytest.mark.parametrize(
    "content, message",
    [
        ('"text"', "object or a list"),
        ('[1]', "not an object"),
        ('{"%s": "v"}' % ("k" * 65), "1-64 characters"),
        ('{"k": "%s"}' % ("v" * 4097), "longer than 4096"),
    ],
)
def test_content_follows_ssm_limits(content, message):
    with pytest.raises(CollectorError, match=message):
        custom.parse('{"SchemaVersion": "1.0", "TypeName": "Custom:X", "Content": %s}' % content)


def test_schema_version_is_required():
    with pytest.raises(CollectorError, match="SchemaVersion"):
        custom.parse('{"TypeName": "Custom:X", "Content": {}}')
