"""The Backend protocol, its options, and the emission context every emitter writes through.

A backend turns the IR into one mesh's objects (``emit``) and, for migrations, that mesh's
objects back into IR (``ingest``). Emitters never build annotations or diagnostics by hand:
``EmitContext.object`` stamps the generator/source annotations and ownership label on every
object, ``EmitContext.consume`` records which IR nodes were translated, and
``EmitContext.lossy`` records what was not translated exactly. ``smi_bridge.translate`` then
reports every consumable IR node the emitter did not consume, so nothing is dropped silently
whatever an emitter forgets.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from smi_bridge import __version__
from smi_bridge.diagnostics import Diagnostic, Report, Severity
from smi_bridge.ir import IR, Origin

GENERATOR_ANNOTATION = "smi-bridge.io/generator"
SOURCE_ANNOTATION = "smi-bridge.io/source"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "smi-bridge"
GENERATOR = f"smi-bridge-{__version__}"

AccessMode = Literal["enforce", "permissive"]


@dataclass(frozen=True)
class Options:
    """Translation options shared by every backend (target-specific ones are prefixed)."""

    trust_domain: str = "cluster.local"
    cluster_domain: str = "cluster.local"
    access_mode: AccessMode = "enforce"
    linkerd_split: Literal["httproute", "serviceprofile"] = "httproute"
    linkerd_control_plane_ns: str = "linkerd"
    consul_namespaces: bool = False  # consul: Enterprise namespaces with mirroring (keep source namespaces)


@dataclass(frozen=True)
class SourceObject:
    """An object read from the user's input, for ``ingest``: the plain dict and where it came from."""

    obj: Mapping[str, Any]
    origin: Origin


@dataclass
class Emission:
    objects: list[dict[str, Any]] = field(default_factory=list)
    consumed: set[object] = field(default_factory=set)
    diagnostics: list[Diagnostic] = field(default_factory=list)


# Kind order for output (and for apply): policy objects after what they reference.
_KIND_ORDER = {
    "ServiceDefaults": 0,
    "ServiceResolver": 1,
    "Server": 2,
    "MeshTLSAuthentication": 3,
    "DestinationRule": 4,
    "ServiceSplitter": 5,
    "ServiceRouter": 6,
    "ServiceProfile": 7,
    "VirtualService": 8,
    "HTTPRoute": 9,
    "TCPRoute": 10,
    "AuthorizationPolicy": 11,
    "ServiceIntentions": 12,
}


def object_sort_key(obj: Mapping[str, Any]) -> tuple[int, str, str, str, str]:
    md = obj.get("metadata", {})
    kind = str(obj.get("kind", ""))
    return (
        _KIND_ORDER.get(kind, 50),
        kind,
        str(obj.get("apiVersion", "")),
        str(md.get("namespace", "")),
        str(md.get("name", "")),
    )


def unique_name(taken: set[str], wanted: str) -> str:
    """``wanted``, or the first of ``wanted-2``, ``wanted-3``, ... not in ``taken``; added to ``taken``."""
    name, n = wanted, 2
    while name in taken:
        name = f"{wanted}-{n}"
        n += 1
    taken.add(name)
    return name


class EmitContext:
    """Collects one backend's output for one IR."""

    def __init__(self, backend: str, options: Options) -> None:
        self.backend = backend
        self.options = options
        self._objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._consumed: set[builtins.object] = set()
        self._diagnostics: list[Diagnostic] = []

    def object(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        spec: Mapping[str, Any] | None,
        sources: Iterable[Origin],
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        cluster_scoped: bool = False,
        body_key: str = "spec",
    ) -> dict[str, Any]:
        """Create (or merge sources into) one output object and return it."""
        key = (api_version, kind, namespace, name)
        refs = sorted({o.ref() for o in sources if o.kind})
        existing = self._objects.get(key)
        if existing is not None:
            ann = existing["metadata"]["annotations"]
            merged = sorted(set(ann[SOURCE_ANNOTATION].split(",")) | set(refs))
            ann[SOURCE_ANNOTATION] = ",".join(r for r in merged if r)
            if spec is not None:
                existing[body_key] = dict(spec)
            return existing
        metadata: dict[str, Any] = {"name": name}
        if not cluster_scoped:
            metadata["namespace"] = namespace
        metadata["labels"] = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, **(labels or {})}
        metadata["annotations"] = {
            GENERATOR_ANNOTATION: GENERATOR,
            SOURCE_ANNOTATION: ",".join(refs),
            **(annotations or {}),
        }
        obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
        if spec is not None:
            obj[body_key] = dict(spec)
        self._objects[key] = obj
        return obj

    def consume(self, *nodes: builtins.object) -> None:
        self._consumed.update(nodes)

    def lossy(
        self,
        code: str,
        message: str,
        origin: Origin | None,
        *,
        severity: Severity = Severity.WARNING,
        hint: str = "",
        path: str | None = None,
    ) -> None:
        """Record something that was not translated exactly (``--strict`` turns these into exit 1)."""
        self._diagnostics.append(
            Diagnostic.at(code, severity, f"[{self.backend}] {message}", origin, hint=hint, path=path)
        )

    def emission(self) -> Emission:
        objects = sorted(self._objects.values(), key=object_sort_key)
        return Emission(objects=objects, consumed=set(self._consumed), diagnostics=list(self._diagnostics))


@runtime_checkable
class Backend(Protocol):
    name: str
    description: str

    def emit(self, ir: IR, options: Options) -> Emission:
        """The target's objects for ``ir`` (plain dicts, sorted), consumed nodes, diagnostics."""
        ...

    def ingest(self, objects: Sequence[SourceObject], inventory: IR, options: Options) -> tuple[IR, Report]:
        """The reverse of ``emit``, for migrations; what the IR cannot hold is reported.

        ``objects`` are every object of the input (kinds this backend does not know are listed in
        the report and passed over); ``inventory`` is an IR holding only the Services and Pods
        built from the same input (``smi_bridge.build``), for resolving identities. The result
        includes those Services and Pods.
        """
        ...
