"""Diagnostics: the one value type for lint findings, translation notes and controller events.

A Diagnostic is data, never a log line. It carries a stable code (``SMB`` and three digits for
lint rules, ``SMT...`` for translation notes, ``SMX...`` for import/migration notes), a severity,
a one-line message, where it came from (file, line, column, JSON path) and the resource it is about.
Formatters (``smi_bridge.lint.formatters``) and the controller's Event writer read it; nothing else
prints it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smi_bridge.ir import Origin


class Severity(enum.IntEnum):
    """Ordered so that ``severity >= threshold`` reads naturally."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (choose error, warning or info)") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """The Kubernetes object a diagnostic is about (any field may be empty when unknown)."""

    api_version: str = ""
    kind: str = ""
    namespace: str = ""
    name: str = ""

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}".strip()


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str = ""  # JSON path inside the document, e.g. ``spec.backends[1].weight``
    resource: ResourceRef = field(default_factory=ResourceRef)
    hint: str = ""

    @classmethod
    def at(
        cls,
        code: str,
        severity: Severity,
        message: str,
        origin: Origin | None,
        *,
        hint: str = "",
        path: str | None = None,
    ) -> Diagnostic:
        """A diagnostic pointing at an IR node's origin (translation, migration, controller)."""
        if origin is None:
            return cls(code, severity, message, hint=hint, path=path or "")
        return cls(
            code,
            severity,
            message,
            file=origin.file,
            line=origin.line,
            column=origin.column,
            path=path if path is not None else origin.path,
            resource=ResourceRef(origin.api_version, origin.kind, origin.namespace, origin.name),
            hint=hint,
        )

    def location(self) -> str:
        """``file:line:col`` as far as known (``<input>`` when nothing is)."""
        if not self.file:
            return "<input>"
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def with_severity(self, severity: Severity) -> Diagnostic:
        return replace(self, severity=severity)


@dataclass(frozen=True, slots=True)
class Check:
    """A stable diagnostic code with its default severity and one-line description.

    Every module that reports diagnostics declares its checks as module-level ``Check`` constants
    and lists them in a ``CHECKS`` tuple; ``smi-bridge lint --list-checks`` prints them all.
    """

    code: str
    severity: Severity
    title: str

    def __call__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        path: str = "",
        resource: ResourceRef | None = None,
        hint: str = "",
        severity: Severity | None = None,
    ) -> Diagnostic:
        return Diagnostic(
            self.code,
            severity or self.severity,
            message,
            file=file,
            line=line,
            column=column,
            path=path,
            resource=resource or ResourceRef(),
            hint=hint,
        )


@dataclass
class Report:
    """An ordered collection of diagnostics plus the counters a summary needs."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    documents: int = 0
    resources: int = 0

    def add(self, diagnostic: Diagnostic) -> None:
        self.diagnostics.append(diagnostic)

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics.extend(diagnostics)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.diagnostics)

    def __len__(self) -> int:
        return len(self.diagnostics)

    def count(self, severity: Severity) -> int:
        return sum(1 for d in self.diagnostics if d.severity == severity)

    def at_or_above(self, threshold: Severity) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity >= threshold]

    def exit_code(self, threshold: Severity) -> int:
        """0 when nothing reaches ``threshold``, 1 otherwise (usage errors, 2, are the CLI's)."""
        return 1 if self.at_or_above(threshold) else 0

    def sorted(self) -> list[Diagnostic]:
        return sorted(
            self.diagnostics,
            key=lambda d: (d.file or "", d.line or 0, d.column or 0, d.code, d.message),
        )
