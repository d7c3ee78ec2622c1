"""Output formats of ``smi-bridge lint``: one module each, registered in ``FORMATTERS``.

A formatter turns a ``LintReport`` into the text written to stdout; it never decides the exit code
(that is the same for every format). The keys of ``FORMATTERS`` are the ``-o`` choices.
"""

from __future__ import annotations

# ``jsonlib``: importing the ``json`` formatter module sets the package attribute ``json``.
import json as jsonlib
from collections.abc import Callable, Iterable, Sequence

from smi_bridge.diagnostics import Check, Diagnostic
from smi_bridge.lint.engine import LintReport
from smi_bridge.lint.formatters import github, junit, sarif, text
from smi_bridge.lint.formatters import json as json_format
from smi_bridge.lint.formatters.base import RenderOptions

Formatter = Callable[[LintReport, RenderOptions], str]

FORMATTERS: dict[str, Formatter] = {
    "text": text.render,
    "json": json_format.render,
    "sarif": sarif.render,
    "junit": junit.render,
    "github": github.render,
}


def render_text(diagnostics: Iterable[Diagnostic], *, color: bool = False) -> str:
    """Diagnostics as text lines with hints (other commands print their reports with this)."""
    return "".join(text.finding_lines(d, color=color) for d in diagnostics)


def render_checks(checks: Sequence[Check], output: str) -> str:
    """``--list-checks``: a JSON object for ``-o json``, an aligned table otherwise."""
    if output == "json":
        rows = [{"code": c.code, "severity": str(c.severity), "description": c.title} for c in checks]
        return jsonlib.dumps({"checks": rows}, indent=2) + "\n"
    return "".join(f"{c.code}  {c.severity!s:<7}  {c.title}\n" for c in checks)


__all__ = ["FORMATTERS", "Formatter", "RenderOptions", "render_checks", "render_text"]
