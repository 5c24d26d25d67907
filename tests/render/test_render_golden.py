"""Golden files: the exact text, Markdown and JSON of the representative plans in conftest.

Regenerate after an intended change with `PLUMB_UPDATE_GOLDEN=1 python -m pytest tests/render`
and review the diff of tests/fixtures/render/ like any other change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.render import render_json, render_markdown, render_text

NAMES = ["mixed", "no_changes", "nothing_to_apply"]  # the `plans` fixture (conftest.py)
GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "render"
FORMATS = {
    "txt": lambda plan: render_text(plan),
    "color.txt": lambda plan: render_text(plan, color=True),
    "verbose.txt": lambda plan: render_text(plan, verbose=True),
    "md": render_markdown,
    "json": render_json,
}


@pytest.mark.parametrize("suffix", sorted(FORMATS))
@pytest.mark.parametrize("name", NAMES)
def test_output_matches_golden_file(plans, name, suffix):
    actual = FORMATS[suffix](plans[name])
    path = GOLDEN / f"{name}.{suffix}"
    if os.environ.get("PLUMB_UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path.name} is missing: run with PLUMB_UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8"), f"{path.name} differs (PLUMB_UPDATE_GOLDEN=1 regenerates)"


def test_every_representative_plan_has_golden_files(plans):
    assert sorted(plans) == NAMES
