"""The fake API server's own machinery: server-side apply field sets, selectors, faults, paging, bookmarks.

(Its protocol behaviour is held to the real kube-apiserver by the contract suite; these are the parts
only a fake has, and properties of its apply algorithm.)
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes import client as k8s
from kubernetes import watch

from smi_bridge.controller.testing import crdschema
from smi_bridge.controller.testing.fakeapi import Fault
from smi_bridge.controller.testing.ssa import (
    ApplyConflict,
    ListRules,
    apply_config,
    decode_fields,
    encode_fields,
    read_ownership,
    tracked,
)
from tests.controller.cluster import Cluster

Obj = dict[str, Any]
RULES = ListRules(keys={"spec.ports": ("port",)})

leaves = st.one_of(st.integers(-5, 5), st.text("ab", max_size=2), st.booleans())
specs = st.recursive(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), leaves, max_size=3),
    lambda inner: st.dictionaries(
        st.sampled_from(["a", "b", "c", "d"]),
        st.one_of(leaves, inner, st.lists(leaves, max_size=2)),
        max_size=3,
    ),
    max_leaves=8,
)


def _obj(spec: Obj) -> Obj:
    return {"apiVersion": "t/v1", "kind": "T", "metadata": {"name": "x"}, "spec": spec}


def _apply(live: Obj | None, cfg: Obj, manager: str, force: bool = False) -> Obj:
    return apply_config(live, cfg, manager, RULES, force=force, api_version="t/v1", now="t", scope="all")


@settings(max_examples=150, deadline=None)
@given(specs)
def test_applying_the_same_configuration_twice_changes_nothing(spec: Obj) -> None:
    once = _apply(None, _obj(spec), "m")
    twice = _apply(once, _obj(spec), "m")
    assert twice == once
    assert once["spec"] == spec or not spec


@settings(max_examples=150, deadline=None)
@given(specs)
def test_field_sets_survive_the_fieldsv1_encoding(spec: Obj) -> None:
    fields = tracked(_obj(spec), RULES, "all")
    leaves_only = {p for p in fields if p[-1][0] != "k"}
    assert decode_fields(encode_fields(leaves_only)) == leaves_only


@settings(max_examples=150, deadline=None)
@given(specs, specs)
def test_what_a_manager_stops_applying_disappears_unless_another_owns_it(first: Obj, second: Obj) -> None:
    live = _apply(None, _obj(first), "m")
    try:
        after = _apply(live, _obj(second), "m")
    except ApplyConflict:
        pytest.fail("a manager never conflicts with itself")
    assert after["spec"] == second if second else after.get("spec", {}) in ({}, None)


def test_two_managers_share_equal_values_and_conflict_on_different_ones() -> None:
    live = _apply(None, _obj({"a": 1, "ports": [{"port": 80, "name": "x"}]}), "one")
    shared = _apply(live, _obj({"a": 1, "ports": [{"port": 81}]}), "two")
    assert sorted(p["port"] for p in shared["spec"]["ports"]) == [80, 81]
    owners = read_ownership(shared)
    assert (("f", "spec"), ("f", "a")) in owners[("one", "Apply")].fields & owners[("two", "Apply")].fields
    with pytest.raises(ApplyConflict) as exc:
        _apply(shared, _obj({"a": 2}), "two")
    assert exc.value.conflicts == [("one", ".spec.a")]
    forced = _apply(shared, _obj({"a": 2, "ports": [{"port": 81}]}), "two", force=True)
    assert forced["spec"]["a"] == 2
    assert (("f", "spec"), ("f", "a")) not in read_ownership(forced)[("one", "Apply")].fields
    # "one" stops applying its port: it goes, "two"'s stays
    after = _apply(forced, _obj({}), "one")
    assert [p["port"] for p in after["spec"]["ports"]] == [81]


def test_label_selector_language() -> None:
    sel = crdschema.label_selector("a=1,b!=2,c,!d,e in (x, y),f notin (z)")
    assert sel({"a": "1", "c": "", "e": "x"})
    assert not sel({"a": "1", "c": "", "e": "x", "d": "1"})
    assert not sel({"a": "1", "b": "2", "c": "", "e": "y"})
    assert not sel({"a": "1", "c": "", "e": "x", "f": "z"})
    with pytest.raises(crdschema.SelectorError):
        crdschema.label_selector("a=1,=")


def test_the_official_client_lists_watches_and_applies_against_the_fake(fake: Cluster) -> None:
    core = k8s.CoreV1Api(fake.api())
    core.create_namespaced_config_map("default", {"metadata": {"name": "a", "labels": {"x": "1"}}})
    w = watch.Watch()
    seen = [
        (e["type"], e["object"].metadata.name)
        for e in w.stream(core.list_namespaced_config_map, "default", label_selector="x=1", timeout_seconds=1)
    ]
    assert seen == [("ADDED", "a")]
    assert k8s.VersionApi(fake.api()).get_code().git_version.startswith("v1.30")


def test_injected_faults_answer_with_status_and_retry_after_then_stop(fake: Cluster) -> None:
    assert fake.fake is not None
    fault = fake.fake.inject(Fault(status=429, method="GET", path="/configmaps", retry_after=3, times=2))
    codes = []
    for _ in range(3):
        resp = fake.raw.get("/api/v1/namespaces/default/configmaps")
        codes.append((resp.status_code, resp.headers.get("Retry-After")))
    assert codes == [(429, "3"), (429, "3"), (200, None)]
    assert fault.hits == 2
    fake.fake.inject(Fault(drop=True, method="GET", path="/configmaps"))
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{fake.host}/api/v1/namespaces/default/configmaps", timeout=5)
    log = [(r.method, r.status) for r in fake.fake.requests if r.path.endswith("/configmaps")]
    assert log[:3] == [("GET", 429), ("GET", 429), ("GET", 200)]


def test_a_compacted_history_expires_continue_tokens_and_old_watches(fake: Cluster) -> None:
    assert fake.fake is not None
    for i in range(3):
        fake.request("POST", "/api/v1/namespaces/default/configmaps", body={"metadata": {"name": f"m{i}"}})
    page = fake.raw.get("/api/v1/namespaces/default/configmaps", params={"limit": "1"}).json()
    rv = page["metadata"]["resourceVersion"]
    fake.request("POST", "/api/v1/namespaces/default/configmaps", body={"metadata": {"name": "m9"}})
    fake.fake.compact()
    expired = fake.raw.get(
        "/api/v1/namespaces/default/configmaps",
        params={"limit": "1", "continue": page["metadata"]["continue"]},
    )
    assert (expired.status_code, expired.json()["reason"]) == (410, "Expired")
    events = list(
        fake.watch("/api/v1/namespaces/default/configmaps", {"resourceVersion": rv, "timeoutSeconds": "1"})
    )
    assert [(e["type"], e["object"]["code"]) for e in events] == [("ERROR", 410)]


def test_bookmarks_come_only_when_asked_for_and_enabled(fake: Cluster) -> None:
    assert fake.fake is not None
    fake.fake.bookmark_interval = 0.2
    rv = fake.raw.get("/api/v1/namespaces/default/configmaps").json()["metadata"]["resourceVersion"]
    asked = list(
        fake.watch(
            "/api/v1/namespaces/default/configmaps",
            {"resourceVersion": rv, "timeoutSeconds": "1", "allowWatchBookmarks": "true"},
        )
    )
    not_asked = list(
        fake.watch("/api/v1/namespaces/default/configmaps", {"resourceVersion": rv, "timeoutSeconds": "1"})
    )
    assert asked and all(e["type"] == "BOOKMARK" for e in asked)
    assert asked[0]["object"]["metadata"]["resourceVersion"] == rv
    assert not_asked == []


def test_a_paused_server_refuses_connections_and_keeps_its_state(fake: Cluster) -> None:
    assert fake.fake is not None
    fake.request("POST", "/api/v1/namespaces/default/configmaps", body={"metadata": {"name": "kept"}})
    fake.fake.pause()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{fake.host}/version", timeout=2)
    fake.fake.resume()
    assert fake.raw.get("/api/v1/namespaces/default/configmaps/kept").status_code == 200


def test_apply_without_field_manager_and_bad_bodies_are_400(fake: Cluster) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    resp = fake.request(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/a",
        body=body,
        content_type="application/apply-patch+yaml",
    )
    assert resp.status_code == 400 and "fieldManager" in resp.json()["message"]
    wrong_kind = copy.deepcopy(json.loads(body))
    wrong_kind["kind"] = "Secret"
    resp = fake.request(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/a",
        body=wrong_kind,
        content_type="application/apply-patch+yaml",
        params={"fieldManager": "m"},
    )
    assert resp.status_code == 400
