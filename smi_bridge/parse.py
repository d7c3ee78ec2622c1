"""Loaded documents to typed resources: SMI models, inventory models, and the findings of that step.

One call, ``parse_documents``, turns ``load`` output into ``Resource`` values that lint, convert
and build all share. Schema problems become diagnostics pointing at the exact value (file, line,
column, JSON path); a document that fails its model is still returned (``model is None``) so later
rules can say what they can about it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError

from smi_bridge.diagnostics import Check, Diagnostic, ResourceRef, Severity
from smi_bridge.load import Document, json_path
from smi_bridge.model import INVENTORY_MODELS, KIND_VERSIONS, LEGACY_GROUPS, SMI_GROUPS, SMI_MODELS

MISSING_TYPE = Check("SMB020", Severity.ERROR, "document has no apiVersion or no kind")
UNKNOWN_VERSION = Check("SMB021", Severity.ERROR, "SMI kind at an API version that does not exist")
LEGACY_GROUP = Check("SMB022", Severity.WARNING, "legacy API group spec.smi-spec.io (use specs.smi-spec.io)")
SCHEMA = Check("SMB023", Severity.ERROR, "value does not match the schema of its kind and version")
UNKNOWN_FIELD = Check(
    "SMB024", Severity.WARNING, "unknown field (an API server would prune it silently; --strict: error)"
)
WRONG_SHAPE = Check(
    "SMB025", Severity.ERROR, "field belongs to another version of this kind (shape/version mismatch)"
)
BAD_INVENTORY = Check(
    "SMB026", Severity.WARNING, "Kubernetes object that translation needs could not be read"
)
UNKNOWN_KIND = Check("SMB027", Severity.ERROR, "kind does not exist in an SMI API group")
NOT_NAMESPACED = Check("SMB028", Severity.INFO, "document has no namespace; the default namespace is assumed")
SMI_KIND_WRONG_GROUP = Check(
    "SMB029", Severity.ERROR, "SMI kind with an apiVersion outside the SMI API groups"
)

_SMI_KIND_GROUP = {k: g for (g, _v, k) in SMI_MODELS}

CHECKS: tuple[Check, ...] = (
    MISSING_TYPE,
    UNKNOWN_VERSION,
    LEGACY_GROUP,
    SCHEMA,
    UNKNOWN_FIELD,
    WRONG_SHAPE,
    BAD_INVENTORY,
    UNKNOWN_KIND,
    NOT_NAMESPACED,
    SMI_KIND_WRONG_GROUP,
)


@dataclass
class Resource:
    """One Kubernetes object from the input, typed as far as we know its kind."""

    doc: Document
    group: str
    version: str
    kind: str
    name: str
    namespace: str
    model: BaseModel | None  # None: not an SMI/inventory kind we read, or it failed its model
    smi: bool  # an SMI kind (as opposed to inventory or other)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def ref(self) -> ResourceRef:
        return ResourceRef(self.api_version, self.kind, self.namespace, self.name)

    @property
    def obj(self) -> Any:
        return self.doc.obj

    def diag(
        self,
        check: Check,
        message: str,
        path: Sequence[str | int] = (),
        *,
        hint: str = "",
        severity: Severity | None = None,
    ) -> Diagnostic:
        """A diagnostic about this resource at ``path`` (relative to the object)."""
        file, line, column = self.doc.location(path)
        return check(
            message,
            file=file,
            line=line,
            column=column,
            path=json_path([*_item_prefix(self.doc), *path]) if path or self.doc.item_path else "",
            resource=self.ref,
            hint=hint,
            severity=severity,
        )


def _item_prefix(doc: Document) -> list[str | int]:
    """``items[3]`` -> ["items", 3]; nested Lists: ``items[2].items[0]`` -> ["items", 2, "items", 0]."""
    out: list[str | int] = []
    for name, index in re.findall(r"([^.\[]+)\[(\d+)\]", doc.item_path):
        out += [name, int(index)]
    return out


@dataclass
class ParseResult:
    resources: list[Resource]
    diagnostics: list[Diagnostic]
    other_kinds: dict[str, int]  # kinds counted and passed over


def split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def parse_documents(
    documents: Iterable[Document],
    *,
    default_namespace: str = "default",
    assume_version: Mapping[str, str] | None = None,
) -> ParseResult:
    """Type every document. ``assume_version`` maps kind -> apiVersion for documents that lack one
    (the SMI spec's own examples omit it)."""
    resources: list[Resource] = []
    diagnostics: list[Diagnostic] = []
    other: dict[str, int] = {}
    for doc in documents:
        res = parse_document(doc, default_namespace=default_namespace, assume_version=assume_version)
        if res is None:
            continue
        diagnostics.extend(res.diagnostics)
        if res.model is None and not res.smi and (res.group, res.kind) not in INVENTORY_MODELS:
            other[res.kind or "<none>"] = other.get(res.kind or "<none>", 0) + 1
        resources.append(res)
    return ParseResult(resources, diagnostics, other)


def parse_document(
    doc: Document,
    *,
    default_namespace: str = "default",
    assume_version: Mapping[str, str] | None = None,
) -> Resource | None:
    obj = doc.obj
    if not isinstance(obj, dict):
        return None  # the loader already reported documents that are not mappings
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    md = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = str(md.get("name", "")) if isinstance(md, dict) else ""
    ns_raw = md.get("namespace") if isinstance(md, dict) else None
    namespace = ns_raw if isinstance(ns_raw, str) and ns_raw else default_namespace
    if (
        not isinstance(api_version, str)
        and isinstance(kind, str)
        and assume_version
        and kind in assume_version
    ):
        api_version = assume_version[kind]
        obj = {"apiVersion": api_version, **obj}
    if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
        res = Resource(doc, "", "", str(kind or ""), name, namespace, None, False)
        missing = [
            f for f, v in (("apiVersion", api_version), ("kind", kind)) if not isinstance(v, str) or not v
        ]
        res.diagnostics.append(
            res.diag(
                MISSING_TYPE,
                f"document has no {' and no '.join(missing)}",
                hint="every Kubernetes object needs apiVersion and kind (e.g. split.smi-spec.io/v1alpha4, TrafficSplit)",
            )
        )
        return res
    group, version = split_api_version(api_version)
    res = Resource(doc, group, version, kind, name, namespace, None, False)
    if group in LEGACY_GROUPS:
        res.diagnostics.append(
            res.diag(
                LEGACY_GROUP,
                f"apiVersion {api_version}: the group {group} was a typo in early SDK releases",
                ["apiVersion"],
                hint=f"write {LEGACY_GROUPS[group]}/{version}",
            )
        )
        group = LEGACY_GROUPS[group]
        res.group = group
    if group in SMI_GROUPS:
        res.smi = True
        _parse_smi(res, obj)
    elif (group, kind) in INVENTORY_MODELS:
        _parse_inventory(res, obj)
    elif kind in _SMI_KIND_GROUP and (not group or group.endswith("smi-spec.io")):
        res.smi = True
        res.diagnostics.append(
            res.diag(
                SMI_KIND_WRONG_GROUP,
                f"{kind} is an SMI kind, but apiVersion {api_version!r} is not in {_SMI_KIND_GROUP[kind]}",
                ["apiVersion"],
                hint=f"write {_SMI_KIND_GROUP[kind]}/{version or 'v1alpha4'}",
            )
        )
    return res


def _parse_smi(res: Resource, obj: dict[str, Any]) -> None:
    model_cls = SMI_MODELS.get((res.group, res.version, res.kind))
    if model_cls is None:
        versions = KIND_VERSIONS.get((res.group, res.kind))
        if versions is None:
            kinds = sorted(k for (g, k) in KIND_VERSIONS if g == res.group)
            res.diagnostics.append(
                res.diag(
                    UNKNOWN_KIND,
                    f"{res.group} has no kind {res.kind!r}",
                    ["kind"],
                    hint=f"kinds in {res.group}: {', '.join(kinds)}",
                )
            )
        else:
            res.diagnostics.append(
                res.diag(
                    UNKNOWN_VERSION,
                    f"{res.kind} has no version {res.version!r} in {res.group}",
                    ["apiVersion"],
                    hint=f"known versions: {', '.join(versions)}",
                )
            )
        return
    try:
        res.model = model_cls.model_validate(obj)
    except ValidationError as exc:
        res.diagnostics.extend(_schema_diagnostics(res, obj, exc))
        hard = any(d.code in (SCHEMA.code, WRONG_SHAPE.code) for d in res.diagnostics)
        if not hard:
            # Only unknown fields: keep a typed model of what is known, so that rules and
            # translation still see the object (nothing the user wrote is dropped silently:
            # each unknown field has its own finding).
            res.model = _validate_known(model_cls, obj)


def _validate_known(model_cls: type[BaseModel], obj: dict[str, Any]) -> BaseModel | None:
    pruned = _prune_unknown(model_cls.model_json_schema(), obj)
    try:
        return model_cls.model_validate(pruned)
    except ValidationError:
        return None


def _prune_unknown(schema: dict[str, Any], obj: Any) -> Any:
    defs = schema.get("$defs", {})

    def walk(node: dict[str, Any], value: Any) -> Any:
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[1]]
        for key in ("anyOf", "oneOf"):
            if key in node:
                for option in node[key]:
                    resolved = defs[option["$ref"].rsplit("/", 1)[1]] if "$ref" in option else option
                    if _json_type_matches(resolved, value):
                        return walk(resolved, value)
                return value
        if isinstance(value, dict) and "properties" in node and node.get("additionalProperties") is False:
            props = node["properties"]
            return {k: walk(props[k], v) for k, v in value.items() if k in props}
        if isinstance(value, list) and isinstance(node.get("items"), dict):
            return [walk(node["items"], v) for v in value]
        return value

    return walk(schema, obj)


