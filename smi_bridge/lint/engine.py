"""The lint pipeline: load -> parse -> build -> rules -> suppressions -> --strict -> sorted report.

There is no second path: lint calls the same ``load``, ``parse_documents`` and ``build`` that
translation uses, so a finding and a translation always agree on what the input means. The rules
add what those stages do not report, and may replace one of their generic schema errors with a
specific finding at the same JSON path (never both).

Cost: positions (line and column of a field) are computed only for diagnostics, models are
validated once (by parse), and each document meets only the rules of its kind.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from smi_bridge.build import build
from smi_bridge.diagnostics import Diagnostic, Report, ResourceRef, Severity
from smi_bridge.lint import registry
from smi_bridge.lint.rules import drafts, run_rules
from smi_bridge.lint.suppression import Suppression, apply, read_annotations
from smi_bridge.load import DUPLICATE_KEY, LoadResult, load
from smi_bridge.model import INVENTORY_MODELS, KIND_VERSIONS, access
from smi_bridge.parse import UNKNOWN_FIELD, parse_documents

# --strict turns these into errors: fields an API server would prune, keys a YAML parser drops.
STRICT_CODES = frozenset({UNKNOWN_FIELD.code, DUPLICATE_KEY.code})


@dataclass(frozen=True)
class LintOptions:
    """Everything that changes what ``lint`` reports (output format and colour are the CLI's)."""

    default_namespace: str = "default"
    # kind -> apiVersion for documents without one (the SMI spec's own examples omit it)
    assume_version: Mapping[str, str] | None = None
    suppress: tuple[Suppression, ...] = ()
    strict: bool = False
    fail_on: Severity = Severity.ERROR
    cluster_domain: str = "cluster.local"


@dataclass(frozen=True, slots=True)
class LintedObject:
    """An object of the input (JUnit writes one test case per object)."""

    ref: ResourceRef
    file: str | None
    line: int | None


@dataclass
class LintReport(Report):
    """A ``Report`` of sorted findings, with what the summary and formatters need besides."""

    fail_on: Severity = Severity.ERROR
    files: int = 0
    suppressed: int = 0
    objects: list[LintedObject] = field(default_factory=list)
    other_kinds: dict[str, int] = field(default_factory=dict)

    def exit_code(self, threshold: Severity | None = None) -> int:
        """0 when nothing reaches the threshold (``fail_on`` unless given), 1 otherwise."""
        return super().exit_code(self.fail_on if threshold is None else threshold)


def lint(
    source: Sequence[str | os.PathLike[str]] | LoadResult,
    *,
    options: LintOptions | None = None,
    stdin: BinaryIO | None = None,
) -> LintReport:
    """Lint files, directories (``"-"`` reads ``stdin``) or an already loaded input."""
    opts = options or LintOptions()
    # Lint builds many long-lived objects (documents, models, the IR) and no garbage cycles to speak
    # of; the cyclic collector would rescan them again and again (measured: about half the run time
    # on 10,000 documents). It is paused for the call and restored as it was.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _lint(source, opts, stdin)
    finally:
        if collecting:
            gc.enable()


def _lint(
    source: Sequence[str | os.PathLike[str]] | LoadResult, opts: LintOptions, stdin: BinaryIO | None
) -> LintReport:
    loaded = source if isinstance(source, LoadResult) else load(list(source), stdin=stdin)
    parsed = parse_documents(
        loaded.documents, default_namespace=opts.default_namespace, assume_version=opts.assume_version
    )
    built = build(parsed.resources, cluster_domain=opts.cluster_domain)
    outcome = run_rules(parsed.resources)

    replaced = {id(d) for res in parsed.resources for d in outcome.replaced(res)}
    known = registry.codes()
    annotations = read_annotations(parsed.resources, known)
    found: list[Diagnostic] = [
        *loaded.diagnostics,
        *(d for d in parsed.diagnostics if id(d) not in replaced),
        *built.diagnostics,
        *outcome.findings,
        *annotations.findings,
    ]
    kept, suppressed = apply(found, opts.suppress, annotations)
    if opts.strict:
        kept = [d.with_severity(Severity.ERROR) if d.code in STRICT_CODES else d for d in kept]
    report = LintReport(
        diagnostics=kept,
        documents=len(loaded.documents),
        resources=sum(1 for r in parsed.resources if r.smi or (r.group, r.kind) in INVENTORY_MODELS),
        fail_on=opts.fail_on,
        files=loaded.files,
        suppressed=suppressed,
        objects=[LintedObject(r.ref, r.doc.file, r.doc.line) for r in parsed.resources],
        other_kinds=dict(parsed.other_kinds),
    )
    report.diagnostics = report.sorted()
    return report


class AssumeVersionError(ValueError):
    """An ``--assume-version`` value that names no SMI kind and version."""


def assume_versions(specs: Iterable[str]) -> dict[str, str]:
    """``KIND=GROUP/VERSION`` or ``GROUP/VERSION`` (every kind of the group at that version) -> kind map.

    The access v1alpha4 draft counts as a version of TrafficTarget and IdentityBinding here, so that
    the spec's draft examples can be read (and reported as drafts).
    """
    out: dict[str, str] = {}
    for spec in specs:
        kind, sep, api_version = spec.partition("=")
        if not sep:
            kind, api_version = "", spec
        group, _, version = api_version.strip().rpartition("/")
        kind = kind.strip()
        kinds = [k for (g, k), versions in KIND_VERSIONS.items() if g == group and version in versions]
        if group == access.GROUP and version == drafts.DRAFT_VERSION:
            kinds = ["TrafficTarget", "IdentityBinding"]
        if kind:
            if kind not in kinds:
                raise AssumeVersionError(f"--assume-version {spec!r}: {group}/{version} has no kind {kind!r}")
            kinds = [kind]
        if not group or not kinds:
            raise AssumeVersionError(
                f"--assume-version {spec!r}: not an SMI GROUP/VERSION (e.g. split.smi-spec.io/v1alpha4)"
            )
        for k in kinds:
            out[k] = f"{group}/{version}"
    return out
