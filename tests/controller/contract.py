"""Contract scenarios: the same protocol steps against the fake and the real kube-apiserver.

Each scenario drives one server through the official ``kubernetes`` client or raw HTTP and returns
*facts*: status codes, reasons, event sequences, field names — never uids, times or resourceVersion
values. ``test_contract.py`` asserts each scenario's expectations on the fake, and that the real
server returns exactly the same facts (CI fails when they disagree, which keeps the fake honest).

The numbers in the scenario names are the protocol behaviours of research/controller-testbed.md §7.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s

from tests.controller.cluster import Cluster, crds

Obj = dict[str, Any]
Facts = dict[str, Any]
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"


def widget_crd(group: str) -> Obj:
    """A small CRD with everything the protocol cares about: status subresource, a list-map, an
    atomic list, a preserve-unknown-fields map, and two served versions plus one not served."""
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "size": {"type": "integer", "minimum": 0},
                    "color": {"type": "string"},
                    "note": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["port"],
                        "items": {
                            "type": "object",
                            "required": ["port"],
                            "properties": {"port": {"type": "integer"}, "name": {"type": "string"}},
                        },
                    },
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            },
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
        },
    }
    version = {"schema": {"openAPIV3Schema": schema}, "subresources": {"status": {}}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {"name": "v1", "served": True, "storage": True, **version},
                {"name": "v1beta1", "served": True, "storage": False, **version},
                {"name": "v1alpha1", "served": False, "storage": False, **version},
            ],
        },
    }


class Widgets:
    """A fresh Widget CRD (unique group) and a namespace to use it in."""

    def __init__(self, c: Cluster) -> None:
        self.c = c
        self.group = f"w{uuid.uuid4().hex[:8]}.smi-bridge.test"
        c.install_crds([widget_crd(self.group)])
        self.ns = c.namespace("w")

    def path(self, name: str | None = None, *, version: str = "v1", sub: str = "") -> str:
        p = f"/apis/{self.group}/{version}/namespaces/{self.ns}/widgets"
        if name:
            p += f"/{name}"
        if sub:
            p += f"/{sub}"
        return p

    def body(self, name: str, spec: Obj, *, version: str = "v1", **meta: Any) -> Obj:
        return {
            "apiVersion": f"{self.group}/{version}",
            "kind": "Widget",
            "metadata": {"name": name, "namespace": self.ns, **meta},
            "spec": spec,
        }

    def apply(
        self, name: str, spec: Obj, manager: str, *, force: bool = False, **meta: Any
    ) -> tuple[int, Obj]:
        params = {"fieldManager": manager}
        if force:
            params["force"] = "true"
        resp = self.c.request(
            "PATCH", self.path(name), body=self.body(name, spec, **meta), content_type=APPLY, params=params
        )
        return resp.status_code, resp.json()


def _managers(obj: Obj) -> list[tuple[str, str]]:
    return sorted((e["manager"], e["operation"]) for e in obj["metadata"].get("managedFields") or [])


def _leaf_fields(entry_fields: Obj, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for k, v in entry_fields.items():
        if k == ".":
            continue
        path = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and any(x != "." for x in v):
            out |= _leaf_fields(v, path)
        else:
            out.add(path)
    return out


def _owned(obj: Obj, manager: str) -> set[str]:
    out: set[str] = set()
    for e in obj["metadata"].get("managedFields") or []:
        if e["manager"] == manager:
            out |= _leaf_fields(e.get("fieldsV1") or {})
    return {f for f in out if f.startswith("f:spec")}


def _cause_managers(body: Obj) -> list[tuple[str, str]]:
    out = []
    for cause in (body.get("details") or {}).get("causes") or []:
        m = re.search(r'"([^"]+)"', cause.get("message", ""))
        out.append((m.group(1) if m else "", cause.get("field", "")))
    return sorted(out)


def _events(c: Cluster, path: str, **params: str) -> list[Obj]:
    return list(c.watch(path, params))


def _rv(obj: Obj) -> str:
    return str(obj["metadata"]["resourceVersion"])


# --- the scenarios ------------------------------------------------------------------------------------


def s01_discovery_served_versions(c: Cluster) -> Facts:
    group = f"d{uuid.uuid4().hex[:8]}.smi-bridge.test"
    before = c.raw.get(f"/apis/{group}").status_code
    c.install_crds([widget_crd(group)])
    doc = c.raw.get(f"/apis/{group}").json()
    listed = [g["name"] for g in c.raw.get("/apis").json()["groups"]]
    ns = c.namespace("d")
    created = c.request(
        "POST",
        f"/apis/{group}/v1beta1/namespaces/{ns}/widgets",
        body={
            "apiVersion": f"{group}/v1beta1",
            "kind": "Widget",
            "metadata": {"name": "a"},
            "spec": {"size": 1},
        },
    )
    as_v1 = c.raw.get(f"/apis/{group}/v1/namespaces/{ns}/widgets/a").json()
    not_served = c.raw.get(f"/apis/{group}/v1alpha1").status_code
    c.install_crds(crds("smi"))
    split = c.raw.get("/apis/split.smi-spec.io").json()
    resources = sorted(r["name"] for r in c.raw.get(f"/apis/{group}/v1").json()["resources"])
    assert before == 404 and group in listed and created.status_code == 201
    return {
        "absent_before": before,
        "versions": [v["version"] for v in doc["versions"]],
        "preferred": doc["preferredVersion"]["version"],
        "v1alpha1_not_served": not_served,
        "read_through_other_version": (as_v1["apiVersion"].replace(group, "<group>"), as_v1["spec"]),
        "resources": resources,
        "smi_split_versions": [v["version"] for v in split["versions"]],
    }


def s01b_several_smi_versions_served(c: Cluster) -> Facts:
    """linkerd-smi's TrafficSplit CRD serves v1alpha1 and v1alpha2 (conversion None): one object, two views."""
    c.install_crds(crds("smi-linkerd"))
    doc = c.raw.get("/apis/split.smi-spec.io").json()
    versions = [v["version"] for v in doc["versions"]]
    ns = c.namespace("sv")
    ts = {
        "apiVersion": "split.smi-spec.io/v1alpha2",
        "kind": "TrafficSplit",
        "metadata": {"name": "s"},
        "spec": {"service": "web", "backends": [{"service": "web-v1", "weight": 50}]},
    }
    if "v1alpha2" not in versions:
        return {"versions": versions}
    code = c.request(
        "POST", f"/apis/split.smi-spec.io/v1alpha2/namespaces/{ns}/trafficsplits", body=ts
    ).status_code
    other = c.raw.get(f"/apis/split.smi-spec.io/v1alpha1/namespaces/{ns}/trafficsplits/s").json()
    return {"versions": sorted(versions), "created": code, "other_view": (other["apiVersion"], other["spec"])}


