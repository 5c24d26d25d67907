"""Jinja2 templates in a sandbox with StrictUndefined: the one home of jinja2.

Templates (file templates and association parameters) may also contain Parameter Store
references (`{{ssm:/path}}`, `{{ssm-secure:/path}}`). Those are not Jinja syntax, so
`prepare()` rewrites each into a call of the `ssm()` function the renderer provides; the
caller decides how a reference resolves (the store, a placeholder for planning, ...).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .references import _SSM_REF


@dataclass(frozen=True)
class TemplateProblem:
    line: int
    message: str


class TemplateError(Exception):
    def __init__(self, problem: TemplateProblem):
        self.problem = problem
        super().__init__(f"line {problem.line}: {problem.message}")


def _environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


_ENV = _environment()


def prepare(text: str) -> str:
    """Rewrite `{{ssm:/p:sel}}` tokens as `{{ ssm("/p:sel", false) }}` calls."""

    def call(match) -> str:
        secure = "true" if match["scheme"] == "ssm-secure" else "false"
        body = match["body"].replace("\\", "\\\\").replace('"', '\\"')
        return '{{ ssm("' + body + '", ' + secure + ") }}"

    return _SSM_REF.sub(call, text)


def syntax_problems(text: str, name: str = "<template>") -> list[TemplateProblem]:
    """Syntax errors of a template (empty when it parses)."""
    try:
        _ENV.parse(prepare(text), name=name)
    except jinja2.TemplateSyntaxError as exc:
        return [TemplateProblem(exc.lineno or 0, (exc.message or str(exc)).rstrip("."))]
    return []


def is_constant(text: str) -> bool:
    """True when `render(text, ...)` is `text` whatever the context: no Jinja syntax (nor
    `{{ssm:...}}`) and no newline for Jinja to normalise."""
    return "{" not in text and "\r" not in text


def render(text: str, context: Mapping[str, Any], ssm: Callable[[str, bool], str], name: str = "<template>") -> str:
    """Render in the sandbox; undefined names, sandbox violations and errors → TemplateError."""
    if is_constant(text):
        return text
    try:
        template = _compiled(text)
        return template.render({**context, "ssm": ssm})
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(TemplateProblem(exc.lineno or 0, exc.message or str(exc))) from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(TemplateProblem(_error_line(exc, name), str(exc.message))) from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(TemplateProblem(_error_line(exc, name), f"not allowed in a template: {exc}")) from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise TemplateError(TemplateProblem(_error_line(exc, name), str(exc))) from None


@functools.lru_cache(maxsize=1024)
def _compiled(text: str) -> jinja2.Template:
    """The compiled template of a text: compiled once, rendered for every node (templates are
    immutable; a syntax error is raised again each time, never cached)."""
    return _ENV.from_string(prepare(text))


def _error_line(exc: BaseException, name: str) -> int:
    """The template line an exception was raised from (Jinja rewrites tracebacks to it)."""
    tb = exc.__traceback__
    line = 0
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
