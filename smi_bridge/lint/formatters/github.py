"""GitHub Actions workflow commands: ``::error file=F,line=L,col=C,title=CODE::message``.

Warnings become ``::warning``, infos ``::notice``. Values are escaped as the runner expects
(``%``, CR and LF everywhere; ``:`` and ``,`` in properties too), so a message can never end the
command early or inject another one.
"""

from __future__ import annotations

from smi_bridge.diagnostics import Diagnostic, Severity
from smi_bridge.lint.engine import LintReport
from smi_bridge.lint.formatters.base import RenderOptions, headline

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(d: Diagnostic) -> str:
    props: list[str] = []
    if d.file:
        props.append(f"file={escape_property(d.file)}")
        if d.line is not None:
            props.append(f"line={d.line}")
            if d.column is not None:
                props.append(f"col={d.column}")
    props.append(f"title={escape_property(d.code)}")
    message = headline(d) + (f"\nhint: {d.hint}" if d.hint else "")
    return f"::{_COMMAND[d.severity]} {','.join(props)}::{escape_data(message)}\n"


def render(report: LintReport, options: RenderOptions) -> str:
    return "".join(command(d) for d in report.diagnostics)