def s02_list_then_watch_no_gap(c: Cluster) -> Facts:
    w = Widgets(c)
    c.request("POST", w.path(), body=w.body("a", {"size": 1}))
    listing = c.raw.get(w.path()).json()
    rv = listing["metadata"]["resourceVersion"]
    c.request("POST", w.path(), body=w.body("b", {"size": 1}))
    c.request("PATCH", w.path("a"), body={"spec": {"size": 2}}, content_type=MERGE)
    c.request("DELETE", w.path("b"))
    replay = _events(c, w.path(), resourceVersion=rv, timeoutSeconds="1")
    fresh = _events(c, w.path(), timeoutSeconds="1")
    seq = [(e["type"], e["object"]["metadata"]["name"]) for e in replay]
    assert seq == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")], seq
    return {
        "listed": [i["metadata"]["name"] for i in listing["items"]],
        "replay": seq,
        "replay_values": [e["object"]["spec"]["size"] for e in replay],
        "without_rv": [(e["type"], e["object"]["metadata"]["name"]) for e in fresh],
    }


def s03_watch_ends_on_timeout(c: Cluster) -> Facts:
    ns = c.namespace("to")
    rv = k8s.CoreV1Api(c.api()).list_namespaced_config_map(ns).metadata.resource_version
    events = _events(c, f"/api/v1/namespaces/{ns}/configmaps", resourceVersion=rv, timeoutSeconds="1")
    return {"ended": True, "events": len(events)}


def s04_expired_is_an_error_event_in_a_200_stream(c: Cluster) -> Facts:
    ns = c.namespace("ex")
    core = k8s.CoreV1Api(c.api())
    old = core.create_namespaced_config_map(ns, {"metadata": {"name": "a"}}).metadata.resource_version
    core.patch_namespaced_config_map("a", ns, {"data": {"v": "1"}})
    core.patch_namespaced_config_map("a", ns, {"data": {"v": "2"}})  # the revision after ``old`` is compacted
    c.forget_history()
    with c.raw.stream(
        "GET",
        f"/api/v1/namespaces/{ns}/configmaps",
        params={"watch": "true", "resourceVersion": old, "timeoutSeconds": "2"},
    ) as resp:
        status = resp.status_code
        lines = [json.loads(line) for line in resp.iter_lines() if line.strip()]
    first = lines[0] if lines else {}
    assert status == 200 and first.get("type") == "ERROR"
    return {
        "http_status": status,
        "type": first.get("type"),
        "code": first["object"].get("code"),
        "reason": first["object"].get("reason"),
        "events": len(lines),
    }


