"""Text output: ``file:line:col: severity[CODE] message (Kind ns/name)`` and an indented hint line.

Colour (one per severity) only when asked for: the CLI decides (``--color``, a terminal, NO_COLOR).
``--summary`` appends the counts, and the kinds that were passed over as not SMI.
"""

from __future__ import annotations

from smi_bridge.diagnostics import Diagnostic, Severity
from smi_bridge.lint.engine import LintReport
from smi_bridge.lint.formatters.base import RenderOptions, headline

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_DIM = "\x1b[2m"
_COLORS = {Severity.ERROR: "\x1b[1;31m", Severity.WARNING: "\x1b[33m", Severity.INFO: "\x1b[36m"}


def finding_lines(d: Diagnostic, *, color: bool) -> str:
    tag = f"{d.severity}[{d.code}]"
    where = d.location()
    if color:
        tag = f"{_COLORS[d.severity]}{tag}{_RESET}"
        where = f"{_BOLD}{where}{_RESET}"
    out = f"{where}: {tag} {headline(d)}\n"
    if d.hint:
        hint = f"hint: {d.hint}"
        out += f"    {_DIM}{hint}{_RESET}\n" if color else f"    {hint}\n"
    return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary_line(report: LintReport) -> str:
    counts = (
        f"{_plural(report.count(Severity.ERROR), 'error')}, {_plural(report.count(Severity.WARNING), 'warning')}, "
        f"{_plural(report.count(Severity.INFO), 'info')}"
    )
    scope = (
        f"{_plural(report.files, 'file')}, {_plural(report.documents, 'document')}, "
        f"{_plural(report.resources, 'resource')}"
    )
    line = f"{counts} in {scope}; {report.suppressed} suppressed\n"
    if report.other_kinds:
        # objects of kinds smi-bridge does not read are counted, never dropped without a word
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(report.other_kinds.items()))
        line += f"not SMI, not read: {kinds}\n"
    return line


def render(report: LintReport, options: RenderOptions) -> str:
    out = "".join(finding_lines(d, color=options.color) for d in report.diagnostics)
    if options.summary:
        out += summary_line(report)
    return out
