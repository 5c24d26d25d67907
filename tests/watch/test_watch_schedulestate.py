"""schedulestate: when associations are due, how failing nodes back off, what a cycle may apply."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml

from reconciler.loader import load
from reconciler.planmodel import Action, Classification, NodePlan, Plan, ResourcePlan, Source
from reconciler.schedule import Context, parse_schedule
from reconciler.schedulestate import (Due, History, NodeBackoff, Timing, due, hold_not_due, next_run, node_work, ran,
                                      seen)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)  # a Monday
MINUTE = timedelta(minutes=1)


def timing(name, expression="", only_at_interval=False, offset_days=0):
    schedule = parse_schedule(expression, Context.ASSOCIATION) if expression else None
    return Timing(name, schedule, only_at_interval, timedelta(days=offset_days))


def due_names(timings, histories, now, changed=False):
    return due(timings, histories, now, changed).names


# --- no schedule -------------------------------------------------------------------------


def test_an_unscheduled_association_runs_when_first_seen_then_only_on_changes():
    t = timing("once")
    assert due_names([t], {}, T0) == {"once"}
    after = {"once": History(T0, last_run=T0)}
    assert due([t], after, T0 + timedelta(days=400)) == Due(frozenset(), None)
    assert due_names([t], after, T0 + MINUTE, changed=True) == {"once"}


# --- rate -------------------------------------------------------------------------------


def test_a_rate_runs_when_first_seen_then_every_interval_after_its_last_run():
    t = timing("r", "rate(30 minutes)")
    assert due_names([t], {"r": History(T0)}, T0) == {"r"}
    history = {"r": History(T0, last_run=T0)}
    early = due([t], history, T0 + 29 * MINUTE)
    assert early.names == set() and early.next_at == T0 + 30 * MINUTE
    assert due_names([t], history, T0 + 30 * MINUTE) == {"r"}


def test_a_rate_also_runs_on_a_manifest_change():
    t = timing("r", "rate(1 day)")
    assert due_names([t], {"r": History(T0, last_run=T0)}, T0 + MINUTE, changed=True) == {"r"}


# --- cron -------------------------------------------------------------------------------


def test_a_cron_runs_when_first_seen_then_at_its_next_fire_time():
    t = timing("weekly", "cron(0 2 ? * SUN *)")
    assert due_names([t], {"weekly": History(T0)}, T0) == {"weekly"}
    history = {"weekly": History(T0, last_run=T0)}
    sunday = datetime(2026, 3, 8, 2, 0, tzinfo=timezone.utc)
    assert due([t], history, sunday - MINUTE) == Due(frozenset(), sunday)
    assert due_names([t], history, sunday) == {"weekly"}


def test_missed_cron_fires_make_one_run_not_one_per_fire():
    t = timing("every-4h", "cron(0 0/4 * * ? *)")
    history = {"every-4h": History(T0, last_run=T0)}
    late = T0 + timedelta(hours=13)  # 12:00, 16:00 and 20:00 were missed
    assert due_names([t], history, late) == {"every-4h"}
    history = ran(history, {"every-4h"}, late)
    assert next_run(t, history["every-4h"]) == datetime(2026, 3, 3, 0, 0, tzinfo=timezone.utc)


def test_apply_only_at_cron_interval_waits_for_the_first_fire_even_on_changes():
    t = timing("nightly", "cron(0 2 * * ? *)", only_at_interval=True)
    fire = datetime(2026, 3, 3, 2, 0, tzinfo=timezone.utc)
    assert due([t], {"nightly": History(T0)}, T0) == Due(frozenset(), fire)
    assert due_names([t], {"nightly": History(T0)}, T0 + MINUTE, changed=True) == set()
    assert due_names([t], {"nightly": History(T0)}, fire) == {"nightly"}


def test_schedule_offset_runs_days_after_each_fire_without_skipping_any():
    t = timing("patch", "cron(0 2 ? * SUN *)", only_at_interval=True, offset_days=2)
    tuesday = datetime(2026, 3, 3, 2, 0, tzinfo=timezone.utc)  # Sunday the 1st (before T0) + 2 days
    assert next_run(t, History(T0)) == tuesday
    assert next_run(t, History(T0, last_run=tuesday)) == tuesday + timedelta(days=7)


# --- at ---------------------------------------------------------------------------------


def test_an_at_association_runs_once_at_its_time_and_not_before_even_on_a_change():
    t = timing("migrate", "at(2026-03-02T12:00:00)")
    noon = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
    assert due([t], {"migrate": History(T0)}, T0, changed=True) == Due(frozenset(), noon)
    assert due_names([t], {"migrate": History(T0)}, noon) == {"migrate"}
    assert due([t], {"migrate": History(T0, last_run=noon)}, noon + timedelta(days=30)) == Due(frozenset(), None)


def test_an_at_time_already_past_when_first_seen_runs_once_at_once():
    t = timing("late", "at(2026-03-01T00:00:00)")
    assert due_names([t], {}, T0) == {"late"}
    assert due_names([t], {"late": History(T0, last_run=T0)}, T0 + MINUTE) == set()


# --- bookkeeping -------------------------------------------------------------------------


def test_the_earliest_next_time_is_reported_among_associations_not_due():
    timings = [timing("a", "rate(2 hours)"), timing("b", "rate(30 minutes)"), timing("c")]
    history = {n: History(T0, last_run=T0) for n in "abc"}
    assert due(timings, history, T0 + MINUTE) == Due(frozenset(), T0 + 30 * MINUTE)


def test_new_associations_are_first_seen_now_and_removed_ones_are_forgotten():
    old = {"kept": History(T0, last_run=T0), "removed": History(T0)}
    later = T0 + timedelta(hours=1)
    assert seen([timing("kept"), timing("new")], old, later) == {"kept": old["kept"], "new": History(later)}


def test_timing_is_read_from_a_loaded_association(tmp_path):
    spec = {"targets": [{"key": "InstanceIds", "values": ["*"]}], "scheduleExpression": "cron(0 2 ? * SUN *)",
            "applyOnlyAtCronInterval": True, "scheduleOffset": 3,
            "state": {"directories": {str(tmp_path / "d"): {"mode": "0755"}}}}
    manifest = {"apiVersion": "plumb.dev/v1", "kind": "Association", "metadata": {"name": "weekly"}, "spec": spec}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(manifest))
    result = load(tmp_path)
    assert result.ok, [d.render() for d in result.errors]
    t = Timing.of(result.model.associations[0])
    assert (t.name, str(t.schedule), t.only_at_interval, t.offset) == \
        ("weekly", "cron(0 2 ? * SUN *)", True, timedelta(days=3))


# --- backoff -------------------------------------------------------------------------------


def skips(backoff: NodeBackoff, node: str, cycles: int) -> list[bool]:
    return [node in backoff.start_cycle() for _ in range(cycles)]


def test_a_failing_node_sits_out_1_2_4_cycles_then_is_tried_again():
    backoff = NodeBackoff()
    for waited in (1, 2, 4, 8, 16):
        backoff.failed("web-1")
        assert backoff.left("web-1") == waited
        assert skips(backoff, "web-1", waited + 1) == [True] * waited + [False]


def test_backoff_is_capped():
    backoff = NodeBackoff(cap=30)
    for _ in range(12):
        backoff.failed("web-1")
    assert backoff.left("web-1") == 30 and backoff.failures("web-1") == 12


def test_a_success_resets_the_backoff_and_other_nodes_are_not_affected():
    backoff = NodeBackoff()
    for _ in range(3):
        backoff.failed("web-1")
    backoff.failed("web-2")
    backoff.succeeded("web-1")
    assert (backoff.left("web-1"), backoff.failures("web-1")) == (0, 0)
    assert backoff.start_cycle() == {"web-2"}
    backoff.failed("web-1")
    assert backoff.left("web-1") == 1, "a new failure starts again at one cycle"


def test_clear_forgets_every_node():
    backoff = NodeBackoff()
    backoff.failed("a")
    backoff.clear()
    assert backoff.start_cycle() == frozenset()


# --- owed work -------------------------------------------------------------------------------


def test_a_skipped_node_owes_what_was_due_and_gets_it_when_back():
    due_now = frozenset({"nginx"})
    work, owed = node_work(["web-1", "web-2"], due_now, {}, skipped=frozenset({"web-2"}))
    assert work == {"web-1": {"nginx"}} and owed == {"web-2": {"nginx"}}
    work, owed = node_work(["web-1", "web-2"], frozenset({"motd"}), owed, skipped=frozenset())
    assert work == {"web-1": {"motd"}, "web-2": {"nginx", "motd"}} and owed == {}


def test_nothing_due_and_nothing_owed_is_no_work():
    assert node_work(["web-1"], frozenset(), {}, frozenset()) == ({}, {})
    assert node_work(["web-1"], frozenset(), {"gone": frozenset({"x"})}, frozenset()) == ({}, {})


# --- holding back what is not due ---------------------------------------------------------------


def resource(address, association, classification, action=Action.UPDATE):
    kind, _, rid = address.partition(":")
    return ResourcePlan(address, kind, rid, association, Source("m.yaml", 3, 5, "/spec"), action, classification,
                        "why")


def plan_of(*nodes):
    return Plan("1.0", "2026-03-02T10:00:00Z", "m", "abc", tuple(nodes))


def test_changes_of_associations_not_due_are_held_as_blocked_with_their_next_time():
    changing = resource("files:/etc/motd", "motd", Classification.DRIFT)
    held = resource("packages:nginx", "nginx", Classification.PENDING_CHANGE, Action.CREATE)
    quiet = resource("services:nginx", "nginx", Classification.IN_SYNC, Action.NOOP)
    document = {"schemaVersion": "2.2", "mainSteps": [{"name": "files_etc_motd"}, {"name": "packages_nginx"}]}
    plan = plan_of(NodePlan("web-1", resources=(changing, held, quiet), document=document),
                   NodePlan("web-2", reachable=False, error="refused"))
    nxt = T0 + timedelta(hours=1)
    out = hold_not_due(plan, {"web-1": frozenset({"motd"})}, {"nginx": nxt, "motd": None})
    web1, web2 = out.nodes
    assert web2 == plan.nodes[1]
    assert web1.resources[0] == changing and web1.resources[2] == quiet
    assert web1.resources[1].classification is Classification.BLOCKED
    assert web1.resources[1].blocked_until == "2026-03-02T11:00:00Z"
    assert "not due: association nginx runs next at 2026-03-02T11:00:00Z" in web1.resources[1].reason
    assert [r.address for r in web1.changes] == ["files:/etc/motd"]
    assert web1.document["mainSteps"] == [{"name": "files_etc_motd"}]
    assert out.git_revision == "abc"


def test_a_node_with_nothing_due_keeps_no_corrective_document():
    held = resource("packages:nginx", "nginx", Classification.PENDING_CHANGE)
    plan = plan_of(NodePlan("web-1", resources=(held,), document={"mainSteps": [{"name": "packages_nginx"}]}))
    (web1,) = hold_not_due(plan, {}, {"nginx": None}).nodes
    assert web1.changes == () and web1.document is None
    assert "runs on a manifest change" in web1.resources[0].reason


@pytest.mark.parametrize("expression", ["rate(30 minutes)", "cron(0 2 ? * SUN *)", "at(2030-01-01T00:00:00)", ""])
def test_next_run_never_returns_a_time_before_the_last_run(expression):
    t = timing("x", expression)
    last = T0 + timedelta(hours=5)
    when = next_run(t, History(T0, last_run=last))
    assert when is None or when > last