def s05_bookmarks_are_optional(c: Cluster) -> Facts:
    ns = c.namespace("bm")
    rv = k8s.CoreV1Api(c.api()).list_namespaced_config_map(ns).metadata.resource_version
    events = _events(
        c,
        f"/api/v1/namespaces/{ns}/configmaps",
        resourceVersion=rv,
        timeoutSeconds="2",
        allowWatchBookmarks="true",
    )
    return {"bookmarks_within_2s": sum(1 for e in events if e["type"] == "BOOKMARK")}


def s06_selector_watch_transitions(c: Cluster) -> Facts:
    w = Widgets(c)
    rv = c.raw.get(w.path()).json()["metadata"]["resourceVersion"]
    c.request("POST", w.path(), body=w.body("c1", {"size": 1}, labels={"app": "x"}))
    for patch in (
        {"metadata": {"labels": {"app": "y"}}},
        {"metadata": {"labels": {"app": "x"}}},
        {"spec": {"size": 2}},
    ):
        c.request("PATCH", w.path("c1"), body=patch, content_type=MERGE)
    c.request("DELETE", w.path("c1"))
    events = _events(c, w.path(), resourceVersion=rv, timeoutSeconds="1", labelSelector="app=x")
    seq = [e["type"] for e in events]
    assert seq == ["ADDED", "DELETED", "ADDED", "MODIFIED", "DELETED"], seq
    return {"types": seq, "left_selection_label": events[1]["object"]["metadata"]["labels"]["app"]}


def s07_finalizer_delete(c: Cluster) -> Facts:
    ns = c.namespace("fin")
    core = k8s.CoreV1Api(c.api())
    core.create_namespaced_config_map(ns, {"metadata": {"name": "f", "finalizers": ["smi-bridge.test/hold"]}})
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    resp = c.request("DELETE", f"/api/v1/namespaces/{ns}/configmaps/f")
    held = core.read_namespaced_config_map("f", ns)
    core.patch_namespaced_config_map("f", ns, {"metadata": {"finalizers": None}})
    gone = c.raw.get(f"/api/v1/namespaces/{ns}/configmaps/f").status_code
    events = _events(c, f"/api/v1/namespaces/{ns}/configmaps", resourceVersion=rv, timeoutSeconds="1")
    seq = [(e["type"], bool(e["object"]["metadata"].get("deletionTimestamp"))) for e in events]
    assert held.metadata.deletion_timestamp is not None and gone == 404
    return {"delete_status": resp.status_code, "held": True, "after_last_finalizer": gone, "events": seq}


def s08_09_apply_creates_and_a_noop_apply_changes_nothing(c: Cluster) -> Facts:
    w = Widgets(c)
    code1, first = w.apply("a", {"size": 1, "color": "red"}, "smi-bridge")
    rv = _rv(first)
    code2, second = w.apply("a", {"size": 1, "color": "red"}, "smi-bridge")
    events = _events(c, w.path(), resourceVersion=rv, timeoutSeconds="1")
    return {
        "create_status": code1,
        "managers": _managers(first),
        "owned": sorted(_owned(first, "smi-bridge")),
        "reapply_status": code2,
        "rv_unchanged": _rv(second) == rv,
        "events_after_noop": len(events),
        "generation": second["metadata"].get("generation"),
    }


