"""Suppressions: ``--suppress CODE[=Kind/namespace/name glob]`` and the ``smi-bridge.io/suppress`` annotation.

A command-line suppression silences a code everywhere, or only for findings about resources whose
``Kind/namespace/name`` matches a glob (``fnmatch``, case-sensitive). The annotation on a resource
(``smi-bridge.io/suppress: "SMB036,SMB037"``) silences those codes for findings about that resource.
An unknown code on the command line is a usage error (a typo must not silence nothing quietly); in
an annotation it is a finding of its own, since the manifest cannot be rejected like a flag.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from smi_bridge.diagnostics import Check, Diagnostic, Severity
from smi_bridge.parse import Resource

ANNOTATION = "smi-bridge.io/suppress"

BAD_ANNOTATION = Check(
    "SMB110", Severity.WARNING, f"{ANNOTATION} annotation names a code that does not exist"
)

CHECKS: tuple[Check, ...] = (BAD_ANNOTATION,)

_CODE = re.compile(r"SMB[0-9]{3}")
_SEPARATORS = re.compile(r"[,\s]+")


class SuppressionError(ValueError):
    """A ``--suppress`` value that cannot be used (the CLI turns it into a usage error)."""


@dataclass(frozen=True, slots=True)
class Suppression:
    code: str
    target: str | None = None  # fnmatch pattern over "Kind/namespace/name"; None: everywhere

    @classmethod
    def parse(cls, text: str, known: Collection[str]) -> Suppression:
        code, sep, target = text.partition("=")
        code = code.strip().upper()
        if not _CODE.fullmatch(code):
            raise SuppressionError(
                f"--suppress {text!r}: {code or 'the code'} is not a check code (SMB and three digits)"
            )
        if code not in known:
            raise SuppressionError(f"--suppress {text!r}: no check has the code {code} (see --list-checks)")
        target = target.strip()
        if sep and not target:
            raise SuppressionError(f"--suppress {text!r}: give Kind/namespace/name (globs allowed) after '='")
        return cls(code, target or None)

    def matches(self, diagnostic: Diagnostic) -> bool:
        if diagnostic.code != self.code:
            return False
        if self.target is None:
            return True
        r = diagnostic.resource
        return fnmatchcase(f"{r.kind}/{r.namespace}/{r.name}", self.target)


@dataclass
class Annotations:
    """Codes each resource silences for itself, and findings about unusable annotations."""

    codes: dict[tuple[str, str, str], frozenset[str]]
    findings: list[Diagnostic]


def read_annotations(resources: Iterable[Resource], known: Collection[str]) -> Annotations:
    codes: dict[tuple[str, str, str], frozenset[str]] = {}
    findings: list[Diagnostic] = []
    for res in resources:
        md = res.obj.get("metadata") if isinstance(res.obj, dict) else None
        annotations = md.get("annotations") if isinstance(md, dict) else None
        if not isinstance(annotations, dict) or ANNOTATION not in annotations:
            continue
        value = annotations[ANNOTATION]
        path = ["metadata", "annotations", ANNOTATION]
        if not isinstance(value, str):
            findings.append(
                res.diag(
                    BAD_ANNOTATION,
                    f"{ANNOTATION} must be a string of codes, not {value!r}",
                    path,
                    hint='write e.g. "SMB036,SMB037"',
                )
            )
            continue
        wanted = [c.upper() for c in _SEPARATORS.split(value.strip()) if c]
        unknown = [c for c in wanted if c not in known]
        if unknown:
            findings.append(
                res.diag(
                    BAD_ANNOTATION,
                    f"{ANNOTATION} names {', '.join(map(repr, unknown))}, which "
                    f"{'is not a check code' if len(unknown) == 1 else 'are not check codes'}",
                    path,
                    hint="smi-bridge lint --list-checks prints every code",
                )
            )
        key = (res.kind, res.namespace, res.name)
        codes[key] = codes.get(key, frozenset()) | {c for c in wanted if c in known}
    return Annotations(codes, findings)


def apply(
    diagnostics: Sequence[Diagnostic], suppressions: Sequence[Suppression], annotated: Annotations
) -> tuple[list[Diagnostic], int]:
    """The diagnostics left after suppression, and how many were suppressed."""
    if not suppressions and not annotated.codes:
        return list(diagnostics), 0
    kept: list[Diagnostic] = []
    for d in diagnostics:
        r = d.resource
        own = annotated.codes.get((r.kind, r.namespace, r.name)) if r.kind else None
        if (own and d.code in own) or any(s.matches(d) for s in suppressions):
            continue
        kept.append(d)
    return kept, len(diagnostics) - len(kept)
