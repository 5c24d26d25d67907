"""Renderers: pure functions that turn a `planmodel.Plan` into text, one module per format.

Called by the CLI (`plumb plan`, and its `--junit/--sarif/--markdown` files), which does
all the I/O and decides the options (colour from NO_COLOR and isatty, verbosity). Each
renderer is `render(plan, **options) -> str`, reads no clock, file or environment, and
returns text ending in a newline. Computing the plan lives elsewhere (Terraform keeps the
diff apart from its rendering too), so a new format touches no planning code.
Every value and content diff is printed through `redact`, so secrets never reach output.
"""

from __future__ import annotations

from reconciler.render.jsonplan import render as render_json
from reconciler.render.junit import render as render_junit
from reconciler.render.markdown import render as render_markdown
from reconciler.render.sarif import render as render_sarif
from reconciler.render.text import render as render_text

__all__ = ["render_json", "render_junit", "render_markdown", "render_sarif", "render_text"]