def s10_apply_conflicts(c: Cluster) -> Facts:
    w = Widgets(c)
    w.apply("a", {"size": 1, "color": "red"}, "smi-bridge")
    other_diff, body = w.apply("a", {"size": 2}, "other")
    other_same, shared = w.apply("a", {"size": 1}, "other")
    ours_now, body2 = w.apply("a", {"size": 3, "color": "red"}, "smi-bridge")
    forced, after = w.apply("a", {"size": 3, "color": "red"}, "smi-bridge", force=True)
    # a human edit (an update, not an apply) takes the field; our apply then conflicts with it
    edit = c.request(
        "PATCH",
        w.path("a"),
        body={"spec": {"color": "blue"}},
        content_type=MERGE,
        params={"fieldManager": "kubectl-edit"},
    )
    ours_again, body3 = w.apply("a", {"size": 3, "color": "red"}, "smi-bridge")
    assert other_diff == 409 and forced == 200 and ours_again == 409
    return {
        "different_value": (other_diff, body.get("reason"), _cause_managers(body)),
        "same_value": (other_same, sorted(_owned(shared, "other"))),
        "ours_against_shared": (ours_now, _cause_managers(body2)),
        "forced": (forced, sorted(_owned(after, "other")), after["spec"]),
        "human_edit": edit.status_code,
        "after_human_edit": (ours_again, _cause_managers(body3)),
    }


def s11_removed_fields_go_and_others_stay(c: Cluster) -> Facts:
    w = Widgets(c)
    w.apply(
        "a",
        {"size": 1, "color": "red", "tags": ["x", "y"], "ports": [{"port": 80, "name": "web"}]},
        "smi-bridge",
    )
    w.apply("a", {"color": "red", "ports": [{"port": 81, "name": "admin"}]}, "other")
    _, merged = w.apply(
        "a",
        {"size": 1, "color": "red", "tags": ["x", "y"], "ports": [{"port": 80, "name": "web"}]},
        "smi-bridge",
    )
    _, after = w.apply("a", {"size": 1}, "smi-bridge")
    return {
        "ports_merged_by_key": sorted(p["port"] for p in merged["spec"]["ports"]),
        "after_dropping": {k: after["spec"][k] for k in sorted(after["spec"])},
    }


def s11c_undeclared_fields_are_owned_whole(c: Cluster) -> Facts:
    """Below ``x-kubernetes-preserve-unknown-fields`` a value is one field (how Istio CRDs are owned)."""
    w = Widgets(c)
    _, first = w.apply("a", {"extra": {"k": {"x": 1}, "j": [1]}}, "smi-bridge")
    code, body = w.apply("a", {"extra": {"k": {"y": 2}}}, "other")
    return {
        "owned": sorted(_owned(first, "smi-bridge")),
        "other_sets_a_nested_key": (code, _cause_managers(body)),
    }


def s11b_unknown_fields_are_pruned(c: Cluster) -> Facts:
    c.install_crds(crds("smi"))
    ns = c.namespace("pr")
    ts = {
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {"name": "s"},
        "spec": {"service": "web", "backends": [{"service": "v1", "weight": 1, "bogus": True}], "junk": 1},
    }
    resp = c.request("POST", f"/apis/split.smi-spec.io/v1alpha4/namespaces/{ns}/trafficsplits", body=ts)
    return {"status": resp.status_code, "spec": resp.json()["spec"]}


def s12_status_subresource_and_generation(c: Cluster) -> Facts:
    w = Widgets(c)
    body = w.body("a", {"size": 1})
    body["status"] = {"phase": "made-up"}
    created = c.request("POST", w.path(), body=body).json()
    status_on_create = created.get("status")
    gens = [created["metadata"]["generation"]]
    created["status"] = {"phase": "ignored"}
    created["metadata"]["labels"] = {"l": "1"}
    upd = c.request("PUT", w.path("a"), body=created).json()
    gens.append(upd["metadata"]["generation"])
    upd["spec"]["size"] = 2
    upd2 = c.request("PUT", w.path("a"), body=upd).json()
    gens.append(upd2["metadata"]["generation"])
    upd2["status"] = {"phase": "Ready"}
    upd2["spec"]["size"] = 99
    st = c.request("PUT", w.path("a", sub="status"), body=upd2).json()
    gens.append(st["metadata"]["generation"])
    return {
        "status_on_create": status_on_create,
        "status_after_main_update": upd.get("status"),
        "after_status_update": (st.get("status"), st["spec"]["size"]),
        "generations": gens,
    }


