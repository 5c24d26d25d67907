"""The pull-request comment: summary title, drift first, diffs folded, bounded length."""

from __future__ import annotations

from reconciler.planmodel import Action, Classification as C
from reconciler.render import render_markdown
from reconciler.render.markdown import LIMIT


def test_title_carries_the_summary_line(plans):
    for plan in plans.values():
        assert render_markdown(plan).splitlines()[0] == f"### plumb plan · {plan.summary().line()}"


def test_no_changes_is_said_plainly(quiet):
    assert "**No changes.** Every node matches the manifests." in render_markdown(quiet)


def test_drift_is_called_out_and_listed_first(mixed):
    text = render_markdown(mixed)
    assert "**2 resources changed outside plumb** (drift) on `web-1`" in text
    web1 = text[text.index("#### web-1"):text.index("#### web-2")]
    rows = [line for line in web1.splitlines() if line.startswith("| `")]
    assert "**drift**" in rows[0] and "**drift**" in rows[1] and "pending change" in rows[2]


def test_rows_have_symbol_address_classification_reason_and_source(mixed):
    text = render_markdown(mixed)
    assert ("| `+` | `packages:nginx` <sub>web-nginx</sub> | pending change | not installed; the manifest wants "
            "&gt;=1.22<br>`ensure: \"absent\" -> \"present\"` | `manifests/associations/web-nginx.yaml:14` |") in text
    assert "blocked by `sunday-night` until 2026-11-23T02:00:00Z" in text


def test_diffs_are_fenced_inside_details(mixed):
    text = render_markdown(mixed)
    block = text[text.index("<details><summary><code>web-1</code> · <code>files:/etc/ssh/sshd_config</code>"):]
    block = block[:block.index("</details>")]
    assert "```diff\n--- /etc/ssh/sshd_config (observed)" in block and "X11Forwarding no\n```" in block


def test_backticks_in_a_diff_lengthen_the_fence(build):
    r = build.resource("files:/README.md", C.PENDING_CHANGE, Action.UPDATE, "r", content_diff="-```\n+````x\n")
    text = render_markdown(build.plan(build.node("n", r)))
    assert "`````diff\n-```\n+````x\n`````" in text


def test_pipes_and_html_in_cells_do_not_break_the_table(build):
    r = build.resource("files:/a|b", C.PENDING_CHANGE, Action.UPDATE, "x | y <script>")
    row = next(line for line in render_markdown(build.plan(build.node("n", r))).splitlines() if "/a" in line)
    assert "`files:/a\\|b`" in row and "x \\| y &lt;script&gt;" in row and row.count(" | ") == 4


def test_footer_names_the_git_revision(mixed):
    assert "at <code>3f2a9c1e8b7d</code>" in render_markdown(mixed).splitlines()[-1]


def test_unreachable_nodes_are_called_out(mixed):
    text = render_markdown(mixed)
    assert "**1 node unreachable**: `db-1`" in text and "#### db-1: unreachable" in text


def test_long_plans_are_truncated_under_the_limit_with_a_count(build):
    diff = "".join(f"-old line {i}\n+new line {i}\n" for i in range(200))
    resources = [build.resource(f"files:/etc/app/{i:04}.conf", C.PENDING_CHANGE, Action.UPDATE, "template changed",
                                content_diff=diff) for i in range(300)]
    plan = build.plan(build.node("web-1", *resources))
    text = render_markdown(plan)
    assert len(text) <= LIMIT
    assert "**Truncated:**" in text and "left out to keep this comment under 65,000 characters" in text
    kept_diffs = text.count("<details>")
    assert f"{300 - kept_diffs} file diffs left out" in text
    assert text.rstrip().endswith("</sub>")  # the footer survives


def test_rows_are_dropped_only_after_all_diffs(build):
    resources = [build.resource(f"packages:pkg-{i:05}", C.PENDING_CHANGE, Action.CREATE, "not installed")
                 for i in range(40)]
    text = render_markdown(build.plan(build.node("web-1", *resources)), limit=3000)
    assert len(text) <= 3000
    shown = sum(line.startswith("| `+`") for line in text.splitlines())
    assert 0 < shown < 40 and f"{40 - shown} resources left out" in text


def test_short_plans_are_not_truncated(mixed):
    assert "Truncated" not in render_markdown(mixed)


def test_quiet_nodes_share_one_line(quiet, build):
    assert "**In sync** (3 resources on 2 nodes): `web-1`, `web-2`." in render_markdown(quiet)
    fleet = build.plan(*(build.node(f"web-{i:05}", build.resource("packages:nginx")) for i in range(10_000)))
    text = render_markdown(fleet)
    assert len(text) < 2_000 and "and 9990 more" in text
