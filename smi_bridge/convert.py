"""Convert SMI objects between versions of the same kind, exactly, and say what any step loses.

Conversions edit the object in place (a ruamel round-trip mapping when the caller wants the file's
comments and key order kept) and return the steps they took. Lossless steps are exact: v1alpha1
quantity weights become the smallest integers with the same ratios (``1`` and ``500m`` -> 2 and 1);
access v1alpha1/v1alpha2 ``destination.port`` becomes a synthesised TCPRoute rule rather than being
dropped (dropping it would widen access). Lossy steps (dropping split ``matches``, HTTPRouteGroup
headers or TCPRoute ports, UDPRoute rules, ...) are reported, and refused unless ``allow_lossy``.

Only the version-dependent shape changes: names, labels, annotations and every field the target
version also has are left exactly as written.
"""

from __future__ import annotations

import copy
import io
import os
import tempfile
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from smi_bridge.diagnostics import Check, Diagnostic, Severity
from smi_bridge.load import load
from smi_bridge.model import KIND_VERSIONS, LEGACY_GROUPS
from smi_bridge.model.quantity import integer_weights, parse_quantity
from smi_bridge.parse import Resource, parse_documents

LOSSY = Check("SMC001", Severity.ERROR, "conversion would lose meaning (refused without --allow-lossy)")
NO_SUCH_VERSION = Check("SMC002", Severity.ERROR, "the kind does not exist at the requested version")
SYNTHESISED = Check("SMC003", Severity.INFO, "a TCPRoute was synthesised to keep destination.port")
INVALID_INPUT = Check("SMC004", Severity.ERROR, "object has errors; fix them before converting")
CONVERTED = Check("SMC005", Severity.INFO, "object converted")
PAIRING = Check("SMC006", Severity.INFO, "referenced route groups should move to the paired specs version")
NOT_CONVERTIBLE = Check("SMC007", Severity.INFO, "object left as it is (not convertible or not targeted)")

CHECKS: tuple[Check, ...] = (
    LOSSY,
    NO_SUCH_VERSION,
    SYNTHESISED,
    INVALID_INPUT,
    CONVERTED,
    PAIRING,
    NOT_CONVERTIBLE,
)

_ORDER = ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4")
_PAIRED_SPECS = {
    ("access", "v1alpha1"): "v1alpha2",
    ("access", "v1alpha2"): "v1alpha3",
    ("access", "v1alpha3"): "v1alpha4",
    ("split", "v1alpha3"): "v1alpha3",
    ("split", "v1alpha4"): "v1alpha4",
}


class ConversionError(Exception):
    """A usage problem with the requested versions."""


@dataclass
class Step:
    lossy: bool
    message: str
    path: tuple[str | int, ...] = ()


@dataclass
class Converted:
    obj: MutableMapping[str, Any]
    steps: list[Step] = field(default_factory=list)
    extra: list[MutableMapping[str, Any]] = field(default_factory=list)  # synthesised objects

    @property
    def lossy(self) -> bool:
        return any(s.lossy for s in self.steps)


def parse_targets(values: Sequence[str]) -> dict[str, str]:
    """``--to-version`` values -> {group: version}. ``v1alpha3`` alone applies to every group that has it."""
    groups = sorted({g for (g, _k) in KIND_VERSIONS if g != "metrics.smi-spec.io"})
    out: dict[str, str] = {}
    for value in values:
        group, _, version = value.rpartition("/")
        group = LEGACY_GROUPS.get(group, group)
        if version not in _ORDER:
            raise ConversionError(f"unknown version {version!r} (choose v1alpha1 to v1alpha4)")
        if group:
            if group not in groups:
                raise ConversionError(f"unknown SMI group {group!r} (choose {', '.join(groups)})")
            out[group] = version
        else:
            for g in groups:
                if any(version in KIND_VERSIONS[(gg, k)] for (gg, k) in KIND_VERSIONS if gg == g):
                    out.setdefault(g, version)
    return out