def s13_optimistic_concurrency(c: Cluster) -> Facts:
    w = Widgets(c)
    created = c.request("POST", w.path(), body=w.body("a", {"size": 1})).json()
    stale = json.loads(json.dumps(created))
    created["spec"]["size"] = 2
    ok = c.request("PUT", w.path("a"), body=created)
    stale["spec"]["size"] = 3
    conflict = c.request("PUT", w.path("a"), body=stale)
    no_rv = json.loads(json.dumps(stale))
    del no_rv["metadata"]["resourceVersion"]
    missing_rv = c.request("PUT", w.path("a"), body=no_rv)
    smp = c.request(
        "PATCH",
        w.path("a"),
        body={"spec": {"size": 4}},
        content_type="application/strategic-merge-patch+json",
    )
    merge_stale = c.request(
        "PATCH",
        w.path("a"),
        body={"metadata": {"resourceVersion": _rv(stale)}, "spec": {"size": 5}},
        content_type=MERGE,
    )
    return {
        "fresh_put": ok.status_code,
        "stale_put": (conflict.status_code, conflict.json().get("reason")),
        "put_without_rv": (missing_rv.status_code, missing_rv.json().get("reason")),
        "strategic_merge_on_cr": smp.status_code,
        "merge_patch_with_stale_rv": (merge_stale.status_code, merge_stale.json().get("reason")),
    }


