"""YAML reading with positions: what the loader relies on to point into files."""

from __future__ import annotations

from reconciler.yamlsource import parse_documents


def test_positions_of_values_and_keys_are_one_based():
    docs, problems = parse_documents("a:\n  b: 1\n  'c/d': [x, y]\n", "f.yaml")
    assert not problems
    source = docs[0].source
    assert (source.value_at("/a/b").line, source.value_at("/a/b").column) == (2, 6)
    assert source.key_at("/a/c~1d").line == 3
    assert source.value_at("/a/c~1d/1").column == 14


def test_nearest_ancestor_position_for_missing_pointer():
    docs, _ = parse_documents("a:\n  b: 1\n", "f.yaml")
    assert docs[0].source.value_at("/a/zzz/0").line == 2


def test_dates_stay_strings_and_yaml11_numbers_are_remembered():
    docs, _ = parse_documents("d: 2024-01-01\nmode: 0644\n", "f.yaml")
    assert docs[0].value == {"d": "2024-01-01", "mode": 420}
    assert docs[0].source.value_at("/mode").text == "0644"


def test_duplicate_keys_are_errors_and_first_value_is_kept():
    docs, problems = parse_documents("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert docs[0].value["a"] == 1
    assert problems[0].line == 3 and "duplicate key 'a'" in problems[0].message


def test_multi_document_indexes_and_empty_documents():
    docs, problems = parse_documents("---\na: 1\n---\n---\nb: 2\n", "f.yaml")
    assert not problems
    assert [d.value for d in docs] == [{"a": 1}, None, {"b": 2}]
    assert docs[2].line == 5


def test_syntax_error_keeps_earlier_documents():
    docs, problems = parse_documents("a: 1\n---\nb: [\n", "f.yaml")
    assert docs[0].value == {"a": 1}
    assert problems and problems[0].code == "yaml-syntax" and problems[0].line >= 3


def test_unsafe_tags_are_rejected_not_executed():
    _, problems = parse_documents("a: !!python/object/apply:os.system ['true']\n", "f.yaml")
    assert problems and "unsupported YAML tag" in problems[0].message
    _, problems = parse_documents("a: !!python/name:os.system\n", "f.yaml")
    assert problems and "cannot read this value" in problems[0].message


def test_merge_keys_are_resolved():
    docs, problems = parse_documents("base: &b {x: 1}\nchild:\n  <<: *b\n  y: 2\n", "f.yaml")
    assert not problems and docs[0].value["child"] == {"x": 1, "y": 2}


def test_non_scalar_keys_are_reported():
    _, problems = parse_documents("? [a, b]\n: 1\n", "f.yaml")
    assert problems and "plain string" in problems[0].message
