"""SMI manifests -> IR -> one or more targets' objects, plus the report of what was not exact.

``translate`` is what the CLI, ``make demo``, the proxy scenarios and the controller call: the same
load, parse and build as lint, then each backend's ``emit``. After each emit, every consumable IR
node (``IR.consumable()``) the backend did not consume becomes a warning (SMT001): the mechanism,
not each emitter's discipline, guarantees that nothing is dropped silently.

``write_output`` puts objects on stdout, in one file, or one file per object in a directory; a
directory is written into a temporary sibling and renamed into place, so it is never left
half-written, and an existing output is replaced only when asked (``overwrite=True``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from backends import REGISTRY, get_backend
from backends.base import Options
from smi_bridge import yamlout
from smi_bridge.build import BuildResult, build
from smi_bridge.diagnostics import Check, Diagnostic, Report, Severity
from smi_bridge.ir import IR, AccessRule, Split, SplitBackend, TrafficTarget
from smi_bridge.load import LoadResult, load
from smi_bridge.parse import ParseResult, parse_documents

if TYPE_CHECKING:
    from smi_bridge.crdcheck import CRDIndex

NOT_CONSUMED = Check("SMT001", Severity.WARNING, "part of the input was not translated by the target")
CRD_INVALID = Check("SMT002", Severity.ERROR, "emitted object does not validate against the given CRD")
CRD_MISSING = Check("SMT003", Severity.WARNING, "no CRD given for an emitted kind (--validate-with)")
NOTHING_TO_TRANSLATE = Check("SMT004", Severity.INFO, "the input holds no SMI policy to translate")

CHECKS: tuple[Check, ...] = (NOT_CONSUMED, CRD_INVALID, CRD_MISSING, NOTHING_TO_TRANSLATE)

ALL_TARGETS = "all"


@dataclass
class Pipeline:
    """The shared front half: loaded, parsed and built input (lint uses the same steps)."""

    loaded: LoadResult
    parsed: ParseResult
    built: BuildResult

    @property
    def ir(self) -> IR:
        return self.built.ir

    def diagnostics(self) -> list[Diagnostic]:
        return [*self.loaded.diagnostics, *self.parsed.diagnostics, *self.built.diagnostics]


def front(
    paths: Sequence[str | os.PathLike[str]],
    *,
    stdin: BinaryIO | None = None,
    default_namespace: str = "default",
    cluster_domain: str = "cluster.local",
) -> Pipeline:
    loaded = load(paths, stdin=stdin)
    parsed = parse_documents(loaded.documents, default_namespace=default_namespace)
    built = build(parsed.resources, cluster_domain=cluster_domain)
    return Pipeline(loaded, parsed, built)


@dataclass
class TargetOutput:
    target: str
    objects: list[dict[str, Any]]
    diagnostics: list[Diagnostic] = field(default_factory=list)


@dataclass
class Translation:
    pipeline: Pipeline | None
    outputs: list[TargetOutput]
    report: Report

    def lossy(self) -> list[Diagnostic]:
        """Every diagnostic about the translation itself (not input errors)."""
        return [d for out in self.outputs for d in out.diagnostics if d.severity >= Severity.WARNING]


def targets_for(name: str) -> list[str]:
    """``all`` -> every registered target; otherwise ``[name]`` (KeyError for an unknown name)."""
    if name == ALL_TARGETS:
        return list(REGISTRY)
    if name not in REGISTRY:
        raise KeyError(name)
    return [name]


def _node_label(node: object) -> tuple[str, str]:
    if isinstance(node, Split):
        return "TrafficSplit", f"split {node.namespace}/{node.name}"
    if isinstance(node, SplitBackend):
        return "backend", f"backend {node.service} (weight {node.weight})"
    if isinstance(node, TrafficTarget):
        return "TrafficTarget", f"TrafficTarget {node.namespace}/{node.name}"
    if isinstance(node, AccessRule):
        return "rule", f"{node.kind} rule {node.route}"
    return type(node).__name__, repr(node)


def emit(ir: IR, target: str, options: Options) -> TargetOutput:
    """One target's objects for ``ir``, with its lossy notes and the automatic not-consumed report."""
    backend = get_backend(target)
    emission = backend.emit(ir, options)
    diags = list(emission.diagnostics)
    for node in ir.consumable():
        if node in emission.consumed:
            continue
        _, label = _node_label(node)
        origin = getattr(node, "origin", None)
        diags.append(
            Diagnostic.at(
                NOT_CONSUMED.code,
                NOT_CONSUMED.severity,
                f"[{target}] {label} was not translated",
                origin,
                hint=f"the {target} target has no form for it; see the README's loss table",
            )
        )
    return TargetOutput(target, emission.objects, diags)