def s14_leases(c: Cluster) -> Facts:
    ns = c.namespace("ls")
    coord = k8s.CoordinationV1Api(c.api())
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l"},
        "spec": {
            "holderIdentity": "a",
            "leaseDurationSeconds": 15,
            "renewTime": "2026-01-01T00:00:00.000000Z",
            "acquireTime": "2026-01-01T00:00:00.000000Z",
        },
    }
    created = c.request("POST", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases", body=lease)
    current = created.json()
    stale = json.loads(json.dumps(current))
    current["spec"]["renewTime"] = "2026-01-01T00:00:05.000000Z"
    renew = c.request("PUT", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/l", body=current)
    stale["spec"]["holderIdentity"] = "b"
    race = c.request("PUT", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/l", body=stale)
    bad = json.loads(json.dumps(renew.json()))
    bad["spec"]["renewTime"] = "2026-01-01T00:00:06+00:00"
    bad_time = c.request("PUT", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/l", body=bad)
    holder = coord.read_namespaced_lease("l", ns).spec.holder_identity
    return {
        "create": created.status_code,
        "renew": renew.status_code,
        "stale_renew": race.status_code,
        "holder": holder,
        "renew_time_without_micros": bad_time.status_code,
    }


def s15_events(c: Cluster) -> Facts:
    ns = c.namespace("ev")
    path = f"/apis/events.k8s.io/v1/namespaces/{ns}/events"
    regarding = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "namespace": ns}

    def ev(**over: Any) -> Obj:
        base = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": f"x.{uuid.uuid4().hex[:12]}"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "smi-bridge",
            "reportingInstance": "test",
            "action": "Reconcile",
            "reason": "Test",
            "regarding": regarding,
            "note": "hello",
            "type": "Warning",
        }
        base.update(over)
        return base

    good = c.request("POST", path, body=ev())
    no_micros = c.request("POST", path, body=ev(eventTime="2026-01-01T00:00:00+00:00"))
    v1_prefix = c.request("POST", path, body=ev(metadata={"generateName": "h1."}))
    core_prefix = c.request(
        "POST",
        f"/api/v1/namespaces/{ns}/events",
        body={
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": "h1."},
            "involvedObject": regarding,
            "reason": "Test",
            "message": "m",
            "type": "Normal",
        },
    )
    deprecated = c.request("POST", path, body=ev(deprecatedCount=3))
    name = good.json()["metadata"]["name"]
    as_core = c.raw.get(f"/api/v1/namespaces/{ns}/events/{name}").json()
    note_update = c.request("PATCH", f"{path}/{name}", body={"note": "changed"}, content_type=MERGE)
    series = c.request(
        "PATCH",
        f"{path}/{name}",
        content_type=MERGE,
        body={
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"},
            "metadata": {"annotations": {"a": "b"}},
        },
    )
    return {
        "created": good.status_code,
        "event_time_without_micros": no_micros.status_code,
        "events_v1_generate_name_with_dot": v1_prefix.status_code,
        "core_generate_name_with_dot": core_prefix.status_code,
        "deprecated_field_on_create": deprecated.status_code,
        "core_view": (
            as_core.get("message"),
            as_core.get("reportingComponent"),
            as_core["involvedObject"]["name"],
        ),
        "note_update": note_update.status_code,
        "series_update": (series.status_code, (series.json().get("series") or {}).get("count")),
    }


def s16_errors(c: Cluster) -> Facts:
    w = Widgets(c)
    missing_ns = c.request(
        "POST",
        f"/apis/{w.group}/v1/namespaces/no-such-ns/widgets",
        body={**w.body("a", {"size": 1}), "metadata": {"name": "a"}},
    )
    c.request("POST", w.path(), body=w.body("a", {"size": 1}))
    dup = c.request("POST", w.path(), body=w.body("a", {"size": 1}))
    invalid = c.request("POST", w.path(), body=w.body("b", {"size": "big"}))
    below = c.request("POST", w.path(), body=w.body("c", {"size": -1}))
    missing = c.raw.get(w.path("zzz"))
    delete_missing = c.request("DELETE", w.path("zzz"))
    return {
        "missing_namespace": (missing_ns.status_code, missing_ns.json().get("reason")),
        "duplicate": (dup.status_code, dup.json().get("reason")),
        "wrong_type": (
            invalid.status_code,
            invalid.json().get("reason"),
            [x.get("field") for x in invalid.json()["details"]["causes"]],
        ),
        "below_minimum": (below.status_code, [x.get("field") for x in below.json()["details"]["causes"]]),
        "get_missing": (missing.status_code, missing.json().get("reason")),
        "delete_missing": delete_missing.status_code,
    }


def s17_endpointslices(c: Cluster) -> Facts:
    versions = [v["version"] for v in c.raw.get("/apis/discovery.k8s.io").json()["versions"]]
    ns = c.namespace("es")
    version = versions[0]
    body = {
        "apiVersion": f"discovery.k8s.io/{version}",
        "kind": "EndpointSlice",
        "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.0.5"], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }
    created = c.request("POST", f"/apis/discovery.k8s.io/{version}/namespaces/{ns}/endpointslices", body=body)
    no_type = c.request(
        "POST",
        f"/apis/discovery.k8s.io/{version}/namespaces/{ns}/endpointslices",
        body={**body, "metadata": {"name": "web-2"}, "addressType": None},
    )
    listed = c.raw.get(
        f"/apis/discovery.k8s.io/{version}/namespaces/{ns}/endpointslices",
        params={"labelSelector": "kubernetes.io/service-name=web"},
    ).json()["items"]
    return {
        "versions": versions,
        "created": created.status_code,
        "address_type_required": no_type.status_code,
        "listed": [i["metadata"]["name"] for i in listed],
    }


def s18_owner_references_are_kept_but_not_collected(c: Cluster) -> Facts:
    ns = c.namespace("own")
    core = k8s.CoreV1Api(c.api())
    parent = core.create_namespaced_config_map(ns, {"metadata": {"name": "parent"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "parent", "uid": parent.metadata.uid}
    core.create_namespaced_config_map(ns, {"metadata": {"name": "child", "ownerReferences": [ref]}})
    core.delete_namespaced_config_map("parent", ns)
    time.sleep(1.0)  # a garbage collector would have acted by now; neither tier has one
    child = core.read_namespaced_config_map("child", ns)
    return {"owner_kept": [o.name for o in child.metadata.owner_references], "child_survives": True}


def s19_paging(c: Cluster) -> Facts:
    ns = c.namespace("pg")
    core = k8s.CoreV1Api(c.api())
    for i in range(5):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"m{i}"}})
    first = c.raw.get(f"/api/v1/namespaces/{ns}/configmaps", params={"limit": "2"}).json()
    names = [i["metadata"]["name"] for i in first["items"]]
    token = first["metadata"].get("continue")
    remaining = first["metadata"].get("remainingItemCount")
    while token:
        page = c.raw.get(
            f"/api/v1/namespaces/{ns}/configmaps", params={"limit": "2", "continue": token}
        ).json()
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
    return {"first_page": len(first["items"]), "remaining": remaining, "all": names}


SCENARIOS: dict[str, Callable[[Cluster], Facts]] = {
    f.__name__: f
    for f in (
        s01_discovery_served_versions,
        s02_list_then_watch_no_gap,
        s03_watch_ends_on_timeout,
        s04_expired_is_an_error_event_in_a_200_stream,
        s05_bookmarks_are_optional,
        s06_selector_watch_transitions,
        s07_finalizer_delete,
        s08_09_apply_creates_and_a_noop_apply_changes_nothing,
        s10_apply_conflicts,
        s11_removed_fields_go_and_others_stay,
        s11b_unknown_fields_are_pruned,
        s11c_undeclared_fields_are_owned_whole,
        s12_status_subresource_and_generation,
        s13_optimistic_concurrency,
        s14_leases,
        s15_events,
        s16_errors,
        s17_endpointslices,
        s18_owner_references_are_kept_but_not_collected,
        s19_paging,
    )
}
