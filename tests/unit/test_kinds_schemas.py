"""One kind = one module = one schema with the same stem; schemas are valid and strict."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from reconciler import kinds, schema

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
NON_KIND_SCHEMAS = {"common", "inventory"}


def test_every_kind_module_has_a_schema_with_its_stem():
    for module in kinds.MODULES:
        assert module.__name__.rsplit(".", 1)[1] == module.SCHEMA
        assert (SCHEMAS / f"{module.SCHEMA}.schema.json").is_file()
        assert schema.load(module.SCHEMA)["properties"]["kind"] == {"const": module.KIND}


def test_every_schema_is_a_kind_or_a_known_shared_schema():
    stems = {p.name[: -len(".schema.json")] for p in SCHEMAS.glob("*.schema.json")}
    assert stems - NON_KIND_SCHEMAS == {m.SCHEMA for m in kinds.MODULES}


@pytest.mark.parametrize("stem", sorted(p.name[: -len(".schema.json")] for p in SCHEMAS.glob("*.schema.json")))
def test_schema_is_valid_draft_2020_12(stem):
    data = json.loads((SCHEMAS / f"{stem}.schema.json").read_text())
    assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(data)


def _objects(node, path=""):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _objects(value, f"{path}/{index}")


@pytest.mark.parametrize("module", kinds.MODULES, ids=lambda m: m.KIND)
def test_every_object_with_properties_forbids_unknown_fields(module):
    bundled = schema.bundled(module.SCHEMA)
    for path, node in _objects(bundled):
        if "properties" in node and node.get("type") == "object" and "/if" not in path:
            assert node.get("additionalProperties") is False or isinstance(node.get("additionalProperties"), dict), path


@pytest.mark.parametrize("module", kinds.MODULES, ids=lambda m: m.KIND)
def test_bundled_schema_is_self_contained(module):
    text = json.dumps(schema.bundled(module.SCHEMA))
    assert "common.schema.json" not in text
    jsonschema.Draft202012Validator.check_schema(json.loads(text))