def _insert_at(obj: MutableMapping[str, Any], anchor: str | None, key: str, value: Any) -> None:
    """Set ``key`` where ``anchor`` stood (keeps key order in ruamel maps), or at the end."""
    if isinstance(obj, CommentedMap) and anchor is not None and anchor in obj:
        pos = list(obj.keys()).index(anchor)
        obj.insert(pos, key, value)
    else:
        obj[key] = value


def _new_map(obj: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return CommentedMap() if isinstance(obj, CommentedMap) else {}


def convert_object(obj: MutableMapping[str, Any], res: Resource, to_version: str) -> Converted:
    """Convert one object (in place) from ``res.version`` to ``to_version``."""
    conv = Converted(obj)
    if res.version == to_version:
        return conv
    handler = _HANDLERS[res.kind]
    handler(conv, res, to_version)
    obj["apiVersion"] = f"{res.group}/{to_version}"
    return conv


def _split(conv: Converted, res: Resource, to: str) -> None:
    spec = conv.obj["spec"]
    src = res.version
    if src == "v1alpha1" and to != "v1alpha1":
        weights = integer_weights([parse_quantity(b["weight"]) for b in spec["backends"]])
        for b, w in zip(spec["backends"], weights, strict=True):
            if b["weight"] != w:
                conv.steps.append(
                    Step(False, f"weight {b['weight']!r} of {b['service']} -> {w}", ("spec", "backends"))
                )
            b["weight"] = w
    if to in ("v1alpha1", "v1alpha2") and spec.get("matches"):
        names = ", ".join(str(m.get("name")) for m in spec["matches"])
        conv.steps.append(
            Step(
                True,
                f"split {to} has no matches: dropping them ({names}) would split every "
                "request instead of only the matching ones",
                ("spec", "matches"),
            )
        )
        del spec["matches"]
    elif to in ("v1alpha1", "v1alpha2") and "matches" in spec:
        del spec["matches"]


def _target(conv: Converted, res: Resource, to: str) -> None:
    obj = conv.obj
    src = res.version
    # Normalise to the v1alpha2 layout (spec wrapper, ``rules``), then shape for the target.
    if src == "v1alpha1":
        spec = _new_map(obj)
        anchor = next((k for k in ("destination", "specs", "sources") if k in obj), None)
        for old, new in (("destination", "destination"), ("specs", "rules"), ("sources", "sources")):
            if old in obj:
                spec[new] = obj[old]
        _insert_at(obj, anchor, "spec", spec)
        for old in ("destination", "specs", "sources"):
            obj.pop(old, None)
    spec = obj["spec"]
    rules = spec.setdefault("rules", [])
    dest = spec["destination"]
    if to == "v1alpha3" or to == "v1alpha4":
        port = dest.pop("port", None) if isinstance(dest, MutableMapping) else None
        if port is not None:
            name = f"{res.name}-port-{port}"
            tcp = _new_map(obj)
            tcp["apiVersion"] = "specs.smi-spec.io/v1alpha4"
            tcp["kind"] = "TCPRoute"
            md = _new_map(obj)
            md["name"] = name
            md["namespace"] = res.namespace
            tcp["metadata"] = md
            tcp["spec"] = {"matches": {"ports": [port]}}
            conv.extra.append(tcp)
            rule = _new_map(obj)
            rule["kind"] = "TCPRoute"
            rule["name"] = name
            rules.append(rule)
            conv.steps.append(
                Step(
                    False,
                    f"destination.port {port} became TCPRoute {res.namespace}/{name} "
                    "(ports [" + str(port) + "]) referenced as a rule",
                    ("spec", "destination", "port"),
                )
            )
        if not rules or not spec.get("sources"):
            missing = "rules" if not rules else "sources"
            conv.steps.append(
                Step(
                    True,
                    f"v1alpha3 requires at least one of {missing}; this target allows "
                    "nothing as written, and v1alpha3 cannot say so",
                    ("spec", missing),
                )
            )
    else:
        udp = [r for r in rules if r.get("kind") == "UDPRoute"]
        if udp:
            conv.steps.append(
                Step(
                    True,
                    f"access {to} has no UDPRoute rules: dropping "
                    f"{', '.join(str(r.get('name')) for r in udp)} denies that UDP traffic",
                    ("spec", "rules"),
                )
            )
            spec["rules"] = [r for r in rules if r.get("kind") != "UDPRoute"]
    if to == "v1alpha1":
        for key, new in (("destination", "destination"), ("rules", "specs"), ("sources", "sources")):
            if key in spec:
                _insert_at(obj, "spec", new, spec[key])
        del obj["spec"]


def _route_group(conv: Converted, res: Resource, to: str) -> None:
    obj = conv.obj
    src_top = res.version in ("v1alpha1", "v1alpha2")
    matches = obj["matches"] if src_top else obj["spec"]["matches"]
    if to == "v1alpha1":
        for i, m in enumerate(matches):
            if m.get("headers"):
                conv.steps.append(
                    Step(
                        True,
                        f"route {m.get('name')!r}: v1alpha1 has no headers; dropping them "
                        "makes the route match every client (widens access)",
                        ("matches", i, "headers"),
                    )
                )
                del m["headers"]
            elif "headers" in m:
                del m["headers"]
    dst_top = to in ("v1alpha1", "v1alpha2")
    if src_top and not dst_top:
        spec = _new_map(obj)
        spec["matches"] = obj.pop("matches")
        obj["spec"] = spec
    elif dst_top and not src_top:
        _insert_at(obj, "spec", "matches", obj["spec"]["matches"])
        del obj["spec"]


def _port_route(conv: Converted, res: Resource, to: str) -> None:
    obj = conv.obj
    if res.kind == "UDPRoute":
        raise _Unavailable()
    ports: list[int] = []
    if res.version == "v1alpha4":
        ports = list(obj["spec"]["matches"].get("ports") or [])
    if to == "v1alpha4":
        if res.version != "v1alpha4":
            spec = _new_map(obj)
            spec["matches"] = {"ports": []}
            obj["spec"] = spec
        return
    if ports:
        conv.steps.append(
            Step(
                True,
                f"TCPRoute {to} has no ports: dropping {ports} makes it match every port (widens access)",
                ("spec", "matches", "ports"),
            )
        )
    if to == "v1alpha3":
        obj["spec"] = _new_map(obj)
    else:
        obj.pop("spec", None)


class _Unavailable(Exception):
    pass


_HANDLERS: dict[str, Callable[[Converted, Resource, str], None]] = {
    "TrafficSplit": _split,
    "TrafficTarget": _target,
    "HTTPRouteGroup": _route_group,
    "TCPRoute": _port_route,
    "UDPRoute": _port_route,
}


# --- files ----------------------------------------------------------------------------------------


@dataclass
class ConvertResult:
    diagnostics: list[Diagnostic]
    outputs: dict[str, str]  # file -> converted text (stdout mode) or written path (in place)
    changed: int
    refused: int


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    y.explicit_start = False
    return y


def convert_paths(
    paths: Sequence[str | os.PathLike[str]],
    targets: dict[str, str],
    *,
    allow_lossy: bool = False,
    in_place: bool = False,
    default_namespace: str = "default",
    stdin_data: bytes | None = None,
) -> ConvertResult:
    """Convert every SMI object in ``paths`` whose group has a target version.

    The normal loader validates the input first (objects with errors are not converted); then each
    file is re-read with ruamel's round-trip loader, converted in place, and written back
    atomically (``in_place``) or returned as text.
    """
    if in_place and "-" in [str(p) for p in paths]:
        raise ConversionError("--in-place needs files, not stdin")
    loaded = load(paths, stdin=io.BytesIO(stdin_data) if stdin_data is not None else None)
    parsed = parse_documents(loaded.documents, default_namespace=default_namespace)
    diagnostics: list[Diagnostic] = list(loaded.diagnostics) + [
        d for d in parsed.diagnostics if d.severity >= Severity.ERROR
    ]
    by_doc: dict[tuple[str, int], Resource] = {}
    for res in parsed.resources:
        if not res.doc.item_path:
            by_doc[(res.doc.file, res.doc.index)] = res
    files = sorted({res.doc.file for res in parsed.resources if res.smi and res.group in targets})
    outputs: dict[str, str] = {}
    changed = refused = 0
    for file in files:
        if file == "<stdin>":
            text = (stdin_data or b"").decode("utf-8")
        else:
            text = Path(file).read_text(encoding="utf-8")
        y = _yaml()
        docs = list(y.load_all(text))
        new_docs: list[Any] = []
        file_changed = False
        for index, doc in enumerate(docs):
            new_docs.append(doc)
            found = by_doc.get((file, index))
            if found is None or not found.smi or found.group not in targets or doc is None:
                continue
            res = found
            to = targets[res.group]
            ref = res.ref
            if res.model is None or any(d.severity >= Severity.ERROR for d in res.diagnostics):
                diagnostics.append(res.diag(INVALID_INPUT, f"{ref} has errors and was not converted"))
                refused += 1
                continue
            if res.kind not in _HANDLERS:
                diagnostics.append(res.diag(NOT_CONVERTIBLE, f"{res.kind} objects are read-only API data"))
                continue
            if to not in KIND_VERSIONS.get((res.group, res.kind), ()):
                diagnostics.append(
                    res.diag(
                        NO_SUCH_VERSION,
                        f"{res.kind} does not exist at {res.group}/{to}",
                        ["apiVersion"],
                        hint=f"versions: {', '.join(KIND_VERSIONS[(res.group, res.kind)])}",
                    )
                )
                refused += 1
                continue
            if res.version == to and res.group == str(doc.get("apiVersion", "")).rpartition("/")[0]:
                continue
            trial = _copy(doc)
            try:
                conv = convert_object(trial, res, to)
            except _Unavailable:
                diagnostics.append(res.diag(NO_SUCH_VERSION, f"{res.kind} exists only in v1alpha4"))
                refused += 1
                continue
            for step in conv.steps:
                if step.lossy:
                    diagnostics.append(
                        res.diag(
                            LOSSY,
                            step.message,
                            list(step.path),
                            severity=Severity.WARNING if allow_lossy else Severity.ERROR,
                            hint="" if allow_lossy else "pass --allow-lossy to convert anyway",
                        )
                    )
            if conv.lossy and not allow_lossy:
                refused += 1
                continue
            new_docs[-1] = conv.obj
            new_docs.extend(conv.extra)
            for extra in conv.extra:
                md = extra["metadata"]
                diagnostics.append(res.diag(SYNTHESISED, f"added TCPRoute {md['namespace']}/{md['name']}"))
            kind_api = _PAIRED_SPECS.get((res.group.split(".")[0], to))
            if (
                kind_api
                and targets.get("specs.smi-spec.io") != kind_api
                and res.kind in ("TrafficSplit", "TrafficTarget")
            ):
                diagnostics.append(
                    res.diag(
                        PAIRING,
                        f"{res.kind} {to} pairs with specs {kind_api}",
                        hint=f"also convert its route groups: --to-version specs.smi-spec.io/{kind_api}",
                    )
                )
            diagnostics.append(
                res.diag(
                    CONVERTED,
                    f"{ref.kind} {ref.namespace}/{ref.name}: {res.version} -> {to}"
                    + (f" ({'; '.join(s.message for s in conv.steps if not s.lossy)})" if conv.steps else ""),
                )
            )
            changed += 1
            file_changed = True
        buf = io.StringIO()
        y.dump_all(new_docs, buf)
        if in_place:
            if file_changed:
                _atomic_write(Path(file), buf.getvalue())
                outputs[file] = file
        else:
            outputs[file] = buf.getvalue()
    return ConvertResult(diagnostics, outputs, changed, refused)


def _copy(doc: Any) -> Any:
    """A deep copy that keeps ruamel comments (copy.deepcopy does for ruamel types)."""
    return copy.deepcopy(doc)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
