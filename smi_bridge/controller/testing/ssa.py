"""Server-side apply for the fake API server: field sets, ownership, conflicts and merge.

A simplified structured-merge-diff, the algorithm the real API server runs for
``application/apply-patch+yaml``:

* A *field set* is a set of paths to leaves (scalars, atomic lists, empty maps) plus markers for the
  items of associative lists. Maps are always granular; lists are atomic unless a rule names their
  keys (``x-kubernetes-list-type: map`` in a CRD schema, Service ports, ownerReferences) or makes
  them a set (finalizers).
* Ownership lives in ``metadata.managedFields`` (FieldsV1 encoding), one entry per
  (manager, operation).
* Apply: every leaf of the applied config that another manager owns with a different value is a
  conflict (HTTP 409) unless ``force``, which moves ownership. The same value means shared
  ownership. Fields the applier owned before and no longer applies are removed unless someone else
  owns them.
* Update (PUT, merge/JSON patch): the manager gets every field it changed; other managers lose them.

What is left out: defaulting between merge and ownership, ``x-kubernetes-map-type: atomic``,
nested set-lists of maps and versions converting field paths.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Obj = dict[str, Any]
PathElem = tuple[str, Any]  # ("f", name) | ("k", ((key, value), ...)) | ("v", value)
FieldPath = tuple[PathElem, ...]
Scope = Literal["main", "status", "all"]

# Metadata that identifies or is maintained by the server: never owned by anybody.
_UNTRACKED_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generateName",
    }
)


class _ItemMarker:
    """The value recorded for an associative-list item itself (its fields are recorded separately)."""

    def __repr__(self) -> str:
        return "<item>"


ITEM = _ItemMarker()


@dataclass(frozen=True)
class ListRules:
    """How the lists of one resource type merge: schema path -> keys (map lists) or set lists.

    A schema path joins field names from the root and skips list items:
    ``spec.template.spec.containers.ports``.
    """

    keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sets: frozenset[str] = frozenset()
    # maps whose undeclared children are atomic (``x-kubernetes-preserve-unknown-fields`` without
    # ``properties``): the API server owns ``.spec.http`` of an Istio VirtualService as one value
    opaque: frozenset[str] = frozenset()

    def list_keys(self, schema_path: str) -> tuple[str, ...] | None:
        if schema_path == "metadata.ownerReferences":
            return ("uid",)
        return self.keys.get(schema_path)

    def is_set(self, schema_path: str) -> bool:
        return schema_path == "metadata.finalizers" or schema_path in self.sets


class ApplyConflict(Exception):
    """Fields another manager owns with a different value; ``conflicts`` holds (manager, field)."""

    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        self.conflicts = conflicts
        n = len(conflicts)
        by_manager: dict[str, list[str]] = {}
        for manager, path in conflicts:
            by_manager.setdefault(manager, []).append(path)
        parts = [f'conflict with "{m}": {", ".join(paths)}' for m, paths in by_manager.items()]
        super().__init__(f"Apply failed with {n} conflict{'s' if n != 1 else ''}: {'; '.join(parts)}")


def clone(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars); several times faster than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


# --- field sets ------------------------------------------------------------------------------------


def _child(spath: str, name: str) -> str:
    return f"{spath}.{name}" if spath else name


def _item_key(item: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[tuple[str, Any], ...]:
    return tuple((k, item.get(k)) for k in keys)


def _walk(value: Any, path: FieldPath, spath: str, rules: ListRules, out: dict[FieldPath, Any]) -> None:
    if isinstance(value, dict):
        if not value:
            out[path] = {}
        for k, v in value.items():
            if spath in rules.opaque:
                out[(*path, ("f", k))] = v
            else:
                _walk(v, (*path, ("f", k)), _child(spath, k), rules, out)
        return
    if isinstance(value, list):
        keys = rules.list_keys(spath)
        if keys is not None and all(isinstance(i, dict) for i in value):
            for item in value:
                ipath = (*path, ("k", _item_key(item, keys)))
                out[ipath] = ITEM
                for k, v in item.items():
                    _walk(v, (*ipath, ("f", k)), _child(spath, k), rules, out)
            return
        if rules.is_set(spath) and all(isinstance(i, str | int | float | bool) for i in value):
            for item in value:
                out[(*path, ("v", item))] = item
            return
    out[path] = value


def tracked(obj: Mapping[str, Any], rules: ListRules, scope: Scope) -> dict[FieldPath, Any]:
    """Every owned-able path of ``obj`` with its value (``ITEM`` for list items).

    ``scope``: ``main`` leaves out ``status`` (types with a status subresource), ``status`` keeps only
    ``status``, ``all`` keeps both.
    """
    out: dict[FieldPath, Any] = {}
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "status" and scope == "main":
            continue
        if key != "status" and scope == "status":
            continue
        if key == "metadata":
            if not isinstance(value, dict):
                continue
            for mk, mv in value.items():
                if mk in _UNTRACKED_METADATA:
                    continue
                _walk(mv, (("f", "metadata"), ("f", mk)), f"metadata.{mk}", rules, out)
            continue
        _walk(value, (("f", key),), key, rules, out)
    return out


def value_at(obj: Any, path: FieldPath) -> Any:
    """The value at ``path`` (``None`` when absent)."""
    node = obj
    for kind, arg in path:
        if kind == "f":
            if not isinstance(node, dict) or arg not in node:
                return None
            node = node[arg]
        elif kind == "k":
            if not isinstance(node, list):
                return None
            node = next(
                (i for i in node if isinstance(i, dict) and _item_key(i, tuple(k for k, _ in arg)) == arg),
                None,
            )
            if node is None:
                return None
        else:
            if not isinstance(node, list) or arg not in node:
                return None
            node = arg
    return node


def delete_at(obj: Any, path: FieldPath) -> None:
    """Remove the field, list item or set member at ``path`` if present."""
    if not path:
        return
    parent = value_at(obj, path[:-1])
    kind, arg = path[-1]
    if kind == "f" and isinstance(parent, dict):
        parent.pop(arg, None)
    elif kind == "k" and isinstance(parent, list):
        keys = tuple(k for k, _ in arg)
        parent[:] = [i for i in parent if not (isinstance(i, dict) and _item_key(i, keys) == arg)]
    elif kind == "v" and isinstance(parent, list):
        parent[:] = [i for i in parent if i != arg]


def format_path(path: FieldPath) -> str:
    """``.spec.ports[port=80,protocol="TCP"].targetPort``, the way the API server names fields."""
    out = []
    for kind, arg in path:
        if kind == "f":
            out.append(f".{arg}")
        elif kind == "k":
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in arg) + "]")
        else:
            out.append(f"[={json.dumps(arg)}]")
    return "".join(out)


def _elem_text(elem: PathElem) -> str:
    kind, arg = elem
    if kind == "f":
        return f"f:{arg}"
    if kind == "k":
        return "k:" + json.dumps(dict(arg), separators=(",", ":"))
    return "v:" + json.dumps(arg, separators=(",", ":"))


def _elem_parse(text: str) -> PathElem:
    kind, _, arg = text.partition(":")
    if kind == "f":
        return ("f", arg)
    if kind == "k":
        parsed = json.loads(arg)
        return ("k", tuple(parsed.items()))
    return ("v", json.loads(arg))


def encode_fields(paths: Iterable[FieldPath], items: Iterable[FieldPath] = ()) -> Obj:
    """FieldsV1: nested ``f:``/``k:``/``v:`` maps; list items carry a ``.`` entry."""
    root: Obj = {}
    for p in paths:
        node = root
        for elem in p:
            node = node.setdefault(_elem_text(elem), {})
    for p in items:
        node = root
        for elem in p:
            node = node.setdefault(_elem_text(elem), {})
        node["."] = {}
    return root


def decode_fields(fields_v1: Mapping[str, Any]) -> set[FieldPath]:
    out: set[FieldPath] = set()

    def walk(node: Mapping[str, Any], path: FieldPath) -> None:
        children = [k for k in node if k != "."]
        if ("." in node or not children) and path:
            out.add(path)
        for k in children:
            sub = node[k]
            walk(sub if isinstance(sub, dict) else {}, (*path, _elem_parse(k)))

    walk(fields_v1, ())
    return out


# --- ownership -------------------------------------------------------------------------------------


@dataclass
class Entry:
    api_version: str
    time: str
    fields: set[FieldPath]
    subresource: str = ""


ManagerKey = tuple[str, str]  # (manager, operation)


def read_ownership(obj: Mapping[str, Any]) -> dict[ManagerKey, Entry]:
    out: dict[ManagerKey, Entry] = {}
    for e in (obj.get("metadata") or {}).get("managedFields") or []:
        if not isinstance(e, dict):
            continue
        key = (str(e.get("manager", "")), str(e.get("operation", "")))
        fields = decode_fields(e.get("fieldsV1") or {})
        if key in out:
            out[key].fields |= fields
        else:
            out[key] = Entry(
                str(e.get("apiVersion", "")), str(e.get("time", "")), fields, str(e.get("subresource", ""))
            )
    return out


def write_ownership(obj: Obj, owners: Mapping[ManagerKey, Entry]) -> None:
    entries = []
    for (manager, operation), e in owners.items():
        if not e.fields:
            continue
        items = [p for p in e.fields if p and p[-1][0] == "k"]
        leaves = [p for p in e.fields if not (p and p[-1][0] == "k")]
        entry: Obj = {
            "manager": manager,
            "operation": operation,
            "apiVersion": e.api_version,
            "time": e.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": encode_fields(leaves, items),
        }
        if e.subresource:
            entry["subresource"] = e.subresource
        entries.append(entry)
    md = obj.setdefault("metadata", {})
    if entries:
        md["managedFields"] = entries
    else:
        md.pop("managedFields", None)


def _is_leaf(path: FieldPath) -> bool:
    return bool(path) and path[-1][0] != "k"


def record_update(
    old: Mapping[str, Any] | None,
    new: Obj,
    manager: str,
    rules: ListRules,
    *,
    api_version: str,
    now: str,
    scope: Scope,
    subresource: str = "",
) -> None:
    """Give ``manager`` (operation Update) every field it changed from ``old`` to ``new``."""
    owners = read_ownership(old) if old is not None else {}
    before = tracked(old, rules, scope) if old is not None else {}
    after = tracked(new, rules, scope)
    changed = {p for p, v in after.items() if p not in before or before[p] != v}
    removed = set(before) - set(after)
    for entry in owners.values():
        entry.fields -= changed | removed
    key = (manager, "Update")
    mine = owners.get(key)
    if mine is None:
        mine = owners[key] = Entry(api_version, now, set(), subresource)
    if changed:
        mine.api_version, mine.time = api_version, now
    mine.fields |= changed
    write_ownership(new, {k: e for k, e in owners.items() if e.fields})


def _merge(live: Any, config: Any, spath: str, rules: ListRules) -> Any:
    if isinstance(live, dict) and isinstance(config, dict):
        out = dict(live)
        for k, v in config.items():
            if k in live and spath not in rules.opaque:
                out[k] = _merge(live[k], v, _child(spath, k), rules)
            else:
                out[k] = clone(v)
        return out
    if isinstance(live, list) and isinstance(config, list):
        keys = rules.list_keys(spath)
        if keys is not None and all(isinstance(i, dict) for i in live + config):
            merged = list(live)
            index = {_item_key(i, keys): n for n, i in enumerate(merged)}
            for item in config:
                k = _item_key(item, keys)
                if k in index:
                    merged[index[k]] = _merge(merged[index[k]], item, spath, rules)
                else:
                    index[k] = len(merged)
                    merged.append(clone(item))
            return merged
        if rules.is_set(spath):
            return list(live) + [i for i in config if i not in live]
    return clone(config)


def apply_config(
    live: Mapping[str, Any] | None,
    config: Mapping[str, Any],
    manager: str,
    rules: ListRules,
    *,
    force: bool,
    api_version: str,
    now: str,
    scope: Scope,
) -> Obj:
    """The object after ``manager`` applies ``config`` (raises ``ApplyConflict``)."""
    owners = read_ownership(live) if live is not None else {}
    base: Obj = clone(dict(live)) if live is not None else {}
    live_fields = tracked(base, rules, scope) if live is not None else {}
    cfg = tracked(config, rules, scope)
    me: ManagerKey = (manager, "Apply")
    conflicts: list[tuple[str, FieldPath]] = []
    for key, entry in owners.items():
        if key == me:
            continue
        for p in entry.fields & set(cfg):
            if _is_leaf(p) and live_fields.get(p) != cfg[p]:
                conflicts.append((key[0], p))
    if conflicts and not force:
        raise ApplyConflict(
            [(m, format_path(p)) for m, p in sorted(conflicts, key=lambda c: (c[0], format_path(c[1])))]
        )
    for manager_name, p in conflicts:
        for key, entry in owners.items():
            if key[0] == manager_name and key != me:
                entry.fields.discard(p)
    previous = owners.get(me, Entry(api_version, now, set())).fields
    others: set[FieldPath] = set().union(*(e.fields for k, e in owners.items() if k != me))
    dropped = [p for p in previous - set(cfg) if p not in others]
    # shallow first: a removed list item takes its fields along (its key fields must still be there
    # to find it); an item or map stays while another manager owns something inside it
    for p in sorted(dropped, key=len):
        if any(o[: len(p)] == p and o != p for o in others):
            continue
        delete_at(base, p)
        # a map or list emptied by the removal goes too (1.20 left ``null`` behind, which its own
        # validation then rejected; later versions remove it)
        parent = p[:-1]
        while len(parent) > 1:
            if value_at(base, parent) not in ({}, []) or any(o[: len(parent)] == parent for o in others):
                break
            delete_at(base, parent)
            parent = parent[:-1]
    metadata_cfg = {k: v for k, v in (config.get("metadata") or {}).items() if k not in _UNTRACKED_METADATA}
    body_cfg = {k: v for k, v in config.items() if k not in ("apiVersion", "kind", "metadata")}
    if scope == "main":
        body_cfg.pop("status", None)
    elif scope == "status":
        body_cfg = {k: v for k, v in body_cfg.items() if k == "status"}
        metadata_cfg = {}
    merged: Obj = _merge(base, body_cfg, "", rules)
    md = merged.setdefault("metadata", {})
    merged["metadata"] = _merge(md, metadata_cfg, "metadata", rules)
    # fields we changed are ours alone (the force case); equal values stay shared
    changed_by_us = {p for p in cfg if live_fields.get(p) != cfg[p]}
    for key, entry in owners.items():
        if key != me:
            entry.fields -= changed_by_us
    owners[me] = Entry(api_version, now, set(cfg))
    _drop_empty(merged)
    write_ownership(merged, {k: e for k, e in owners.items() if e.fields})
    return merged


def _drop_empty(obj: Obj) -> None:
    """Top-level maps emptied by field removal disappear (``spec: {}`` stays if it was applied)."""
    md = obj.get("metadata")
    if isinstance(md, dict):
        for key in ("labels", "annotations"):
            if md.get(key) == {}:
                md.pop(key)
        for key in ("finalizers", "ownerReferences"):
            if md.get(key) == []:
                md.pop(key)
