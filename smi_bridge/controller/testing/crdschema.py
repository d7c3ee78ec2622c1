"""What the fake API server does with a CRD's structural schema, and its selector languages.

* ``prune`` drops fields the schema does not declare (unless ``x-kubernetes-preserve-unknown-fields``),
  as a real server does silently for structural schemas;
* ``validate`` checks types, ``enum``, ``required``, bounds and ``nullable`` (not ``pattern``,
  formats, ``oneOf``/``anyOf`` or CEL — the 1.20 tier drops CEL rules too);
* ``list_rules`` reads ``x-kubernetes-list-type`` (``map`` with ``x-kubernetes-list-map-keys``,
  ``set``) for server-side apply;
* ``label_selector`` and ``field_selector`` parse the query parameters of list and watch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from smi_bridge.controller.testing.ssa import ListRules

Schema = Mapping[str, Any]


def list_rules(schema: Schema | None) -> ListRules:
    keys: dict[str, tuple[str, ...]] = {}
    sets: set[str] = set()
    opaque: set[str] = set()

    def walk(node: Schema, spath: str, depth: int) -> None:
        if depth > 40:
            return
        if node.get("type") == "array":
            lt = node.get("x-kubernetes-list-type")
            if lt == "map" and node.get("x-kubernetes-list-map-keys"):
                keys[spath] = tuple(str(k) for k in node["x-kubernetes-list-map-keys"])
            elif lt == "set":
                sets.add(spath)
            items = node.get("items")
            if isinstance(items, dict):
                walk(items, spath, depth + 1)
        if node.get("x-kubernetes-preserve-unknown-fields") and not node.get("properties"):
            opaque.add(spath)
        for name, sub in (node.get("properties") or {}).items():
            if isinstance(sub, dict):
                walk(sub, f"{spath}.{name}" if spath else name, depth + 1)

    if schema:
        walk(schema, "", 0)
    return ListRules(keys=keys, sets=frozenset(sets), opaque=frozenset(opaque))


def prune(schema: Schema | None, obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without undeclared fields (apiVersion, kind and metadata are always kept)."""
    if not schema:
        return obj

    def walk(node: Schema, value: Any) -> Any:
        if isinstance(value, dict):
            if node.get("x-kubernetes-embedded-resource"):
                keep = {k: value[k] for k in ("apiVersion", "kind", "metadata") if k in value}
            else:
                keep = {}
            props = node.get("properties")
            addl = node.get("additionalProperties")
            preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
            out: dict[str, Any] = {}
            for k, v in value.items():
                if isinstance(props, dict) and k in props:
                    out[k] = walk(props[k], v)
                elif isinstance(addl, dict):
                    out[k] = walk(addl, v)
                elif preserve or addl is True or k in keep:
                    out[k] = v
            return out
        if isinstance(value, list) and isinstance(node.get("items"), dict):
            return [walk(node["items"], v) for v in value]
        return value

    out = walk(schema, {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")})
    assert isinstance(out, dict)
    return {**{k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}, **out}


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def validate(schema: Schema | None, obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field path, message) for every violation, in the API server's ``spec.x[0].y`` notation."""
    errors: list[tuple[str, str]] = []
    if not schema:
        return errors

    def walk(node: Schema, value: Any, path: str) -> None:
        if value is None:
            if not node.get("nullable"):
                errors.append((path, 'Invalid value: "null": must not be null'))
            return
        if node.get("x-kubernetes-int-or-string"):
            if not (isinstance(value, str) or _TYPES["integer"](value)):
                errors.append((path, f"Invalid value: {_show(value)}: must be an integer or a string"))
            return
        t = node.get("type")
        if isinstance(t, str) and t in _TYPES and not _TYPES[t](value):
            errors.append((path, f"Invalid value: {_show(value)}: {path} in body must be of type {t}"))
            return
        enum = node.get("enum")
        if isinstance(enum, list) and value not in enum:
            supported = ", ".join(f'"{e}"' for e in enum)
            errors.append((path, f"Unsupported value: {_show(value)}: supported values: {supported}"))
        if _TYPES["number"](value):
            if "minimum" in node and value < node["minimum"]:
                errors.append(
                    (
                        path,
                        f"Invalid value: {value}: {path} in body should be greater than or equal to {node['minimum']}",
                    )
                )
            if "maximum" in node and value > node["maximum"]:
                errors.append(
                    (
                        path,
                        f"Invalid value: {value}: {path} in body should be less than or equal to {node['maximum']}",
                    )
                )
        if isinstance(value, str):
            if "maxLength" in node and len(value) > node["maxLength"]:
                errors.append((path, f"Too long: may not be longer than {node['maxLength']}"))
            if "minLength" in node and len(value) < node["minLength"]:
                errors.append(
                    (
                        path,
                        f"Invalid value: {_show(value)}: {path} in body should be at least {node['minLength']} chars long",
                    )
                )
        if isinstance(value, list):
            if "maxItems" in node and len(value) > node["maxItems"]:
                errors.append((path, f"Too many: {len(value)}: must have at most {node['maxItems']} items"))
            if "minItems" in node and len(value) < node["minItems"]:
                errors.append(
                    (
                        path,
                        f"Invalid value: {len(value)}: {path} in body should have at least {node['minItems']} items",
                    )
                )
            items = node.get("items")
            if isinstance(items, dict):
                for i, v in enumerate(value):
                    walk(items, v, f"{path}[{i}]")
        if isinstance(value, dict):
            for req in node.get("required") or []:
                if req not in value:
                    errors.append((f"{path}.{req}" if path else req, "Required value"))
            props = node.get("properties") or {}
            addl = node.get("additionalProperties")
            for k, v in value.items():
                sub = f"{path}.{k}" if path else k
                if k in props and isinstance(props[k], dict):
                    walk(props[k], v, sub)
                elif isinstance(addl, dict):
                    walk(addl, v, sub)

    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    root = dict(schema)
    root["properties"] = {
        k: v
        for k, v in (schema.get("properties") or {}).items()
        if k not in ("apiVersion", "kind", "metadata")
    }
    walk(root, body, "")
    return errors


def _show(value: Any) -> str:
    return (
        f'"{value}"'
        if isinstance(value, str)
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )


# --- selectors -------------------------------------------------------------------------------------

Selector = Callable[[Mapping[str, Any]], bool]

_REQ = re.compile(
    r"\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9_./-]+)\s*"
    r"(?:(?P<op>==|=|!=|\s+in\s+|\s+notin\s+)\s*(?P<val>\([^)]*\)|[A-Za-z0-9_.-]*))?\s*$"
)


class SelectorError(ValueError):
    pass


def _split_requirements(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def _label_check(key: str, op: str, val: str, neg: bool) -> Callable[[Mapping[str, str]], bool]:
    if neg:
        return lambda labels: key not in labels
    if not op:
        return lambda labels: key in labels
    if op in ("=", "=="):
        return lambda labels: labels.get(key) == val
    if op == "!=":
        return lambda labels: labels.get(key) != val
    values = {v.strip() for v in val.strip("()").split(",") if v.strip()}
    if op == "in":
        return lambda labels: labels.get(key) in values
    return lambda labels: labels.get(key) not in values


def label_selector(text: str) -> Callable[[Mapping[str, str]], bool]:
    """A predicate over labels for ``a=b,c!=d,e,!f,g in (x,y),h notin (z)``."""
    checks: list[Callable[[Mapping[str, str]], bool]] = []
    for part in _split_requirements(text or ""):
        m = _REQ.match(part)
        if not m:
            raise SelectorError(f"unable to parse requirement: {part.strip()!r}")
        op = (m.group("op") or "").strip()
        if m.group("neg") and op:
            raise SelectorError(f"unable to parse requirement: {part.strip()!r}")
        checks.append(_label_check(m.group("key"), op, m.group("val") or "", bool(m.group("neg"))))
    return lambda labels: all(c(labels) for c in checks)


def _field_check(path: list[str], op: str, want: str) -> Selector:
    def get(obj: Mapping[str, Any]) -> str:
        node: Any = obj
        for p in path:
            node = node.get(p) if isinstance(node, dict) else None
        return "" if node is None else str(node).lower() if isinstance(node, bool) else str(node)

    if op == "!=":
        return lambda obj: get(obj) != want
    return lambda obj: get(obj) == want


def field_selector(text: str) -> Selector:
    """A predicate over objects for ``metadata.name=x,involvedObject.kind!=Pod``."""
    checks: list[Selector] = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        m = re.match(r"\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise SelectorError(f"invalid field selector: {part.strip()!r}")
        checks.append(_field_check(m.group(1).split("."), m.group(2), m.group(3)))
    return lambda obj: all(c(obj) for c in checks)
