"""The controller's desired state is the CLI's translation, cut into units of namespaces and merged back."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.base import SOURCE_ANNOTATION, Options
from smi_bridge.controller import desired as d
from smi_bridge.translate import translate
from tests.conftest import FIXTURES
from tests.controller.cluster import load_yaml_docs

Obj = dict[str, Any]


def _units_translation(objects: list[Obj], backend: str) -> dict[d.ObjKey, Obj]:
    """What the controller computes: parse each object, group namespaces, emit per unit, merge."""
    cache = d.ParseCache()
    by_ns: dict[str, list[Obj]] = {}
    for i, obj in enumerate(objects):
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        md.setdefault("namespace", "default")
        md["resourceVersion"] = str(i + 1)
        by_ns.setdefault(md["namespace"], []).append(obj)
    tts = [o for objs in by_ns.values() for o in objs if o.get("kind") == "TrafficTarget"]
    results = []
    for unit in d.namespace_groups(by_ns, tts):
        resources = [
            r for ns in sorted(unit) for o in by_ns.get(ns, []) if (r := cache.resource(o)) is not None
        ]
        results.append(d.translate_unit(unit, resources, backend, Options()))
    merged, _notes = d.merge_units(results)
    return merged


def _cli_translation(path: Path, backend: str) -> dict[d.ObjKey, Obj]:
    out = translate([path], [backend], Options()).outputs[0].objects
    return {d.output_key(o): o for o in out}


SCENARIOS = [*sorted((FIXTURES / "scenarios").glob("*.yaml")), FIXTURES / "demo" / "bookstore.yaml"]


@pytest.mark.parametrize("backend", ["istio", "linkerd", "consul", "gateway-api"])
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_unit_by_unit_translation_equals_one_translation_of_everything(path: Path, backend: str) -> None:
    objects = [o for o in load_yaml_docs([path]) if o.get("kind") and o.get("kind") != "Namespace"]
    by_units = _units_translation(objects, backend)
    whole = _cli_translation(path, backend)
    assert sorted(by_units) == sorted(whole)
    for key, obj in whole.items():
        assert by_units[key] == obj, key


namespaces = st.sampled_from(["a", "b", "c", "d", "e", "f"])
targets = st.lists(st.tuples(namespaces, namespaces, st.lists(namespaces, max_size=3)), max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.sets(namespaces), targets)
def test_namespace_groups_partition_and_keep_every_target_whole(
    own: set[str], tts: list[tuple[str, str, list[str]]]
) -> None:
    objs = [
        {
            "kind": "TrafficTarget",
            "metadata": {"name": f"t{i}", "namespace": ns},
            "spec": {"destination": {"namespace": dest}, "sources": [{"namespace": s} for s in srcs]},
        }
        for i, (ns, dest, srcs) in enumerate(tts)
    ]
    groups = d.namespace_groups(own | {ns for ns, _d, _s in tts}, objs)
    seen: set[str] = set()
    for g in groups:
        assert not (g & seen)
        seen |= g
    for obj in objs:
        refs = d.referenced_namespaces(obj)
        assert sum(1 for g in groups if refs <= g) == 1
    # minimal: a group only joins namespaces some chain of targets joins
    for g in groups:
        if len(g) > 1:
            assert any(len(d.referenced_namespaces(o) & g) > 0 for o in objs)


def test_the_same_object_from_two_units_keeps_both_sources_and_a_difference_is_reported() -> None:
    base = {
        "apiVersion": "x/v1",
        "kind": "K",
        "metadata": {"name": "n", "namespace": "default", "annotations": {SOURCE_ANNOTATION: "A/a/1"}},
        "spec": {"v": 1},
    }
    other = copy.deepcopy(base)
    other["metadata"]["annotations"][SOURCE_ANNOTATION] = "B/b/2"
    key = d.output_key(base)
    r1 = d.UnitResult(frozenset({"a"}), {key: base}, [], set())
    r2 = d.UnitResult(frozenset({"b"}), {key: other}, [], set())
    merged, notes = d.merge_units([r2, r1])
    assert merged[key]["metadata"]["annotations"][SOURCE_ANNOTATION] == "A/a/1,B/b/2"
    assert notes == []
    other["spec"]["v"] = 2
    merged, notes = d.merge_units([r1, r2])
    assert merged[key]["spec"] == {"v": 1}
    assert [n.code for n in notes] == ["SMC006"]


def test_finalize_adds_owner_references_only_for_sources_in_the_same_namespace() -> None:
    obj = {
        "apiVersion": "x/v1",
        "kind": "K",
        "metadata": {
            "name": "n",
            "namespace": "a",
            "annotations": {SOURCE_ANNOTATION: "TrafficTarget/a/t,HTTPRouteGroup/b/r,TrafficSplit/a/gone"},
        },
    }
    smi = {
        ("TrafficTarget", "a", "t"): {"apiVersion": "access.smi-spec.io/v1alpha3", "metadata": {"uid": "u1"}},
        ("HTTPRouteGroup", "b", "r"): {"apiVersion": "specs.smi-spec.io/v1alpha4", "metadata": {"uid": "u2"}},
    }
    out = d.finalize(obj, smi)
    assert out["metadata"]["ownerReferences"] == [
        {"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget", "name": "t", "uid": "u1"}
    ]
    assert out["metadata"]["annotations"][d.HASH_ANNOTATION] == d.desired_hash(out)
    assert d.needs_finalizer([out]) == {("HTTPRouteGroup", "b", "r")}
    assert "ownerReferences" not in obj["metadata"]


def test_a_live_object_is_current_only_with_our_hash_and_every_field_we_set() -> None:
    body = d.finalize(
        {
            "apiVersion": "x/v1",
            "kind": "K",
            "metadata": {"name": "n", "namespace": "a", "ownerReferences": [{"uid": "1"}]},
            "spec": {"a": [1, 2], "m": {"k": "v"}},
        },
        {},
    )
    live = copy.deepcopy(body)
    live["metadata"].update({"uid": "x", "resourceVersion": "9", "managedFields": [{"manager": "m"}]})
    live["metadata"]["ownerReferences"].append({"uid": "2"})
    live["spec"]["m"]["other"] = "kept"
    live["status"] = {"s": 1}
    assert d.is_current(live, body)
    changed = copy.deepcopy(live)
    changed["spec"]["a"] = [2, 1]
    assert not d.is_current(changed, body)
    old_hash = copy.deepcopy(live)
    old_hash["metadata"]["annotations"][d.HASH_ANNOTATION] = "0"
    assert not d.is_current(old_hash, body)


def test_ownership_needs_label_and_generator_and_forcing_needs_our_earlier_apply() -> None:
    labelled = {
        "metadata": {
            "labels": {"app.kubernetes.io/managed-by": "smi-bridge"},
            "annotations": {"smi-bridge.io/generator": "smi-bridge-0.1.0"},
        }
    }
    assert d.is_ours(labelled)
    assert not d.is_ours({"metadata": {"labels": labelled["metadata"]["labels"]}})
    assert not d.applied_by_us(labelled)
    labelled["metadata"]["managedFields"] = [{"manager": "smi-bridge", "operation": "Apply"}]
    assert d.applied_by_us(labelled)


def test_documents_from_the_cluster_name_their_object() -> None:
    doc = d.document_for({"kind": "TrafficSplit", "metadata": {"name": "s", "namespace": "ns"}})
    assert (doc.file, doc.line) == ("cluster:TrafficSplit/ns/s", 1)
