"""JSON output: exactly one object, ``{"findings": [...], "summary": {...}}``.

One line; each finding has ``code``, ``severity``, ``message``, ``resource`` (``apiVersion``, ``kind``,
``namespace``, ``name``), ``file``, ``line``, ``column``, ``path`` and ``hint``; what is unknown is
``null``. The summary is always present (tools downstream trip when it is missing).
"""

from __future__ import annotations

import json
from typing import Any

from smi_bridge.diagnostics import Diagnostic, Severity
from smi_bridge.lint.engine import LintReport
from smi_bridge.lint.formatters.base import RenderOptions


def finding(d: Diagnostic) -> dict[str, Any]:
    r = d.resource
    return {
        "code": d.code,
        "severity": str(d.severity),
        "message": d.message,
        "resource": {
            "apiVersion": r.api_version or None,
            "kind": r.kind or None,
            "namespace": r.namespace or None,
            "name": r.name or None,
        },
        "file": d.file,
        "line": d.line,
        "column": d.column,
        "path": d.path or None,
        "hint": d.hint or None,
    }


def document(report: LintReport) -> dict[str, Any]:
    return {
        "findings": [finding(d) for d in report.diagnostics],
        "summary": {
            "documents": report.documents,
            "resources": report.resources,
            "errors": report.count(Severity.ERROR),
            "warnings": report.count(Severity.WARNING),
            "infos": report.count(Severity.INFO),
        },
    }


def render(report: LintReport, options: RenderOptions) -> str:
    # one line: indenting switches json to its pure-Python encoder (2.5x slower on the 10,000-document corpus)
    return json.dumps(document(report), ensure_ascii=False) + "\n"
