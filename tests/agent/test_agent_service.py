"""AWS:Service: systemctl's unit files and units merge into one entry per service."""

from pathlib import Path

import pytest

from agent.collectors import service
from agent.collectors.base import CollectorError, Options

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "collectors"


@pytest.fixture
def services():
    found = service.parse(
        (FIXTURES / "systemctl-list-unit-files.debian12.txt").read_text(),
        (FIXTURES / "systemctl-list-units.debian12.txt").read_text(),
    )
    return {entry["Name"]: entry for entry in found}


def test_running_service_is_running_with_its_start_type(services):
    assert services["systemd-timesyncd"] == {
        "Name": "systemd-timesyncd",
        "Status": "running",
        "StartType": "enabled",
        "Description": "Network Time Synchronization",
        "LoadState": "loaded",
        "ActiveState": "active",
        "SubState": "running",
    }


@pytest.mark.parametrize(
    "name, status",
    [
        ("postgresql", "exited"),
        ("postgresql@15-main", "failed"),
        ("packagekit", "starting"),
        ("apt-daily", "stopped"),
        ("x11-common", "stopped"),
    ],
)
def test_status_follows_active_and_sub_state(services, name, status):
    assert services[name]["Status"] == status


def test_instance_takes_its_templates_start_type(services):
    assert services["getty@tty1"]["StartType"] == "enabled"
    assert services["postgresql@15-main"]["StartType"] == "disabled"


def test_unit_files_never_loaded_are_stopped_services(services):
    assert services["console-getty"]["Status"] == "stopped"
    assert services["console-getty"]["StartType"] == "disabled"
    assert services["cryptdisks"]["StartType"] == "masked"


def test_templates_and_aliases_are_not_services(services):
    assert "getty@" not in services
    assert "dbus-org.freedesktop.login1" not in services


def test_unit_without_a_unit_file_has_an_empty_start_type(services):
    assert services["auditd"]["LoadState"] == "not-found"
    assert services["auditd"]["StartType"] == ""


def test_no_systemd_makes_the_type_unknown_not_empty(monkeypatch):
    monkeypatch.setattr(service, "SYSTEMD_RUNTIME_DIR", "/nonexistent/systemd/system")
    monkeypatch.setattr(service.sysv, "INIT_D", "/nonexistent/init.d")  # no SysV scripts either
    with pytest.raises(CollectorError, match="systemd is not running on this node"):
        service.collect(Options())


def test_systemctl_output_when_not_booted_holds_no_units():
    text = (FIXTURES / "systemctl-list-units.not-booted.txt").read_text()
    assert service.parse_units(text) == []
