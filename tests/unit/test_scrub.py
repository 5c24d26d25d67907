"""Scrubbing secrets out of text plumb did not write (step output, node errors)."""

from reconciler.scrub import Scrubber, marker


def test_every_occurrence_becomes_the_marker():
    s = Scrubber(["hunter2-xyz"])
    assert s.text("pw=hunter2-xyz; again hunter2-xyz") == f"pw={marker('hunter2-xyz')}; again {marker('hunter2-xyz')}"
    assert marker("hunter2-xyz").startswith("(sensitive, sha256:")


def test_longest_secret_wins_and_lines_of_multiline_secrets_are_masked():
    s = Scrubber(["abcd", "abcdefgh", "line-one\nline-two"])
    assert s.text("abcdefgh") == marker("abcdefgh")
    assert "line-two" not in s.text("got: line-two")


def test_short_secrets_are_not_scrubbed_and_nested_values_are():
    s = Scrubber(["ab"])
    assert not s and s.text("ab") == "ab"
    s.add("topsecret")
    assert s.value({"a": ["x topsecret"], "b": 1}) == {"a": [f"x {marker('topsecret')}"], "b": 1}
