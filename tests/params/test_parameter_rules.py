"""PutParameter's rules: names, types, tiers and sizes, allowed patterns, policies, values."""

from __future__ import annotations

import pytest

from paramkit import error_of
from reconciler import parameters
from reconciler.kinds.parameter import Policy
from reconciler.parameters import (ParameterError, PutRequest, normalise_policies, split_selector, state_hash,
                                   value_digest)

EXPIRATION = {"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": "2030-01-31T00:00:00Z"}}
NOTIFY = {"Type": "ExpirationNotification", "Version": "1.0", "Attributes": {"Before": "15", "Unit": "Days"}}
NO_CHANGE = {"Type": "NoChangeNotification", "Version": "1.0", "Attributes": {"After": "20", "Unit": "Hours"}}


# --- names ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name, code", [
    ("/a/b c", "ValidationException"),
    ("/prod/web$", "ParameterPatternMismatchException"),
    ("/aws/x", "ParameterPatternMismatchException"),
    ("SSMthing", "ParameterPatternMismatchException"),
    ("/AwS-param", "ParameterPatternMismatchException"),
    ("a/b", "ParameterPatternMismatchException"),
    ("/a//b", "ParameterPatternMismatchException"),
    ("/a/b/", "ParameterPatternMismatchException"),
    ("/" + "/".join(["l"] * 16), "HierarchyLevelLimitExceededException"),
    ("/" + "x" * 1000, "ParameterPatternMismatchException"),
])
def test_bad_names_are_refused_with_ssm_codes(put, name, code):
    assert error_of(put, name, "v").code == code


def test_fifteen_levels_and_trimmed_names_are_fine(put, service):
    deep = "/" + "/".join(f"l{i}" for i in range(15))
    assert put(deep, "v").name == deep
    assert put("  /padded  ", "v").name == "/padded"


def test_a_and_slash_a_are_the_same_parameter(put, service):
    assert put("plain", "v").name == "/plain"
    assert service.get("plain").version == service.get("/plain").version == 1
    assert error_of(put, "/plain", "w").code == "ParameterAlreadyExists"


def test_unknown_type_and_type_change(put):
    assert error_of(put, "/t", "v", type="Integer").code == "UnsupportedParameterType"
    put("/t", "a,b", type="StringList")
    error = error_of(put, "/t", "v", type="String", overwrite=True)
    assert error.code == "HierarchyTypeMismatchException" and "StringList" in error.message


def test_overwrite_is_needed_to_change_an_existing_parameter(put):
    put("/o", "1")
    assert error_of(put, "/o", "2").code == "ParameterAlreadyExists"
    assert put("/o", "2", overwrite=True).version == 2


# --- values, tiers, sizes ------------------------------------------------------------------
def test_standard_tier_allows_4096_bytes_of_utf8(put):
    assert put("/s/ok", "x" * 4096).tier == "Standard"
    error = error_of(put, "/s/big", "x" * 4097)
    assert error.code == "ValidationException" and "4097 bytes" in error.message and "Advanced" in error.message
    assert error_of(put, "/s/wide", "é" * 2049).code == "ValidationException"  # 4098 bytes, 2049 characters


def test_advanced_tier_allows_8192_bytes(put):
    assert put("/adv/ok", "x" * 8192, tier="Advanced").tier == "Advanced"
    assert error_of(put, "/adv/big", "x" * 8193, tier="Advanced").code == "ValidationException"


def test_intelligent_tiering_picks_advanced_only_when_needed(put, monkeypatch):
    assert put("/it/small", "x", tier="Intelligent-Tiering").tier == "Standard"
    assert put("/it/large", "x" * 5000, tier="Intelligent-Tiering").tier == "Advanced"
    assert put("/it/policy", "x", tier="Intelligent-Tiering", policies=(EXPIRATION,)).tier == "Advanced"
    put("/it/up", "x", tier="Advanced")
    assert put("/it/up", "y", tier="Intelligent-Tiering", overwrite=True).tier == "Advanced"  # never back down
    assert error_of(put, "/it/huge", "x" * 8193, tier="Intelligent-Tiering").code == "ValidationException"
    monkeypatch.setitem(parameters.TIER_QUOTAS, "Standard", 1)  # /it/small fills the Standard tier
    assert put("/it/full", "x", tier="Intelligent-Tiering").tier == "Advanced"


def test_advanced_never_goes_back_to_standard(put):
    put("/down", "x", tier="Advanced")
    error = error_of(put, "/down", "y", tier="Standard", overwrite=True)
    assert error.code == "ValidationException" and "Advanced" in error.message
    assert put("/down", "y", overwrite=True).tier == "Advanced"  # tier left out: kept


def test_standard_upgrades_to_advanced(put):
    put("/up", "x")
    assert put("/up", "x" * 5000, tier="Advanced", overwrite=True).tier == "Advanced"


def test_parameter_limit_per_tier(put, monkeypatch):
    monkeypatch.setitem(parameters.TIER_QUOTAS, "Standard", 2)
    put("/q/1", "x")
    put("/q/2", "x")
    error = error_of(put, "/q/3", "x")
    assert error.code == "ParameterLimitExceeded" and "Advanced" in error.message
    assert put("/q/1", "y", overwrite=True).version == 2  # existing ones can still change
    assert put("/q/3", "x", tier="Advanced").tier == "Advanced"