def _json_type_matches(node: dict[str, Any], value: Any) -> bool:
    t = node.get("type")
    if t is None:
        return True
    mapping: dict[str, type | tuple[type, ...]] = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "number": (int, float),
        "null": type(None),
    }
    py = mapping.get(t)
    return py is not None and isinstance(value, py) and not (t == "integer" and isinstance(value, bool))


def _parse_inventory(res: Resource, obj: dict[str, Any]) -> None:
    model_cls = INVENTORY_MODELS[(res.group, res.kind)]
    try:
        res.model = model_cls.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = _doc_path(obj, err["loc"])
        res.diagnostics.append(
            res.diag(
                BAD_INVENTORY,
                f"{json_path(path) or '<root>'}: {err['msg']}",
                path,
                hint="translation needs this object's ports, selector, labels or service account",
            )
        )


@cache
def _field_paths(model_cls: type[BaseModel]) -> frozenset[str]:
    """Every field path a model accepts, with list indices removed (``spec.backends.weight``)."""
    schema = model_cls.model_json_schema()
    defs = schema.get("$defs", {})
    out: set[str] = set()

    def walk(node: dict[str, Any], prefix: str, depth: int) -> None:
        if depth > 12:
            return
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[1]]
        for key in ("anyOf", "oneOf", "allOf"):
            for option in node.get(key, []):
                walk(option, prefix, depth + 1)
        for name, sub in node.get("properties", {}).items():
            path = f"{prefix}.{name}" if prefix else name
            out.add(path)
            walk(sub, path, depth + 1)
        if isinstance(node.get("items"), dict):
            walk(node["items"], prefix, depth + 1)

    walk(schema, "", 0)
    return frozenset(out)


