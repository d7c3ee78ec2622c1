"""From cached cluster objects to the objects the controller wants applied: the CLI's own pipeline.

Every cluster object becomes a ``smi_bridge.load.Document`` (file ``cluster:<Kind>/<ns>/<name>``,
line 1), then goes through ``smi_bridge.parse.parse_documents``, ``smi_bridge.build.build`` and
``smi_bridge.translate.emit`` exactly as ``smi-bridge translate`` would run on a dump of the same
objects; there is no second translation path. Parsing is cached per object and resourceVersion.

Units of work. Rebuilding the whole cluster on every change does not scale, and rebuilding one
namespace at a time is wrong: a TrafficTarget in namespace ``a`` may name a destination in ``b``
and sources in ``c``, and backends then emit objects in ``b`` (Istio's deny-by-default there, for
instance). So a *unit* is a group of namespaces closed under TrafficTarget references (a union-find
over TrafficTarget namespace, destination namespace and source namespaces); each unit is built and
emitted on its own, with the inventory of all its namespaces. Namespaces holding only workloads are
units too: backends emit for them as well (Istio's mesh-wide deny-by-default, for instance). Two units can still emit the same
object (a mesh-wide object, such as Consul's default-deny intention): ``merge_units`` merges their
``smi-bridge.io/source`` lists the way one emission would, and reports a difference in content.

What the controller adds to an emitted object (``finalize``): ownerReferences to the SMI sources
in the object's own namespace (garbage collection can reach those), and the annotation
``smi-bridge.io/desired-hash`` so that a restarted controller can tell, from the live object alone,
that it is already what it would apply. Sources in another namespace than the object get a
finalizer instead (``needs_finalizer``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends.base import GENERATOR_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE, SOURCE_ANNOTATION, Options
from smi_bridge.build import build
from smi_bridge.diagnostics import Check, Diagnostic, ResourceRef, Severity
from smi_bridge.load import Document
from smi_bridge.model import SMI_GROUPS
from smi_bridge.model import metrics as metrics_model
from smi_bridge.parse import Resource, parse_documents
from smi_bridge.translate import emit

Obj = dict[str, Any]
ObjKey = tuple[str, str, str, str]  # (apiVersion, kind, namespace, name) of an output object
SourceKey = tuple[str, str, str]  # (kind, namespace, name) of an SMI object
Unit = frozenset[str]  # the namespaces built together

SKIP_ANNOTATION = "smi-bridge.io/skip"
HASH_ANNOTATION = "smi-bridge.io/desired-hash"
FINALIZER = "smi-bridge.io/cleanup"
FIELD_MANAGER = "smi-bridge"

# SMI kinds the controller watches (TrafficMetrics is an aggregated read API, not a CRD).
SMI_KINDS: tuple[tuple[str, str], ...] = (
    ("split.smi-spec.io", "TrafficSplit"),
    ("access.smi-spec.io", "TrafficTarget"),
    ("specs.smi-spec.io", "HTTPRouteGroup"),
    ("specs.smi-spec.io", "TCPRoute"),
    ("specs.smi-spec.io", "UDPRoute"),
)
WATCHED_SMI_GROUPS = tuple(g for g in SMI_GROUPS if g != metrics_model.GROUP)

# Inventory the build reads: (group, kind, preferred versions in order).
INVENTORY_KINDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("", "Service", ("v1",)),
    ("", "ServiceAccount", ("v1",)),
    ("", "Pod", ("v1",)),
    ("apps", "Deployment", ("v1",)),
    ("apps", "StatefulSet", ("v1",)),
    ("apps", "DaemonSet", ("v1",)),
    ("discovery.k8s.io", "EndpointSlice", ("v1", "v1beta1")),
)

OUTPUT_CONFLICT = Check(
    "SMC006", Severity.WARNING, "two namespace groups emit the same object with different content"
)


def is_skipped(obj: Mapping[str, Any]) -> bool:
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    return str(ann.get(SKIP_ANNOTATION, "")).strip().lower() == "true"


def is_terminating(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def is_ours(obj: Mapping[str, Any]) -> bool:
    """Carries the ownership label and the generator annotation (the only objects we prune or force)."""
    md = obj.get("metadata") or {}
    labels = md.get("labels") or {}
    annotations = md.get("annotations") or {}
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE and str(
        annotations.get(GENERATOR_ANNOTATION, "")
    ).startswith("smi-bridge")


def applied_by_us(obj: Mapping[str, Any]) -> bool:
    """Our field manager has applied this object before (its managedFields say so): it is ours to
    force back after someone else changed a field. Carrying our label alone is not enough: the
    output of ``smi-bridge translate`` applied by kubectl or a GitOps tool carries it too."""
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if (
            isinstance(entry, dict)
            and entry.get("manager") == FIELD_MANAGER
            and entry.get("operation") == "Apply"
        ):
            return True
    return False


def output_key(obj: Mapping[str, Any]) -> ObjKey:
    md = obj.get("metadata") or {}
    return (
        str(obj.get("apiVersion", "")),
        str(obj.get("kind", "")),
        str(md.get("namespace") or ""),
        str(md.get("name", "")),
    )


def source_refs(obj: Mapping[str, Any]) -> list[SourceKey]:
    """The SMI objects named in ``smi-bridge.io/source`` (``Kind/ns/name,...``)."""
    text = str(((obj.get("metadata") or {}).get("annotations") or {}).get(SOURCE_ANNOTATION, ""))
    out: list[SourceKey] = []
    for part in text.split(","):
        bits = part.strip().split("/")
        if len(bits) == 3 and all(bits):
            out.append((bits[0], bits[1], bits[2]))
    return out


def document_for(obj: Mapping[str, Any]) -> Document:
    md = obj.get("metadata") or {}
    return Document(
        file=f"cluster:{obj.get('kind')}/{md.get('namespace') or ''}/{md.get('name')}",
        index=0,
        line=1,
        obj=dict(obj),
    )


@dataclass
class ParseCache:
    """One parsed ``Resource`` per cluster object, reparsed only when its resourceVersion moves."""

    entries: dict[tuple[str, str, str], tuple[str, Resource]] = field(default_factory=dict)
    parses: int = 0

    def resource(self, obj: Mapping[str, Any]) -> Resource | None:
        md = obj.get("metadata") or {}
        key = (str(obj.get("kind", "")), str(md.get("namespace") or ""), str(md.get("name", "")))
        rv = str(md.get("resourceVersion") or "")
        hit = self.entries.get(key)
        if hit is not None and hit[0] == rv and rv:
            return hit[1]
        parsed = parse_documents([document_for(obj)], default_namespace=key[1] or "default")
        self.parses += 1
        if not parsed.resources:
            return None
        res = parsed.resources[0]
        self.entries[key] = (rv, res)
        return res

    def forget(self, kind: str, namespace: str, name: str) -> None:
        self.entries.pop((kind, namespace, name), None)


def referenced_namespaces(obj: Mapping[str, Any]) -> set[str]:
    """Namespaces a TrafficTarget (any version) names: its own, its destination's, its sources'."""
    md = obj.get("metadata") or {}
    own = str(md.get("namespace") or "default")
    out = {own}
    body = obj.get("spec") if isinstance(obj.get("spec"), dict) else obj
    assert isinstance(body, Mapping)
    dest = body.get("destination")
    if isinstance(dest, dict):
        out.add(str(dest.get("namespace") or own))
    for src in body.get("sources") or []:
        if isinstance(src, dict):
            out.add(str(src.get("namespace") or own))
    return out


def namespace_groups(namespaces: Iterable[str], traffic_targets: Iterable[Mapping[str, Any]]) -> list[Unit]:
    """Partition into units: namespaces joined whenever one TrafficTarget names both."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for ns in namespaces:
        find(ns)
    for tt in traffic_targets:
        refs = sorted(referenced_namespaces(tt))
        for other in refs[1:]:
            a, b = find(refs[0]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[str, set[str]] = {}
    for ns in list(parent):
        groups.setdefault(find(ns), set()).add(ns)
    return sorted((frozenset(g) for g in groups.values()), key=lambda u: sorted(u))


@dataclass
class UnitResult:
    """One unit's emission."""

    unit: Unit
    objects: dict[ObjKey, Obj]
    diagnostics: list[Diagnostic]
    sources: set[SourceKey]  # the SMI objects that were built
    lossy: int = 0  # translation diagnostics at warning or above


def translate_unit(unit: Unit, resources: Sequence[Resource], backend: str, options: Options) -> UnitResult:
    """Build and emit one unit: what ``smi-bridge translate --to <backend>`` gives for these objects."""
    built = build(resources, cluster_domain=options.cluster_domain)
    out = emit(built.ir, backend, options)
    diagnostics = [d for r in resources for d in r.diagnostics]
    diagnostics += built.diagnostics
    diagnostics += out.diagnostics
    sources = {(r.kind, r.namespace, r.name) for r in resources if r.smi}
    objects = {output_key(o): o for o in out.objects}
    lossy = sum(1 for d in out.diagnostics if d.severity >= Severity.WARNING)
    return UnitResult(unit, objects, diagnostics, sources, lossy)


def _without_sources(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out.get("metadata", {}).get("annotations", {}).pop(SOURCE_ANNOTATION, None)
    return out


def merge_units(results: Iterable[UnitResult]) -> tuple[dict[ObjKey, Obj], list[Diagnostic]]:
    """The union of every unit's objects; one object emitted by several units gets all their sources."""
    by_key: dict[ObjKey, list[tuple[list[str], Obj]]] = {}
    for r in sorted(results, key=lambda r: sorted(r.unit)):
        for key, obj in r.objects.items():
            by_key.setdefault(key, []).append((sorted(r.unit), obj))
    merged: dict[ObjKey, Obj] = {}
    notes: list[Diagnostic] = []
    for key, entries in by_key.items():
        first = entries[0][1]
        if len(entries) == 1:
            merged[key] = first
            continue
        out = copy.deepcopy(first)
        refs: set[str] = set()
        for _, obj in entries:
            text = str(obj.get("metadata", {}).get("annotations", {}).get(SOURCE_ANNOTATION, ""))
            refs.update(r for r in text.split(",") if r)
            if _without_sources(obj) != _without_sources(first):
                api, kind, ns, name = key
                others = sorted({n for unit, _o in entries[1:] for n in unit})
                notes.append(
                    OUTPUT_CONFLICT(
                        f"{kind} {ns}/{name} ({api}) is emitted differently by the policy of namespaces "
                        f"{', '.join(entries[0][0])} and of {', '.join(others)}; the first by namespace name is applied",
                        resource=ResourceRef(api, kind, ns, name),
                    )
                )
        out.setdefault("metadata", {}).setdefault("annotations", {})[SOURCE_ANNOTATION] = ",".join(
            sorted(refs)
        )
        merged[key] = out
    return merged, notes


def desired_hash(obj: Mapping[str, Any]) -> str:
    body = copy.deepcopy(dict(obj))
    body.get("metadata", {}).get("annotations", {}).pop(HASH_ANNOTATION, None)
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def finalize(obj: Obj, smi_objects: Mapping[SourceKey, Mapping[str, Any]]) -> Obj:
    """The body to apply: ownerReferences to same-namespace sources, and the desired-hash annotation."""
    out = copy.deepcopy(obj)
    md = out.setdefault("metadata", {})
    ns = md.get("namespace")
    owners = []
    for kind, src_ns, name in source_refs(out):
        src = smi_objects.get((kind, src_ns, name))
        if src is None or src_ns != ns:
            continue
        uid = (src.get("metadata") or {}).get("uid")
        if uid:
            owners.append(
                {"apiVersion": str(src.get("apiVersion", "")), "kind": kind, "name": name, "uid": str(uid)}
            )
    if owners:
        md["ownerReferences"] = sorted(owners, key=lambda o: (o["kind"], o["name"]))
    md.setdefault("annotations", {})[HASH_ANNOTATION] = desired_hash(out)
    return out


def needs_finalizer(objects: Iterable[Mapping[str, Any]]) -> set[SourceKey]:
    """SMI sources with an output in another namespace (garbage collection cannot reach it)."""
    out: set[SourceKey] = set()
    for obj in objects:
        ns = (obj.get("metadata") or {}).get("namespace")
        for ref in source_refs(obj):
            if ns is None or ref[1] != ns:
                out.add(ref)
    return out


_SET_LIKE = ("metadata.ownerReferences", "metadata.finalizers")


def contains(live: Any, want: Any, path: str = "") -> bool:
    """Every field of ``want`` has the same value in ``live`` (maps by key, lists exactly).

    ownerReferences and finalizers are merged by the server (keyed by uid, or as a set), so other
    writers' entries beside ours are fine.
    """
    if isinstance(want, dict):
        return isinstance(live, dict) and all(
            k in live and contains(live[k], v, f"{path}.{k}" if path else k) for k, v in want.items()
        )
    if path in _SET_LIKE and isinstance(want, list) and isinstance(live, list):
        return all(item in live for item in want)
    return bool(live == want)


def is_current(live: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    """The live object already is ``body`` as we would apply it (so the apply is not sent).

    The hash annotation says the last apply was this exact body (so no field we applied earlier
    needs removing); containment says nobody changed a field of it since.
    """
    want = ((body.get("metadata") or {}).get("annotations") or {}).get(HASH_ANNOTATION)
    have = ((live.get("metadata") or {}).get("annotations") or {}).get(HASH_ANNOTATION)
    if not want or want != have:
        return False
    return contains(
        {k: v for k, v in live.items() if k != "status"}, {k: v for k, v in body.items() if k != "status"}
    )


__all__ = [
    "FIELD_MANAGER",
    "applied_by_us",
    "FINALIZER",
    "HASH_ANNOTATION",
    "INVENTORY_KINDS",
    "SKIP_ANNOTATION",
    "SMI_KINDS",
    "ParseCache",
    "UnitResult",
    "contains",
    "desired_hash",
    "document_for",
    "finalize",
    "is_current",
    "is_ours",
    "is_skipped",
    "merge_units",
    "namespace_groups",
    "needs_finalizer",
    "output_key",
    "source_refs",
    "translate_unit",
]