def test_values_cannot_be_empty_or_hold_references(put):
    assert error_of(put, "/v/empty", "").code == "ValidationException"
    assert error_of(put, "/v/ref", "x{{ssm:/other}}y").code == "ValidationException"
    assert error_of(put, "/v/ref2", "{{ anything }}").code == "ValidationException"
    assert put("/v/braces", "a{{b").version == 1  # no closing }}: no reference
    assert error_of(put, "/v/nothing", None).code == "ValidationException"


def test_description_and_data_type_limits(put):
    assert error_of(put, "/d", "x", description="d" * 1025).code == "ValidationException"
    assert error_of(put, "/d", "x", data_type="aws:ec2:image").code == "ValidationException"


# --- allowed patterns ----------------------------------------------------------------------
def test_allowed_pattern_must_match_the_whole_value(put):
    assert put("/p/port", "8080", allowed_pattern=r"^\d+$").value == "8080"
    error = error_of(put, "/p/bad", "80a", allowed_pattern=r"\d+")
    assert error.code == "ParameterPatternMismatchException" and "80a" not in error.message
    # the kept pattern applies to a new value
    assert error_of(put, "/p/port", "http", overwrite=True).code == "ParameterPatternMismatchException"


def test_allowed_pattern_applies_to_each_string_list_item(put):
    put("/p/list", "a1,b2", type="StringList", allowed_pattern="[a-z][0-9]")
    error = error_of(put, "/p/list", "a1,bb", type="StringList", overwrite=True)
    assert error.code == "ParameterPatternMismatchException" and "item 2" in error.message


def test_invalid_and_overlong_patterns(put):
    assert error_of(put, "/p/x", "v", allowed_pattern="[unclosed").code == "InvalidAllowedPatternException"
    assert error_of(put, "/p/x", "v", allowed_pattern="a" * 1025).code == "ValidationException"


# --- policies ------------------------------------------------------------------------------
def test_policies_need_the_advanced_tier(put):
    assert error_of(put, "/pol/s", "x", policies=(EXPIRATION,)).code == "IncompatiblePolicyException"
    version = put("/pol/a", "x", tier="Advanced", policies=(EXPIRATION, NOTIFY, NO_CHANGE))
    assert version.policies == (EXPIRATION, NOTIFY, NO_CHANGE)


@pytest.mark.parametrize("policies, code", [
    ((EXPIRATION, EXPIRATION), "IncompatiblePolicyException"),
    ((NOTIFY,) * 11, "PoliciesLimitExceededException"),
    (({"Type": "Rotation", "Version": "1.0", "Attributes": {}},), "InvalidPolicyTypeException"),
    (({"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": "next tuesday"}},),
     "InvalidPolicyAttributeException"),
    (({"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": "2030-01-31T00:00:00"}},),
     "InvalidPolicyAttributeException"),  # no offset: not an instant
    (({"Type": "ExpirationNotification", "Version": "1.0", "Attributes": {"Before": "0", "Unit": "Days"}},),
     "InvalidPolicyAttributeException"),
    (({"Type": "NoChangeNotification", "Version": "1.0", "Attributes": {"After": "3", "Unit": "Weeks"}},),
     "InvalidPolicyAttributeException"),
    (({"Type": "NoChangeNotification", "Version": "1.0", "Attributes": {"Unit": "Days"}},),
     "InvalidPolicyAttributeException"),
    (({"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": "2030-01-31T00:00:00Z", "X": "1"}},),
     "InvalidPolicyAttributeException"),
    (({"Type": "Expiration", "Version": "2.0", "Attributes": {"Timestamp": "2030-01-31T00:00:00Z"}},),
     "InvalidPolicyAttributeException"),
    (("not an object",), "InvalidPolicyTypeException"),
])
def test_policy_errors(put, policies, code):
    assert error_of(put, "/pol/bad", "x", tier="Advanced", policies=policies).code == code


def test_manifest_shaped_policies_are_normalised():
    manifest = {"type": "ExpirationNotification", "attributes": {"before": "15", "unit": "Days"}}
    frozen = Policy("Expiration", {"timestamp": "2030-01-31T00:00:00+01:00"})
    assert normalise_policies((manifest, frozen)) == (
        NOTIFY, {"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": "2030-01-31T00:00:00+01:00"}})
    assert normalise_policies(({},)) == ()  # SSM's [{}] clears them


def test_policies_are_kept_replaced_and_cleared(put):
    put("/pol/k", "x", tier="Advanced", policies=(EXPIRATION,))
    assert put("/pol/k", "y", overwrite=True).policies == (EXPIRATION,)
    assert put("/pol/k", "y", overwrite=True, policies=(NOTIFY,)).policies == (NOTIFY,)
    assert put("/pol/k", "y", overwrite=True, policies=({},)).policies == ()


# --- pure helpers --------------------------------------------------------------------------
def test_split_selector():
    assert split_selector("/a/b:3") == ("/a/b", "3")
    assert split_selector("/a/b:prod") == ("/a/b", "prod")
    assert split_selector("/a/b") == ("/a/b", "")
    with pytest.raises(ParameterError, match="ValidationException"):
        split_selector("/a/b:")


def test_state_hash_ignores_version_and_authorship_but_not_labels(put, service):
    one = put("/h", "v", description="d")
    two = put("/h", "w", overwrite=True, by="someone else")
    back = put("/h", "v", overwrite=True)
    assert state_hash(one) == state_hash(back) != state_hash(two)
    assert back.version == 3
    service.label("/h", ["prod"])
    assert state_hash(service.get("/h")) != state_hash(back)
    assert value_digest("v") == one.digest and len(one.digest) == 64


def test_a_put_request_is_frozen():
    request = PutRequest("/a", "String", value="v")
    with pytest.raises(AttributeError):
        request.value = "w"
