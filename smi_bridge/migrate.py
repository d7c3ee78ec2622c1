"""Migrations: one mesh's config (or SMI) through the IR to another mesh, proved by decisions.

``migrate(source, target, paths, options)`` is the library call behind ``smi-bridge migrate``:

1. **read** the input: SMI manifests through the normal front (load, parse, build), or a mesh's
   objects through its backend's ``ingest``, which receives every object of the input as a
   ``SourceObject`` (kind, namespace, name, apiVersion, file, line) and the inventory (Services and
   Pods) built from the same input. Importers list the kinds they do not read and report conflicts
   with both locations and the precedence rule they applied; those diagnostics are the report's.
2. **emit** the IR for the target (``translate.emit``, so whatever the emitter did not consume is
   reported too), or SMI manifests (``emit_smi``) when the target is ``smi``.
3. **read back** the target's objects with the target's own importer (or SMI's build), giving the
   IR the new mesh will actually enforce.
4. **compare** the two IRs on generated requests (``smi_bridge.equivalence``): every difference with
   an example request and the objects involved, explained or not by the lossy report of step 2.
5. **plan** the cut-over (``smi_bridge.plan``).

``import_mesh`` is steps 1-2 with SMI as the target (``smi-bridge import``). Nothing here prints; a
``progress`` callback reports the long steps, and the caller decides the exit code with
``Migration.exit_code``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import yaml

from backends import REGISTRY, get_backend
from backends.base import Options, SourceObject
from smi_bridge.build import build, build_inventory
from smi_bridge.diagnostics import Check, Diagnostic, Report, ResourceRef, Severity
from smi_bridge.emit_smi import DEFAULT_VERSIONS, HeadersForm, SmiVersions, emit_smi
from smi_bridge.equivalence import (
    DifferenceGroup,
    Equivalence,
    Progress,
    compare,
    equivalence_requests,
    provenance_of,
)
from smi_bridge.ir import IR, Origin
from smi_bridge.lint.formatters.json import finding
from smi_bridge.load import Document, load, load_bytes
from smi_bridge.parse import parse_documents
from smi_bridge.plan import Plan, build_plan
from smi_bridge.semantics import Decision, Request
from smi_bridge.translate import NOT_CONSUMED, TargetOutput, emit, front

__all__ = [
    "CHECKS",
    "DEFAULT_MAX_REQUESTS",
    "Import",
    "Migration",
    "SMI",
    "SourceRead",
    "emit_target",
    "endpoints",
    "import_mesh",
    "migrate",
    "read_back",
    "read_source",
    "source_objects",
]

SMI = "smi"
DEFAULT_MAX_REQUESTS = 200_000

NOTHING_READ = Check("SMX900", Severity.WARNING, "the input holds no traffic policy the importer could read")
DIFFERENCE_NAMED = Check("SMX901", Severity.WARNING, "requests decided differently, as the lossy report says")
DIFFERENCE_UNNAMED = Check(
    "SMX902", Severity.ERROR, "requests decided differently, and no lossy note says why"
)

CHECKS: tuple[Check, ...] = (NOTHING_READ, DIFFERENCE_NAMED, DIFFERENCE_UNNAMED)


def endpoints() -> tuple[str, ...]:
    """Every name ``--from`` and ``--to`` accept: ``smi`` and the registered backends."""
    return (SMI, *REGISTRY)


@dataclass
class SourceRead:
    """The input, read into the IR: what it held, where each object came from, what was reported."""

    source: str
    ir: IR
    objects: list[SourceObject]
    diagnostics: list[Diagnostic]
    documents: int


def _origin(doc: Document, default_namespace: str) -> Origin:
    obj = doc.obj
    md = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    ns = md.get("namespace") if isinstance(md, Mapping) else None
    return Origin(
        kind=str(obj.get("kind", "")),
        namespace=ns if isinstance(ns, str) and ns else default_namespace,
        name=str(md.get("name", "")) if isinstance(md, Mapping) else "",
        api_version=str(obj.get("apiVersion", "")),
        file=doc.file,
        line=doc.line,
        path=doc.item_path,
    )


def source_objects(documents: Sequence[Document], default_namespace: str = "default") -> list[SourceObject]:
    """Every object document as an importer's ``SourceObject`` (non-objects were reported by ``load``)."""
    return [SourceObject(d.obj, _origin(d, default_namespace)) for d in documents if isinstance(d.obj, dict)]


