"""The shell lexer writes a variable reference fit for each quoting context (cases are data)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from agent import shellquote

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "shellquote_render.yaml").read_text())
VALUES = CASES["values"]


def segments(case):
    expand = case.get("expand", {})
    return [(line, expand.get(i)) for i, line in enumerate(case["lines"])]


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: c["name"])
def test_reference_is_written_for_its_quoting_context(case):
    assert shellquote.render(segments(case), VALUES) == case["script"]


@pytest.mark.parametrize("case", CASES["errors"], ids=lambda c: c["name"])
def test_unsafe_positions_are_refused_with_a_reason(case):
    with pytest.raises(shellquote.ShellTemplateError) as err:
        shellquote.render(segments(case), VALUES)
    assert err.value.details == case["details"]
    assert case["message"] in str(err.value)


def test_environment_exports_strings_lists_items_and_counts():
    env = shellquote.environment({"p": "v", "l": ["a", "b c"], "e": []})
    assert env == {"SSM_p": "v", "SSM_l": '["a","b c"]', "SSM_l_COUNT": "2", "SSM_l_0": "a",
                   "SSM_l_1": "b c", "SSM_e": "[]", "SSM_e_COUNT": "0"}


def test_values_never_appear_in_the_rendered_script():
    secret = "s3cr3t-$(id)-'\"`"
    lines = ["echo {{ p }} \"{{ p }}\" '{{ p }}' $'{{ p }}' # {{ p }}",
             "cat <<EOF", "{{ p }}", "EOF", "echo $(echo {{ p }}) `echo {{ p }}` ${X:-{{ p }}}"]
    script = shellquote.render([(line, None) for line in lines], {"p": secret})
    assert "s3cr3t" not in script


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: c["name"])
def test_rendered_script_is_valid_sh(case, tmp_path):
    script = tmp_path / "script.sh"
    script.write_text(shellquote.render(segments(case), VALUES) + "\n")
    done = subprocess.run([case.get("shell", "sh"), "-n", str(script)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