def _shape_owner_versions(group: str, kind: str, version: str, path: Sequence[str | int]) -> list[str]:
    """Other versions of ``kind`` in which ``path`` is a real field."""
    dotted = ".".join(str(p) for p in path if isinstance(p, str))
    found = []
    for v in KIND_VERSIONS.get((group, kind), ()):
        if v == version:
            continue
        model_cls = SMI_MODELS[(group, v, kind)]
        if dotted in _field_paths(model_cls):
            found.append(v)
    return found


def _doc_path(obj: Any, loc: Sequence[str | int]) -> list[str | int]:
    """Map a pydantic error location onto the document, dropping union tags like ``int`` or
    ``list[dict[str,str]]`` that are not keys of the document."""
    path: list[str | int] = []
    node = obj
    for seg in loc:
        if isinstance(node, dict) and isinstance(seg, str) and seg in node:
            path.append(seg)
            node = node[seg]
        elif isinstance(node, list) and isinstance(seg, int) and 0 <= seg < len(node):
            path.append(seg)
            node = node[seg]
        elif isinstance(node, dict) and isinstance(seg, str) and not _looks_like_type_tag(seg):
            path.append(seg)  # a missing key: point at it (the position falls back to the parent)
            node = None
        # else: a union tag such as "int", "str", "list[...]", "function-after[...]": skip
    return path


_VALIDATOR_WRAPPER = re.compile(r"^function-\w+\[[^,]*, ")
_TYPE_TAG = re.compile(r"^(constrained-|strict-|lax-)?(int|str|float|bool|dict|list|none|bytes|model)$")


def _looks_like_type_tag(seg: str) -> bool:
    """pydantic puts the union member in error locations (``constrained-int``, ``list[...]``)."""
    return (
        bool(_TYPE_TAG.match(seg)) or "[" in seg or seg.startswith(("function-", "literal", "tagged-union"))
    )


