"""``smi-bridge lint`` as a library: ``lint(paths_or_load_result, options=LintOptions(...)) -> LintReport``.

The report is a ``smi_bridge.diagnostics.Report`` of sorted findings (plus the counts a summary
needs); ``report.exit_code()`` is the CLI's exit status for ``options.fail_on``. Formatters
(``smi_bridge.lint.formatters.FORMATTERS``) turn it into text, JSON, SARIF, JUnit or GitHub
workflow commands; ``smi_bridge.lint.registry.all_checks()`` lists every code.
"""

from __future__ import annotations

from smi_bridge.lint.engine import (
    AssumeVersionError,
    LintedObject,
    LintOptions,
    LintReport,
    assume_versions,
    lint,
)
from smi_bridge.lint.registry import all_checks
from smi_bridge.lint.suppression import Suppression, SuppressionError

__all__ = [
    "AssumeVersionError",
    "LintOptions",
    "LintReport",
    "LintedObject",
    "Suppression",
    "SuppressionError",
    "all_checks",
    "assume_versions",
    "lint",
]
