"""Shell-safe parameter substitution for aws:runShellScript: a small POSIX sh lexer.

Owns the rule "a parameter value is data, never code". Every document parameter is
exported to the script's environment (`environment()`), and `render()` replaces each
`{{ name }}` in the script by a *reference* to that variable, written for the quoting
context the shell is in at that spot, so the value itself never enters the script text:

    bare word               "${SSM_p}"           (one word: no splitting, no globbing)
    inside "..."            ${SSM_p}
    inside '...'            '"${SSM_p}"'         (close, expand in double quotes, reopen)
    inside $'...'           '"${SSM_p}"$'
    ${...} word             as its surroundings (quoted or bare)
    unquoted heredoc body   ${SSM_p}             (quotes would be literal text there)
    $(...) and `...`        a fresh command context, so bare rules apply
    $(( ... ))              the value itself, only if it is a decimal integer, else error
    comment                 ${SSM_p}             (never runs; keeps secrets out of the file)
    quoted heredoc <<'EOF'  error: nothing expands there, so no safe reference exists

A StringList bare becomes one word per item ("${SSM_p_0}" "${SSM_p_1}" ...); anywhere else
it is the JSON text SSM would have spliced in, held by SSM_p. A backslash right before
`{{` keeps SSM's textual meaning as far as it can (see `_escape_prefix`).

The one deliberate exception is a runCommand entry that is exactly `{{ p }}`
(AWS-RunShellScript's `{{ commands }}`): its value is inserted verbatim, because its
purpose is to run, but only where a command can start. The same line inside a heredoc
body, an open quote or after a backslash continuation is data like any other reference
(otherwise a heredoc would expand `$(...)` inside the value).

Known limits (documented for users): values handed to another interpreter are parsed by it
(eval, sh -c "...", ssh host "...", su -c, bash arithmetic on variables such as
[[ $x -eq 1 ]] / (( )) / let); a `case` pattern's `)` inside $( ) ends the substitution
early for the lexer; quoting cannot stop a value starting with `-` from being read as an
option (use `--`). Apart from the `{{ commands }}` exception, a lexer mistake can only
weaken quoting (splitting/globbing): the script text never contains a value (except
integers in $(( ))), so nothing in a value is parsed as shell code. A parameter declared
`interpolationType: ENV_VAR` never takes the exception, so it is data in every position.
"""

from __future__ import annotations

import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from agent.document import INVALID_DOCUMENT, INVALID_PARAMETERS, REF, Value, stringify

CMD, SUBST, BACKTICK, SQ, DQ, ANSI, PARAM, ARITH, COMMENT, HEREDOC = range(10)
_COMMAND = (CMD, SUBST, BACKTICK)
_WORD_BREAK = frozenset(" \t\n;&|()<>")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")


class ShellTemplateError(ValueError):
    """The script cannot be rendered safely; `details` is the SSM statusDetails to report."""

    def __init__(self, message: str, details: str = INVALID_DOCUMENT) -> None:
        super().__init__(message)
        self.details = details


def env_name(name: str, index: Optional[int] = None) -> str:
    """SSM_<name> (SSM's ENV_VAR convention), SSM_<name>_<i> for list items."""
    return "SSM_%s" % name if index is None else "SSM_%s_%d" % (name, index)


def environment(values: Mapping[str, Value]) -> Dict[str, str]:
    """Variables exported for the script: names are [a-zA-Z0-9]+ so `_` suffixes never clash."""
    env: Dict[str, str] = {}
    for name, value in values.items():
        env[env_name(name)] = stringify(value)
        if isinstance(value, list):
            env["SSM_%s_COUNT" % name] = str(len(value))
            env.update({env_name(name, i): item for i, item in enumerate(value)})
    return env


def render(lines: Sequence[Tuple[str, Optional[str]]], values: Mapping[str, Value]) -> str:
    """Join runCommand lines with newlines and substitute references safely.

    Each line comes with its verbatim expansion, or None. A line that is exactly one
    `{{ commands }}` reference is replaced by that expansion only where a command can
    start (top level, not inside quotes, a heredoc body or a continued line); anywhere
    else it is data like every other reference.
    """
    renderer = _Renderer(values)
    for n, (text, verbatim) in enumerate(lines):
        if n:
            renderer.feed("\n", False)
        if verbatim is not None and renderer.at_command_start():
            renderer.feed(verbatim, True)
        else:
            renderer.feed(text, False)
    return "".join(renderer.out)


class _Frame:
    """One lexical context; `heredocs` queues bodies that start after this frame's newline."""

    __slots__ = ("kind", "depth", "word_start", "in_dq", "heredocs", "delim", "strip",
                 "quoted", "line_start")

    def __init__(self, kind: int, in_dq: bool = False) -> None:
        self.kind, self.in_dq = kind, in_dq
        self.depth = 0
        self.word_start = True
        self.heredocs: List[Tuple[str, bool, bool]] = []
        self.delim, self.strip, self.quoted, self.line_start = "", False, False, True