def read_source(
    source: str,
    paths: Sequence[str | os.PathLike[str]],
    options: Options,
    *,
    stdin: BinaryIO | None = None,
    default_namespace: str = "default",
) -> SourceRead:
    """Read ``paths`` as ``source`` (``smi`` or a backend name) into the IR, with every diagnostic."""
    if source == SMI:
        pipe = front(
            paths, stdin=stdin, default_namespace=default_namespace, cluster_domain=options.cluster_domain
        )
        objects = [
            SourceObject(r.obj, _origin(r.doc, default_namespace))
            for r in pipe.parsed.resources
            if r.smi and isinstance(r.obj, dict)
        ]
        return SourceRead(SMI, pipe.ir, objects, pipe.diagnostics(), len(pipe.loaded.documents))
    backend = get_backend(source)
    loaded = load(paths, stdin=stdin)
    parsed = parse_documents(loaded.documents, default_namespace=default_namespace)
    inventory = build_inventory(parsed.resources)
    objects = source_objects(loaded.documents, default_namespace)
    ir, report = backend.ingest(objects, inventory, options)
    diagnostics = [
        *loaded.diagnostics,
        *(d for d in parsed.diagnostics if not _smi_note(d)),
        *report.diagnostics,
    ]
    return SourceRead(source, ir, objects, diagnostics, len(loaded.documents))


def _smi_note(d: Diagnostic) -> bool:
    """Parse notes that only concern SMI documents (a mesh's input is read by its importer instead)."""
    return d.code == "SMB028"  # "no namespace, default assumed": every importer says so itself


# --- emit and read back ------------------------------------------------------------------------------


def _not_consumed(ir: IR, consumed: set[object], target: str) -> list[Diagnostic]:
    out = []
    for node in ir.consumable():
        if node not in consumed:
            origin = getattr(node, "origin", None)
            out.append(
                Diagnostic.at(
                    NOT_CONSUMED.code,
                    NOT_CONSUMED.severity,
                    f"[{target}] {type(node).__name__} was not translated",
                    origin,
                )
            )
    return out


def emit_target(
    ir: IR,
    target: str,
    options: Options,
    *,
    smi_versions: SmiVersions = DEFAULT_VERSIONS,
    headers: HeadersForm = "list",
) -> TargetOutput:
    """The target's objects for ``ir`` and its lossy report (``smi``: SMI manifests)."""
    if target == SMI:
        emission = emit_smi(ir, smi_versions, headers=headers, options=options)
        return TargetOutput(
            SMI, emission.objects, [*emission.diagnostics, *_not_consumed(ir, emission.consumed, SMI)]
        )
    return emit(ir, target, options)


def _emitted_origin(obj: Mapping[str, Any], target: str) -> Origin:
    md = obj.get("metadata") or {}
    return Origin(
        kind=str(obj.get("kind", "")),
        namespace=str(md.get("namespace", "")),
        name=str(md.get("name", "")),
        api_version=str(obj.get("apiVersion", "")),
        file=f"<{target} output>",
    )


def read_back(output: TargetOutput, inventory: IR, options: Options) -> tuple[IR, Report]:
    """The IR the target will enforce: its own importer reading the emitted objects."""
    if output.target == SMI:
        text = yaml.dump_all(output.objects, Dumper=yaml.CSafeDumper, sort_keys=False)
        loaded = load_bytes(text.encode("utf-8"), "<smi output>")
        built = build(parse_documents(loaded.documents).resources, cluster_domain=options.cluster_domain)
        ir = IR(
            services=inventory.services,
            pods=inventory.pods,
            route_groups=built.ir.route_groups,
            port_routes=built.ir.port_routes,
            splits=built.ir.splits,
            targets=built.ir.targets,
        )
        return ir, Report(diagnostics=[*loaded.diagnostics, *built.diagnostics])
    objects = [SourceObject(o, _emitted_origin(o, output.target)) for o in output.objects]
    return get_backend(output.target).ingest(objects, inventory, options)


# --- the migration -----------------------------------------------------------------------------------


