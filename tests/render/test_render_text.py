"""The terminal view: drift apart from planned change, recaps, colour only on request."""

from __future__ import annotations

import re

from reconciler.planmodel import Action, Classification as C
from reconciler.render import render_text

ANSI = re.compile(r"\033\[[0-9;]*m")


def test_last_line_is_exactly_the_summary_line(plans):
    for plan in plans.values():
        for options in ({}, {"color": True}, {"verbose": True}):
            assert render_text(plan, **options).splitlines()[-1] == plan.summary().line()


def test_no_changes_is_said_plainly_before_the_summary(quiet):
    lines = render_text(quiet).splitlines()
    assert lines[-3] == "No changes. Every node matches the manifests."


def test_blocked_and_unknown_only_is_not_called_in_sync(plans):
    text = render_text(plans["nothing_to_apply"])
    assert "Every node matches" not in text
    assert "No changes to apply now" in text and "1 resource could not be observed" in text


def test_empty_plan_says_no_node_is_targeted(build):
    assert "No node is targeted" in render_text(build.plan())


def test_drift_is_shown_before_planned_changes(mixed):
    text = render_text(mixed)
    web1 = text[text.index("node web-1"):text.index("node web-2")]
    assert web1.index("Changed outside plumb (drift):") < web1.index("Planned changes:")
    assert web1.index("files:/etc/ssh/sshd_config") < web1.index("packages:nginx")


def test_resource_line_has_symbol_address_association_and_source(mixed):
    text = render_text(mixed)
    assert "  + packages:nginx  (web-nginx, manifests/associations/web-nginx.yaml:14)" in text
    assert "  - packages:telnet  (web-nginx, manifests/associations/web-nginx.yaml:16)" in text
    assert "  ~ files:/etc/ssh/sshd_config  (harden-ssh, manifests/associations/harden-ssh.yaml:18)" in text


def test_field_changes_and_diff_are_shown_indented(mixed):
    text = render_text(mixed)
    assert '      mode: "0644" -> "0600"' in text
    assert "        +PermitRootLogin no" in text
    assert "      then runs: restart:sshd" in text


def test_blocked_item_names_window_and_time(mixed):
    assert "blocked by window sunday-night until 2026-11-23T02:00:00Z" in render_text(mixed)


def test_unknown_item_says_why(mixed):
    text = render_text(mixed)
    assert "  ? sysctl:net.ipv4.ip_forward" in text
    assert "permission denied reading /proc/sys/net/ipv4/ip_forward" in text


def test_unreachable_node_shows_its_error(mixed):
    text = render_text(mixed)
    assert "node db-1 (unreachable)" in text
    assert "error: ssh: connect to host 10.0.0.12 port 22: Connection refused" in text
    assert "  db-1: unreachable" in text


def test_per_node_recap_counts_that_node_only(mixed):
    text = render_text(mixed)
    assert "  web-1: 1 to add, 3 to change, 1 to remove, 2 drifted, 1 unknown, 0 blocked" in text
    assert "  web-2: 0 to add, 1 to change, 0 to remove, 0 drifted, 0 unknown, 1 blocked" in text


def test_in_sync_items_and_reasons_only_when_verbose(mixed):
    assert "in sync: running and enabled" not in render_text(mixed)
    verbose = render_text(mixed, verbose=True)
    assert "In sync:" in verbose and "in sync: running and enabled" in verbose


def test_every_noop_shows_a_reason_even_when_the_planner_gave_none(build):
    plan = build.plan(build.node("n", build.resource("packages:vim", reason="")))
    assert "no reason given" in render_text(plan, verbose=True)


def test_no_colour_codes_unless_asked(plans):
    for plan in plans.values():
        assert "\033" not in render_text(plan, verbose=True)


def test_colour_marks_actions_and_drift(mixed):
    text = render_text(mixed, color=True)
    assert "\033[32m+\033[0m packages:nginx" in text
    assert "\033[33m~\033[0m files:/etc/nginx" in text
    assert "\033[31m-\033[0m packages:telnet" in text
    assert "\033[35mChanged outside plumb (drift):\033[0m" in text


def test_colour_changes_nothing_but_the_escape_codes(plans):
    for plan in plans.values():
        assert ANSI.sub("", render_text(plan, color=True, verbose=True)) == render_text(plan, verbose=True)


def test_control_characters_from_nodes_cannot_drive_the_terminal(build):
    diff = "--- a\n+++ b\n-old\n+\033]0;pwned\007new\n"
    plan = build.plan(build.node("n", build.resource("files:/x", C.DRIFT, Action.UPDATE, "edited\033[2J",
                                                     content_diff=diff)))
    text = render_text(plan)
    assert "\033" not in text and "\007" not in text
    assert "\\x1b]0;pwned\\x07new" in text


def test_diagnostics_are_listed(build):
    text = render_text(build.plan(diagnostics=("manifests/web.yaml:14:7: error: /spec/x: unknown field",)))
    assert "Problems in the manifests:" in text and "manifests/web.yaml:14:7" in text
    assert "No changes" not in text