class _Renderer:
    def __init__(self, values: Mapping[str, Value]) -> None:
        self.values = values
        self.text, self.mask, self.pos = "", bytearray(), 0
        self.stack = [_Frame(CMD)]
        self.escape = False
        self.out: List[str] = []

    def at_command_start(self) -> bool:
        top = self.stack[-1]
        return top.kind in _COMMAND and top.word_start and not self.escape

    # -------------------------------------------------------------- driver
    def feed(self, text: str, verbatim: bool) -> None:
        """Append text (verbatim text is lexed for its quotes but never substituted)."""
        self.text += text
        self.mask.extend(b"\x01" * len(text) if verbatim else bytes(len(text)))
        i, n = self.pos, len(self.text)
        while i < n:
            top = self.stack[-1]
            if top.kind == HEREDOC and top.line_start and not self.escape:
                end = self._heredoc_end(i)
                if end is not None:
                    i = end
                    continue
                top.line_start = False
            match = self._reference(i)
            if match:
                self.out.append(self._replacement(match.group(1)))
                i = match.end()
                continue
            j = self._step(i)
            self.out.append(self.text[i:j])
            i = j
        self.pos = i

    def _reference(self, i: int) -> "Optional[re.Match[str]]":
        match = REF.match(self.text, i)
        if not match or match.group(1) not in self.values:
            return None
        if self.mask.find(1, i, match.end()) != -1:
            return None
        return match

    # -------------------------------------------------------------- replacement
    def _replacement(self, name: str) -> str:
        top = self.stack[-1]
        prefix = self._escape_prefix(top)
        top.word_start = top.line_start = False
        value = self.values[name]
        if top.kind == HEREDOC and top.quoted:
            raise ShellTemplateError(
                "{{ %s }} is inside a quoted heredoc (<<'%s'), where the shell expands "
                "nothing, so it cannot be passed safely; use an unquoted delimiter (<<%s) "
                "and write literal $ and ` as \\$ and \\`" % (name, top.delim, top.delim))
        if top.kind == ARITH:
            return prefix + _integer(name, value)
        if top.kind == SQ:
            return "'\"${%s}\"'" % env_name(name)
        if top.kind == ANSI:
            return prefix + "'\"${%s}\"$'" % env_name(name)
        if top.kind in _COMMAND or (top.kind == PARAM and not top.in_dq):
            return prefix + _bare(name, value)
        return prefix + "${%s}" % env_name(name)

    def _escape_prefix(self, top: _Frame) -> str:
        """A pending backslash would swallow our reference's first character.

        In double-quote-like contexts SSM's text would keep it as a literal backslash, so we
        double it; elsewhere it would have escaped the value's first character (which our
        quoting keeps literal anyway), so we neutralise it with a line continuation.
        """
        if not self.escape:
            return ""
        self.escape = False
        if top.kind in (DQ, HEREDOC, ANSI) or (top.kind == PARAM and top.in_dq):
            return "\\"
        if top.kind == BACKTICK:
            raise ShellTemplateError("a backslash right before a {{ parameter }} inside `...` "
                                     "is not supported; use $( ... ) instead")
        return "\n"

    # -------------------------------------------------------------- lexing
    def _step(self, i: int) -> int:
        top = self.stack[-1]
        if self.escape:
            self.escape = False
            if top.kind in _COMMAND:
                top.word_start = False
            return i + 1
        kind = top.kind
        if kind in _COMMAND:
            return self._step_command(top, i)
        if kind == SQ:
            return self._pop_if(self.text[i] == "'", i)
        if kind == COMMENT:
            if self.text[i] == "\n":
                self.stack.pop()
                return i
            return i + 1
        return {DQ: self._step_dq, ANSI: self._step_ansi, PARAM: self._step_param,
                ARITH: self._step_arith, HEREDOC: self._step_heredoc}[kind](top, i)

    def _pop_if(self, closes: bool, i: int) -> int:
        if closes:
            self.stack.pop()
        return i + 1

    def _push(self, kind: int, i: int, width: int, in_dq: bool = False) -> int:
        self.stack.append(_Frame(kind, in_dq))
        return i + width

    def _step_command(self, top: _Frame, i: int) -> int:
        c = self.text[i]
        top.word_start, was_start = c in _WORD_BREAK, top.word_start
        if c == "\\":
            self.escape = True
            return i + 1
        if c in "'\"":
            return self._push(SQ if c == "'" else DQ, i, 1)
        if c == "`":
            return self._pop_if(True, i) if top.kind == BACKTICK else self._push(BACKTICK, i, 1)
        if c == "$":
            return self._dollar(i, ansi=True, in_dq=False)
        if c == "#" and was_start:
            return self._push(COMMENT, i, 1)
        if c == "(":
            top.depth += 1
        elif c == ")":
            return self._close_paren(top, i)
        elif c == "<" and self.text.startswith("<<", i):
            return self._heredoc_operator(top, i)
        elif c == "\n" and top.heredocs:
            self._start_heredoc(top)
        return i + 1

    def _close_paren(self, top: _Frame, i: int) -> int:
        if top.depth:
            top.depth -= 1
        elif top.kind == SUBST:
            self.stack.pop()
        return i + 1

    def _dollar(self, i: int, ansi: bool, in_dq: bool) -> int:
        text = self.text
        if text.startswith("$((", i):
            return self._push(ARITH, i, 3, in_dq)
        nxt = text[i + 1:i + 2]
        if nxt == "(":
            return self._push(SUBST, i, 2)
        if nxt == "{" and not self._reference(i + 1):
            return self._push(PARAM, i, 2, in_dq)
        if nxt == "'" and ansi:
            return self._push(ANSI, i, 2)
        return i + 1

    def _step_dq(self, top: _Frame, i: int) -> int:
        c = self.text[i]
        if c == "\\":
            self.escape = True
            return i + 1
        if c == "`":
            return self._push(BACKTICK, i, 1)
        if c == "$":
            return self._dollar(i, ansi=False, in_dq=True)
        return self._pop_if(c == '"', i)

    def _step_ansi(self, top: _Frame, i: int) -> int:
        if self.text[i] == "\\":
            self.escape = True
            return i + 1
        return self._pop_if(self.text[i] == "'", i)

    def _step_param(self, top: _Frame, i: int) -> int:
        c = self.text[i]
        if c == "\\":
            self.escape = True
        elif c == "'" and not top.in_dq:
            return self._push(SQ, i, 1)
        elif c == '"':
            return self._push(DQ, i, 1)
        elif c == "`":
            return self._push(BACKTICK, i, 1)
        elif c == "$":
            return self._dollar(i, ansi=False, in_dq=top.in_dq)
        elif c == "{":
            top.depth += 1
        elif c == "}":
            if not top.depth:
                self.stack.pop()
            top.depth -= 1
        return i + 1

    def _step_arith(self, top: _Frame, i: int) -> int:
        c = self.text[i]
        if c == "$":
            return self._dollar(i, ansi=False, in_dq=top.in_dq)
        if c == "`":
            return self._push(BACKTICK, i, 1)
        if c == "(":
            top.depth += 1
        elif c == ")":
            if not top.depth and self.text.startswith("))", i):
                self.stack.pop()
                return i + 2
            top.depth = max(0, top.depth - 1)
        return i + 1

    # -------------------------------------------------------------- heredocs
    def _heredoc_operator(self, top: _Frame, i: int) -> int:
        text = self.text
        if text.startswith("<<<", i):
            return i + 3
        j = i + 2
        strip = text.startswith("-", j)
        j += strip
        start, raw, delim = _heredoc_word(text, j)
        if not raw:
            return j
        ref = REF.search(text, start)
        if ref and ref.start() <= start + len(raw):
            raise ShellTemplateError("a {{ parameter }} cannot be used in a heredoc delimiter "
                                     "(<<%s)" % text[start:ref.end()])
        quoted = any(q in raw for q in "'\"\\")
        top.heredocs.append((delim, strip, quoted))
        top.word_start = False
        return j

    def _start_heredoc(self, parent: _Frame) -> None:
        delim, strip, quoted = parent.heredocs.pop(0)
        frame = _Frame(HEREDOC)
        frame.delim, frame.strip, frame.quoted = delim, strip, quoted
        self.stack.append(frame)

    def _heredoc_end(self, i: int) -> Optional[int]:
        """At a body line start: if the line is the delimiter, consume it and close the body."""
        top = self.stack[-1]
        end = self.text.find("\n", i)
        end = len(self.text) if end == -1 else end
        line = self.text[i:end]
        if (line.lstrip("\t") if top.strip else line) != top.delim:
            return None
        self.out.append(self.text[i:end])
        self.stack.pop()
        return end      # the parent command frame sees the newline (and starts any next body)

    def _step_heredoc(self, top: _Frame, i: int) -> int:
        c = self.text[i]
        if c == "\n":
            top.line_start = True
        elif top.quoted:
            pass
        elif c == "\\":
            self.escape = True
        elif c == "`":
            return self._push(BACKTICK, i, 1)
        elif c == "$":
            return self._dollar(i, ansi=False, in_dq=True)
        return i + 1


def _heredoc_word(text: str, j: int) -> Tuple[int, str, str]:
    """Where the delimiter word after `<<` starts (blanks skipped), its raw and unquoted forms."""
    while j < len(text) and text[j] in " \t":
        j += 1
    start, chars, quote = j, [], ""
    while j < len(text):
        c = text[j]
        if quote:
            if c == quote:
                quote = ""
            else:
                chars.append(c)
        elif c in "'\"":
            quote = c
        elif c == "\\" and j + 1 < len(text):
            j += 1
            chars.append(text[j])
        elif c in _WORD_BREAK:
            break
        else:
            chars.append(c)
        j += 1
    return start, text[start:j], "".join(chars)


def _bare(name: str, value: Value) -> str:
    if isinstance(value, list):
        return " ".join('"${%s}"' % env_name(name, i) for i in range(len(value)))
    return '"${%s}"' % env_name(name)


def _integer(name: str, value: Value) -> str:
    if isinstance(value, str) and _INTEGER.match(value):
        return value
    raise ShellTemplateError("{{ %s }} is used inside $(( )), where the shell evaluates it "
                             "as arithmetic; its value must be a decimal integer" % name,
                             INVALID_PARAMETERS)