@dataclass
class Migration:
    source: SourceRead
    output: TargetOutput
    readback: IR
    readback_report: Report
    equivalence: Equivalence
    plan: Plan
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return self.output.target

    def report(self) -> list[Diagnostic]:
        """The whole report: the input's diagnostics, the lossy report, and one line per difference."""
        out = [*self.source.diagnostics, *self.output.diagnostics]
        if not self.source.ir.splits and not self.source.ir.targets:
            out.append(
                NOTHING_READ(
                    f"no split or access policy was read from the {self.source.source} input "
                    f"({self.source.documents} document(s))"
                )
            )
        for g in self.equivalence.groups:
            check = DIFFERENCE_NAMED if g.explained else DIFFERENCE_UNNAMED
            first = g.involved[0] if g.involved else Origin()
            out.append(
                check(
                    f"{'+'.join(g.aspects)} differs on {g.count} request(s)"
                    + (
                        f"; named by {', '.join(sorted({d.code for d in g.explained_by}))}"
                        if g.explained
                        else ""
                    ),
                    file=first.file,
                    line=first.line,
                    resource=ResourceRef(first.api_version, first.kind, first.namespace, first.name),
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """The full report as JSON-ready data (``smi-bridge migrate -o json``)."""
        eq = self.equivalence
        return {
            "source": self.source.source,
            "target": self.target,
            "documents": self.source.documents,
            "findings": [finding(d) for d in self.report()],
            "equivalence": {
                "accessMode": eq.access_mode,
                "requests": eq.requests,
                "generated": eq.generated,
                "differing": eq.differing,
                "unexplained": sum(g.count for g in eq.unexplained()),
                "differences": [_group_dict(g) for g in eq.groups],
            },
            "plan": self.plan.to_dict(),
            "objects": self.output.objects,
            "readBack": [finding(d) for d in self.readback_report.diagnostics],
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
        }

    def exit_code(self, *, accept_lossy: bool = False) -> int:
        """1 when the input has errors, a difference is unexplained, or (without ``accept_lossy``) the
        translation is lossy at error level or any request is decided differently; else 0."""
        if any(d.severity >= Severity.ERROR for d in self.source.diagnostics):
            return 1
        if self.equivalence.unexplained():
            return 1
        if accept_lossy:
            return 0
        if self.equivalence.groups or any(d.severity >= Severity.ERROR for d in self.output.diagnostics):
            return 1
        return 0


def migrate(
    source: str,
    target: str,
    paths: Sequence[str | os.PathLike[str]],
    options: Options,
    *,
    stdin: BinaryIO | None = None,
    default_namespace: str = "default",
    smi_versions: SmiVersions = DEFAULT_VERSIONS,
    headers: HeadersForm = "list",
    max_requests: int | None = DEFAULT_MAX_REQUESTS,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Migration:
    """Read ``paths`` as ``source``, translate to ``target``, read back, compare, and plan."""
    timings: dict[str, float] = {}
    start = clock()

    def lap(name: str) -> None:
        nonlocal start
        now = clock()
        timings[name] = now - start
        start = now

    read = read_source(source, paths, options, stdin=stdin, default_namespace=default_namespace)
    lap("read")
    if progress is not None:
        progress("read", 1, 1)
    output = emit_target(read.ir, target, options, smi_versions=smi_versions, headers=headers)
    lap("emit")
    inventory = IR(services=read.ir.services, pods=read.ir.pods)
    back, back_report = read_back(output, inventory, options)
    lap("read back")
    if progress is not None:
        progress("emit", 1, 1)
    requests, generated = equivalence_requests([read.ir, back], max_requests=max_requests, progress=progress)
    lap("generate")
    eq = compare(
        read.ir,
        back,
        requests,
        lossy=output.diagnostics,
        access_mode=options.access_mode,
        generated=generated,
        progress=progress,
        provenance=provenance_of(output.objects),
    )
    lap("decide")
    plan = build_plan(
        source=source,
        target=target,
        source_ir=read.ir,
        source_objects=read.objects,
        source_diagnostics=read.diagnostics,
        target_objects=output.objects,
        target_diagnostics=output.diagnostics,
        equivalence=eq,
    )
    lap("plan")
    return Migration(read, output, back, back_report, eq, plan, timings)


def _request_dict(r: Request) -> dict[str, Any]:
    d: dict[str, Any] = {
        "source": str(r.source) if r.source is not None else None,
        "namespace": r.namespace,
        "service": r.service,
        "port": r.port,
        "protocol": r.protocol,
    }
    if r.protocol == "http":
        d.update(method=r.method, path=r.path, headers=[list(h) for h in r.headers])
    return d


def _decision_dict(d: Decision) -> dict[str, Any]:
    return {
        "split": d.split,
        "route": d.route,
        "reason": d.reason,
        "backends": [
            {"service": b.service, "weight": b.weight, "allowed": b.allowed, "reason": b.reason}
            for b in d.backends
        ],
    }


def _group_dict(g: DifferenceGroup) -> dict[str, Any]:
    return {
        "aspects": list(g.aspects),
        "count": g.count,
        "explained": g.explained,
        "example": _request_dict(g.example),
        "before": _decision_dict(g.before),
        "after": _decision_dict(g.after),
        "involved": [
            {"kind": o.kind, "namespace": o.namespace, "name": o.name, "file": o.file, "line": o.line}
            for o in g.involved
        ],
        "explainedBy": [finding(d) for d in g.explained_by],
    }


@dataclass
class Import:
    source: SourceRead
    output: TargetOutput

    def report(self) -> list[Diagnostic]:
        out = [*self.source.diagnostics, *self.output.diagnostics]
        if not self.source.ir.splits and not self.source.ir.targets:
            out.append(
                NOTHING_READ(f"no split or access policy was read from the {self.source.source} input")
            )
        return out

    def exit_code(self) -> int:
        return 1 if any(d.severity >= Severity.ERROR for d in self.report()) else 0


def import_mesh(
    source: str,
    paths: Sequence[str | os.PathLike[str]],
    options: Options,
    *,
    stdin: BinaryIO | None = None,
    default_namespace: str = "default",
    smi_versions: SmiVersions = DEFAULT_VERSIONS,
    headers: HeadersForm = "list",
) -> Import:
    """A mesh's config (or SMI at other versions) as SMI manifests, with the report."""
    read = read_source(source, paths, options, stdin=stdin, default_namespace=default_namespace)
    return Import(read, emit_target(read.ir, SMI, options, smi_versions=smi_versions, headers=headers))
