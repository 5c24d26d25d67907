"""The Parameter Store's three-way plan (pure): desired (git) vs last written from git vs the store."""

from __future__ import annotations

from datetime import datetime, timezone

from reconciler.paramplan import DesiredParameter, ObservedParameter, ParameterState, plan_parameters
from reconciler.planmodel import Action, Classification, Source
from reconciler.render import render_json, render_text
from reconciler.planmodel import Plan

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
SRC = Source("manifests/params.yaml", 3, 1, "/spec")


def desired(digest="d1", value="v1", type_="String", managed=True, policies=(), labels=(), hash_="h1", **kw):
    state = ParameterState(type_, digest, None if type_ == "SecureString" else value, policies=policies,
                           labels=labels, **kw)
    return DesiredParameter("/app/p", SRC, state, hash_, managed)


def observed(digest="d1", value="v1", type_="String", version=1, state_hash="h1", applied="h1", policies=(),
             modified_at="2026-11-20T00:00:00Z", **kw):
    state = ParameterState(type_, digest, None if type_ == "SecureString" else value, policies=policies, **kw)
    return ObservedParameter("/app/p", version, state, state_hash, applied, "2026-11-20T00:00:00Z", modified_at,
                             "cli root@host")


def one(want, have):
    plan = plan_parameters([want], {"/app/p": have} if have else {}, NOW)
    return plan.resources[0]


def test_missing_is_created_as_version_1():
    r = one(desired(), None)
    assert (r.action, r.classification) == (Action.CREATE, Classification.PENDING_CHANGE)
    assert "version 1 will be created" in r.reason


def test_same_value_is_in_sync_with_its_version():
    r = one(desired(), observed(version=4))
    assert (r.action, r.classification) == (Action.NOOP, Classification.IN_SYNC)
    assert r.reason == "in sync (version 4)"


def test_a_change_outside_git_is_drift_and_says_who():
    r = one(desired(), observed(digest="d2", value="v2", state_hash="h2", version=2))
    assert (r.action, r.classification) == (Action.UPDATE, Classification.DRIFT)
    assert "changed outside git by cli root@host" in r.reason and "version 3 will be written" in r.reason
    assert [(c.field, c.before, c.after) for c in r.changes] == [("value", "v2", "v1")]


def test_a_change_in_git_is_pending_and_both_is_drift_and_change():
    assert one(desired(digest="d3", value="v3", hash_="h3"), observed()).classification is \
        Classification.PENDING_CHANGE
    both = one(desired(digest="d3", value="v3", hash_="h3"), observed(digest="d2", value="v2", state_hash="h2"))
    assert both.classification is Classification.DRIFT_AND_CHANGE


def test_unmanaged_parameters_are_created_but_never_overwritten():
    assert one(desired(managed=False), None).action is Action.CREATE
    r = one(desired(managed=False), observed(digest="d2", value="v2", state_hash="h2"))
    assert (r.action, r.classification) == (Action.NOOP, Classification.IN_SYNC)
    assert "managed: false" in r.reason


def test_secure_values_are_only_digests_and_render_as_markers():
    r = one(desired(type_="SecureString", digest="ab" * 32), observed(type_="SecureString", digest="cd" * 32,
                                                                      state_hash="h2"))
    change = r.changes[0]
    assert change.sensitive and change.before == "cd" * 32
    plan = Plan("1.0", "now", "m", "", (plan_parameters([desired(type_="SecureString", digest="ab" * 32)],
                                                         {"/app/p": observed(type_="SecureString", digest="cd" * 32,
                                                                             state_hash="h2")}, NOW),))
    text = render_text(plan, color=False)
    assert "value: (sensitive, sha256:cdcdcdcd) -> (sensitive, sha256:abababab)" in text
    assert '"(sensitive, sha256:abababab)"' in render_json(plan)


def test_metadata_only_change_updates_in_place():
    r = one(desired(description="new", hash_="h9"), observed(description="old"))
    assert "version 1 updated in place" in r.reason
    assert [(c.field, c.before, c.after) for c in r.changes] == [("description", "old", "new")]


def test_labels_missing_from_the_latest_version_are_a_change():
    r = one(desired(labels=("stable",), hash_="h9"), observed())
    assert [(c.field, c.after) for c in r.changes] == [("labels", ["stable"])]


def test_expiration_in_the_past_deletes_and_is_not_recreated():
    expired = ({"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": "2026-11-01T00:00:00Z"}},)
    r = one(desired(policies=expired), observed(policies=expired))
    assert (r.action, r.classification) == (Action.DELETE, Classification.PENDING_CHANGE)
    assert "expired at 2026-11-01T00:00:00Z" in r.reason
    gone = one(desired(policies=expired), None)
    assert gone.action is Action.NOOP and "not created" in gone.reason


def test_notification_policies_become_notices():
    policies = ({"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": "2026-11-25T12:00:00Z"}},
                {"Type": "ExpirationNotification", "Version": "1.0", "Attributes": {"Before": "5", "Unit": "Days"}},
                {"Type": "NoChangeNotification", "Version": "1.0", "Attributes": {"After": "48", "Unit": "Hours"}})
    r = one(desired(policies=policies), observed(policies=policies, modified_at="2026-11-20T00:00:00Z"))
    assert r.classification is Classification.IN_SYNC
    assert "ExpirationNotification: expires at 2026-11-25T12:00:00Z (in 2 days)" in r.reason
    assert "NoChangeNotification: unchanged since 2026-11-20T00:00:00Z (3 days)" in r.reason
    quiet = one(desired(policies=policies[:2]), observed(policies=policies[:2]))
    assert "ExpirationNotification" in quiet.reason  # 2 days before expiry, inside the 5-day notice
    early = plan_parameters([desired(policies=policies)], {"/app/p": observed(policies=policies,
                                                                              modified_at="2026-11-23T00:00:00Z")},
                            datetime(2026, 11, 10, tzinfo=timezone.utc)).resources[0]
    assert "Notification" not in early.reason


def test_unknown_desired_value_is_never_guessed():
    want = DesiredParameter("/app/p", SRC, ParameterState("SecureString", ""), "", True, unknown="no key")
    r = one(want, observed())
    assert (r.action, r.classification) == (Action.NOOP, Classification.UNKNOWN)


def test_a_saved_plan_keeps_secret_digests_as_markers():
    from reconciler.engine import artifact

    node = plan_parameters([desired(type_="SecureString", digest="ab" * 32)],
                           {"/app/p": observed(type_="SecureString", digest="cd" * 32, state_hash="h2")}, NOW)
    plan = Plan("1.0", "now", "m", "", (node,))
    loaded, _ = artifact.from_json(artifact.to_json(plan, "digest"))
    assert render_text(loaded, color=False) == render_text(plan, color=False)