def translate_ir(ir: IR, targets: Sequence[str], options: Options) -> list[TargetOutput]:
    return [emit(ir, t, options) for t in targets]


def translate(
    paths: Sequence[str | os.PathLike[str]],
    targets: Sequence[str],
    options: Options,
    *,
    stdin: BinaryIO | None = None,
    default_namespace: str = "default",
    validate_with: Sequence[Path] = (),
) -> Translation:
    """Load, build and emit for every target. Input errors are reported and the rest translated."""
    pipe = front(
        paths, stdin=stdin, default_namespace=default_namespace, cluster_domain=options.cluster_domain
    )
    report = Report(documents=len(pipe.loaded.documents), resources=len(pipe.parsed.resources))
    report.extend(pipe.diagnostics())
    if not pipe.ir.splits and not pipe.ir.targets:
        report.add(NOTHING_TO_TRANSLATE("no TrafficSplit or TrafficTarget found in the input"))
    outputs = translate_ir(pipe.ir, targets, options)
    if validate_with:
        from smi_bridge.crdcheck import CRDIndex  # jsonschema only when asked for

        index = CRDIndex.from_paths(validate_with)
        for out in outputs:
            out.diagnostics.extend(_validate(out, index))
    for out in outputs:
        report.extend(out.diagnostics)
    return Translation(pipe, outputs, report)


def _validate(out: TargetOutput, index: CRDIndex) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    missing: set[str] = set()
    for obj in out.objects:
        api, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        if not index.has(api, kind):
            if f"{api} {kind}" not in missing and not api.startswith("proxy.smi-bridge.io"):
                missing.add(f"{api} {kind}")
                diags.append(CRD_MISSING(f"[{out.target}] no CRD for {kind} {api} among the given CRDs"))
            continue
        for err in index.validate(obj):
            md = obj.get("metadata", {})
            diags.append(
                CRD_INVALID(f"[{out.target}] {kind} {md.get('namespace', '')}/{md.get('name', '')}: {err}")
            )
    return diags


# --- output ---------------------------------------------------------------------------------------


class OutputExists(Exception):
    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} exists; pass --overwrite to replace it")
        self.path = path


def _dump(objects: Sequence[Mapping[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}, indent=2) + "\n"
    return yamlout.dump_all(objects)


def object_filename(obj: Mapping[str, Any], fmt: str) -> str:
    md = obj.get("metadata", {})
    parts = [str(obj.get("kind", "object")).lower(), str(md.get("namespace", "")), str(md.get("name", ""))]
    stem = "-".join(p for p in parts if p)
    return f"{stem}.{'json' if fmt == 'json' else 'yaml'}"


def write_output(
    outputs: Sequence[TargetOutput],
    out: str,
    fmt: str,
    *,
    stdout: IO[str],
    per_target_dirs: bool,
    overwrite: bool = False,
) -> list[Path]:
    """Write objects to ``out``: ``-`` (stdout), a file, or a directory (trailing ``/`` or existing dir)."""
    if out == "-":
        stdout.write(_dump([o for t in outputs for o in t.objects], fmt))
        return []
    path = Path(out)
    if out.endswith(("/", os.sep)) or path.is_dir() or per_target_dirs:
        return _write_directory(outputs, path, fmt, per_target_dirs=per_target_dirs, overwrite=overwrite)
    if path.exists() and not overwrite:
        raise OutputExists(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, _dump([o for t in outputs for o in t.objects], fmt))
    return [path]


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_directory(
    outputs: Sequence[TargetOutput], path: Path, fmt: str, *, per_target_dirs: bool, overwrite: bool
) -> list[Path]:
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise OutputExists(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    written: list[Path] = []
    try:
        for t in outputs:
            base = staging / t.target if per_target_dirs else staging
            base.mkdir(parents=True, exist_ok=True)
            for obj in t.objects:
                name = object_filename(obj, fmt)
                (base / name).write_text(_dump([obj], fmt), encoding="utf-8")
                rel = (Path(t.target) / name) if per_target_dirs else Path(name)
                written.append(path / rel)
        if path.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.rename(path, backup / "old")
            os.rename(staging, path)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.rename(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return written
