"""A parameter value is data, never code: hostile values stay inert and arrive intact.

Every payload is run through real `sh` in every quoting position a runCommand line can
put `{{ p }}` in. The payloads try to create files under the test's temporary directory
(never anything destructive); afterwards no such file may exist and the script must have
received exactly the value.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from agent import shellquote
from executor_support import shell_doc

PAYLOADS = {
    "command substitution then command": "$(touch {T}/pwned); touch {T}/pwned2",
    "backticks": "`touch {T}/pwned3`",
    "single quote breakout": "'; touch {T}/pwned4; echo '",
    "double quote breakout": "\"; touch {T}/pwned5; echo \"",
    "backslashes": "\\ \\\\ \\\" \\' \\$(touch {T}/pwned6)",
    "newlines": "one\ntouch {T}/pwned7\n$(touch {T}/pwned8)\nlast",
    "heredoc terminator": "EOF\ntouch {T}/pwned9\nEOF",
    "variables": "$HOME ${HOME} $0 $$ $@",
    "glob": "*",
    "leading dash": "-n",
    "empty": "",
    "unicode": "h\u00e9llo w\u00f6rld \u2603 \u65e5\u672c \U0001F600",
    "arithmetic and braces": "$((1+1)) {a,b} ~ ${IFS} !! %s%n",
    "template lookalike": "{{ other }} {{ssm:/x}} {{ p }}",
    "dollar dollar": "a$$b",
}

# (runCommand line, how the written file relates to the value)
TEMPLATES = {
    "bare": ("printf '%s' {{ p }} > out", lambda v: v),
    "double quotes": ("printf '%s' \"{{ p }}\" > out", lambda v: v),
    "single quotes": ("printf '%s' '{{ p }}' > out", lambda v: v),
    "embedded in double quotes": ("printf '%s' \"<{{ p }}>\" > out", lambda v: "<%s>" % v),
    "embedded in single quotes": ("printf '%s' '<{{ p }}>' > out", lambda v: "<%s>" % v),
    "command substitution": ("printf '%s' \"$(printf '%s' {{ p }})\" > out",
                             lambda v: v.rstrip("\n")),
    "backticks": ("printf '%s' \"`printf '%s' {{ p }}`\" > out", lambda v: v.rstrip("\n")),
    "parameter expansion": ("printf '%s' \"${PLUMB_UNSET:-{{ p }}}\" > out", lambda v: v),
    "comment": ("printf '%s' done > out # {{ p }}", lambda v: "done"),
    "assignment": ("x={{ p }}; printf '%s' \"$x\" > out", lambda v: v),
}

HEREDOC = ["cat > out <<EOF", "{{ p }}", "EOF"]


def planted(tmp_path):
    return sorted(p.name for p in tmp_path.glob("pwned*"))


def run_value(run_request, tmp_path, lines, value, interpolation=None):
    definition = {"type": "String"}
    if interpolation:
        definition["interpolationType"] = interpolation
    doc = shell_doc(*lines, parameters={"p": definition}, workingDirectory=str(tmp_path))
    run = run_request(doc, {"p": value})
    out = tmp_path / "out"
    return run, out.read_bytes().decode("utf-8") if out.exists() else None


@pytest.mark.parametrize("payload", PAYLOADS, ids=str)
@pytest.mark.parametrize("template", TEMPLATES, ids=str)
def test_value_is_inert_and_intact_in_every_quoting_position(run_request, tmp_path, template,
                                                             payload):
    value = PAYLOADS[payload].replace("{T}", str(tmp_path))
    line, expected = TEMPLATES[template]
    run, written = run_value(run_request, tmp_path, [line], value)
    assert run.final["status"] == "Success", run.events
    assert planted(tmp_path) == []
    assert written == expected(value)


@pytest.mark.parametrize("payload", PAYLOADS, ids=str)
def test_value_is_inert_and_intact_in_an_unquoted_heredoc(run_request, tmp_path, payload):
    value = PAYLOADS[payload].replace("{T}", str(tmp_path))
    run, written = run_value(run_request, tmp_path, HEREDOC, value)
    assert planted(tmp_path) == []
    assert written == value + "\n"


@pytest.mark.parametrize("payload", PAYLOADS, ids=str)
def test_env_var_interpolation_parameters_are_inert_too(run_request, tmp_path, payload):
    value = PAYLOADS[payload].replace("{T}", str(tmp_path))
    lines = ["printf '%s|%s' {{ p }} \"$SSM_p\" > out"]
    run, written = run_value(run_request, tmp_path, lines, value, interpolation="ENV_VAR")
    assert planted(tmp_path) == []
    assert written == "%s|%s" % (value, value)


def test_env_var_parameter_alone_on_a_line_is_still_data(run_request, tmp_path):
    value = "touch %s/pwned" % tmp_path
    run, _ = run_value(run_request, tmp_path, ["{{ p }}"], value, interpolation="ENV_VAR")
    assert planted(tmp_path) == []
    assert run.final["status"] == "Failed"     # sh: "touch …/pwned": not found


def test_ansi_c_quotes_are_inert_in_any_sh(run_request, tmp_path):
    value = PAYLOADS["command substitution then command"].replace("{T}", str(tmp_path))
    run, written = run_value(run_request, tmp_path, ["printf '%s' $'{{ p }}' > out"], value)
    assert planted(tmp_path) == []
    assert value in written      # dash has no $'...': it keeps the `$` signs around the value


def test_string_list_items_arrive_as_separate_arguments(run_request, tmp_path):
    items = ["a b", "$(touch %s/pwned)" % tmp_path, "*", ""]
    doc = shell_doc("printf '[%s]' {{ l }} > out", parameters={"l": {"type": "StringList"}},
                    workingDirectory=str(tmp_path))
    run = run_request(doc, {"l": items})
    assert planted(tmp_path) == []
    assert (tmp_path / "out").read_text() == "".join("[%s]" % i for i in items)


def test_commands_parameter_alone_on_a_line_runs_verbatim_without_re_expansion(run_request,
                                                                               tmp_path):
    doc = shell_doc("{{ commands }}", "printf '%s' {{ p }} >> out",
                    parameters={"commands": {"type": "StringList"}, "p": {"type": "String"}},
                    workingDirectory=str(tmp_path))
    run = run_request(doc, {"commands": ["printf '%s,' '{{ p }}' > out", "printf 'x,' >> out"],
                            "p": "$(touch %s/pwned)" % tmp_path})
    assert run.final["status"] == "Success", run.events
    assert (tmp_path / "out").read_text() == "{{ p }},x,$(touch %s/pwned)" % tmp_path
    assert planted(tmp_path) == []


def test_inherited_ssm_variables_do_not_leak_into_scripts(run_request, tmp_path, monkeypatch):
    monkeypatch.setenv("SSM_p", "from-the-agent-environment")
    monkeypatch.setenv("SSM_stray", "stray")
    doc = shell_doc("printf '%s|%s' {{ p }} \"${SSM_stray:-unset}\" > out",
                    parameters={"p": {"type": "String"}}, workingDirectory=str(tmp_path))
    run_request(doc, {"p": "given"})
    assert (tmp_path / "out").read_text() == "given|unset"


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
@pytest.mark.parametrize("payload", ["command substitution then command", "newlines",
                                     "backslashes"])
def test_rendered_scripts_are_inert_under_bash_as_well(tmp_path, payload):
    value = PAYLOADS[payload].replace("{T}", str(tmp_path))
    lines = [line for line, _ in TEMPLATES.values()] + ["printf '%s' $'{{ p }}' > out"] + HEREDOC
    script = shellquote.render([(line, None) for line in lines], {"p": value})
    env = dict(shellquote.environment({"p": value}), PATH="/usr/bin:/bin")
    subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, check=True)
    assert planted(tmp_path) == []
    assert (tmp_path / "out").read_text() == value + "\n"
