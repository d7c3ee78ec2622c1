"""Building blocks the backend tests share: objects as ``ingest`` reads them, and damaged copies.

``as_source_objects`` gives emitted objects the origins of one file (one line per object);
``read_import_fixture`` reads a hand-written import fixture with file:line origins, together with
the inventory (Services and Pods) the SMI front end builds from the same file; ``damaged`` swaps
values deep inside objects for junk of another shape, for the never-a-traceback properties;
``outcome`` is what a decision gives each backend Service (its share, whether access allows it),
which the round-trip oracles compare.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from backends.base import SourceObject
from smi_bridge.ir import IR, Origin
from smi_bridge.load import load
from smi_bridge.semantics import Decision
from smi_bridge.translate import front

__all__ = ["as_source_objects", "damaged", "outcome", "read_import_fixture"]


def as_source_objects(objects: Sequence[Mapping[str, Any]], file: str = "emitted.yaml") -> list[SourceObject]:
    return [
        SourceObject(
            obj,
            Origin(
                str(obj["kind"]),
                str(obj["metadata"].get("namespace", "")),
                str(obj["metadata"].get("name", "")),
                str(obj["apiVersion"]),
                file,
                i + 1,
            ),
        )
        for i, obj in enumerate(objects)
    ]


def read_import_fixture(path: Path) -> tuple[list[SourceObject], IR]:
    """A fixture's objects with file:line, and the inventory the SMI front end builds from it."""
    objects = []
    for doc in load([path]).documents:
        md = doc.obj.get("metadata") or {}
        objects.append(
            SourceObject(
                doc.obj,
                Origin(
                    doc.obj.get("kind", ""),
                    md.get("namespace", ""),
                    md.get("name", ""),
                    doc.obj.get("apiVersion", ""),
                    doc.file,
                    doc.line,
                ),
            )
        )
    built = front([path]).ir
    return objects, IR(services=built.services, pods=built.pods)


_JUNK = st.sampled_from([None, 0, -3, "x", "", True, [], {}, ["x"], [None], {"name": 3}, [{"kind": 7}], 1.5])


@st.composite
def damaged(draw: st.DrawFn, objects: Sequence[SourceObject]) -> list[SourceObject]:
    """The objects with one to three values somewhere inside replaced by junk of another shape."""
    objs = [SourceObject(copy.deepcopy(dict(o.obj)), o.origin) for o in objects]
    for _ in range(draw(st.integers(1, 3))):
        node: Any = objs[draw(st.integers(0, len(objs) - 1))].obj
        while True:
            keys = sorted(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = node[key]
            if isinstance(child, dict | list) and child and draw(st.integers(0, 3)):
                node = child
                continue
            node[key] = copy.deepcopy(draw(_JUNK))  # the junk values are shared: never mutate them
            break
    return objs


def outcome(decision: Decision) -> tuple[tuple[str, Fraction, bool], ...]:
    weights: dict[str, int] = {}
    allowed: dict[str, bool] = {}
    for b in decision.backends:
        weights[b.service] = weights.get(b.service, 0) + b.weight
        allowed[b.service] = b.allowed
    total = sum(weights.values())
    return tuple(sorted((s, Fraction(w, total), allowed[s]) for s, w in weights.items()))