def _union_tag(loc: Sequence[str | int]) -> str:
    for seg in reversed(loc):
        if isinstance(seg, str) and _looks_like_type_tag(seg):
            return seg
    return ""


def _best_errors(obj: Any, errors: list[Any]) -> list[tuple[list[str | int], Any]]:
    """Errors mapped onto the document; for a union, only the errors of the member whose type
    fits the value (pydantic reports every member's failure)."""
    groups: dict[str, tuple[list[str | int], dict[str, list[tuple[list[str | int], Any]]]]] = {}
    for err in errors:
        loc = list(err["loc"])
        cut = next(
            (i for i, seg in enumerate(loc) if isinstance(seg, str) and _looks_like_type_tag(seg)), None
        )
        path = _doc_path(obj, loc)
        if cut is None:
            root, key, tag = path, "=" + json_path(path) + err["type"], ""
        else:
            root = _doc_path(obj, loc[:cut])
            key, tag = json_path(root), str(loc[cut])
        groups.setdefault(key, (root, {}))[1].setdefault(tag, []).append((path, err))
    out: list[tuple[list[str | int], Any]] = []
    for root, members in groups.values():
        if len(members) == 1:
            out.extend(next(iter(members.values())))
            continue
        value = _value_at(obj, root)
        want = {str: "str", bool: "bool", int: "int", float: "float", dict: "dict", list: "list"}.get(
            type(value), ""
        )

        def fits(tag: str, want: str = want) -> bool:
            tag = _VALIDATOR_WRAPPER.sub("", tag)  # function-after[f(), constrained-str] -> constrained-str]
            return bool(want) and (
                tag.rstrip("]") == want or tag.rstrip("]").endswith("-" + want) or tag.startswith(want + "[")
            )

        best = next((t for t in members if fits(t)), next(iter(members)))
        out.extend(members[best])
    return out


def _value_at(obj: Any, path: Sequence[str | int]) -> Any:
    node = obj
    for seg in path:
        if isinstance(node, dict) and seg in node:
            node = node[seg]
        elif isinstance(node, list) and isinstance(seg, int) and 0 <= seg < len(node):
            node = node[seg]
        else:
            return None
    return node


def _schema_diagnostics(res: Resource, obj: dict[str, Any], exc: ValidationError) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen: set[tuple[str, str]] = set()
    errors = exc.errors(include_url=False)
    # Unions report one error per alternative; keep the most specific per path.
    for path, err in _best_errors(obj, list(errors)):
        where = json_path(path) or "<root>"
        etype = err["type"]
        if etype == "extra_forbidden":
            owners = _shape_owner_versions(res.group, res.kind, res.version, path)
            if owners:
                diag = res.diag(
                    WRONG_SHAPE,
                    f"{where} is not a field of {res.kind} {res.version}; it belongs to "
                    f"{', '.join(owners)} (an API server would prune it)",
                    path,
                    hint=_shape_hint(res.kind, res.version, path),
                )
            else:
                diag = res.diag(
                    UNKNOWN_FIELD,
                    f"unknown field {where} in {res.kind} {res.version} (an API server would prune it)",
                    path,
                    hint="check the spelling; fields are case-sensitive",
                )
        else:
            got = err.get("input")
            shown = "" if etype == "missing" else f" (got {_short(got)})"
            msg = "is required" if etype == "missing" else err["msg"][0].lower() + err["msg"][1:]
            diag = res.diag(SCHEMA, f"{where}: {msg}{shown}", path)
        key = (diag.code, diag.path)
        if key in seen:
            continue
        seen.add(key)
        out.append(diag)
    return out


def _shape_hint(kind: str, version: str, path: Sequence[str | int]) -> str:
    head = path[0] if path else ""
    if kind == "HTTPRouteGroup" and head == "matches":
        return "from v1alpha3 on, routes live under spec.matches"
    if kind == "HTTPRouteGroup" and head == "spec":
        return "in v1alpha1/v1alpha2, routes are a top-level matches list"
    if kind == "TrafficTarget" and head == "spec":
        return "v1alpha1 has no spec: destination, specs and sources sit at the top level"
    if kind == "TrafficTarget" and "port" in path:
        return "v1alpha3 moved ports to TCPRoute/UDPRoute rules; smi-bridge convert synthesises one"
    if kind == "TrafficTarget" and head in ("destination", "sources", "specs"):
        return "from v1alpha2 on, destination, rules and sources live under spec"
    if kind == "TrafficSplit" and "matches" in path:
        return "matches needs split v1alpha3 or later"
    return "smi-bridge convert --to-version rewrites an object into another version's shape"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
