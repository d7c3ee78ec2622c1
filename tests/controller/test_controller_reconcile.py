"""The controller against the fake API server: what it applies, what it leaves alone, what it deletes."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from backends.base import Options
from smi_bridge.controller import desired as d
from smi_bridge.controller.testing.fakeapi import Fault
from smi_bridge.translate import translate
from tests.controller.cluster import Cluster
from tests.controller.harness import demo_docs, docs, fixture_path, install, off, put, running, settled, until

Obj = dict[str, Any]
VS = ("networking.istio.io/v1", "virtualservices")
AP = ("security.istio.io/v1", "authorizationpolicies")


def _strip_controller_additions(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    md = out["metadata"]
    for k in (
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "generation",
        "managedFields",
        "ownerReferences",
    ):
        md.pop(k, None)
    md.get("annotations", {}).pop(d.HASH_ANNOTATION, None)
    out.pop("status", None)
    return out


def _live(fake: Cluster, api: tuple[str, str], ns: str | None = None) -> list[Obj]:
    assert fake.fake is not None
    return fake.fake.list_of(api[0], api[1], ns)


SPLIT_V2 = """
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: bookstore-canary, namespace: bookstore}
spec:
  service: bookstore
  backends:
  - {service: bookstore-v1, weight: 50}
  - {service: bookstore-v2, weight: 50}
"""


@pytest.mark.parametrize("backend", ["istio", "linkerd", "consul", "gateway-api"])
def test_applied_objects_are_what_translate_emits(fake: Cluster, backend: str) -> None:
    install(fake, "smi", backend)
    put(fake, demo_docs())
    expected = translate([fixture_path("demo", "bookstore.yaml")], [backend], Options()).outputs[0].objects
    assert fake.fake is not None

    async def body() -> None:
        async with running(fake, backend) as ctl:
            await settled(ctl)
            want = [o for o in expected if ctl.reconciler.discovery.find(o["apiVersion"], o["kind"])]
            assert want, "none of the emitted kinds is served by the installed CRDs"
            for obj in want:
                rt = ctl.reconciler.discovery.find(obj["apiVersion"], obj["kind"])
                assert rt is not None
                live = fake.fake.get_object(
                    obj["apiVersion"], rt.plural, obj["metadata"].get("namespace"), obj["metadata"]["name"]
                )
                assert live is not None, f"{obj['kind']} {obj['metadata']['name']} was not applied"
                assert _strip_controller_additions(live) == obj

    asyncio.run(body())


def test_converged_controller_sends_no_writes_even_after_relists_and_full_passes(fake: Cluster) -> None:
    install(fake, "smi", "istio")
    put(fake, demo_docs())
    assert fake.fake is not None
    api = fake.fake

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            mark = api.mark()
            ctl.reconciler.mark_all()
            await settled(ctl)
            api.drop_watches()
            await until(lambda: all(i.watches >= 2 for i in ctl.informers.values()), what="re-watch")
            api.expire_watches()
            await until(lambda: all(i.lists >= 2 for i in ctl.informers.values()), what="relist after 410")
            await settled(ctl)
            assert [(w.method, w.path) for w in api.writes(mark)] == []

    asyncio.run(body())


def test_a_weight_change_reaches_the_virtual_service(fake: Cluster) -> None:
    install(fake, "smi", "istio")
    put(fake, demo_docs())
    assert fake.fake is not None

    def weights() -> list[int]:
        vs = fake.fake.get_object(*VS, "bookstore", "bookstore-canary") if fake.fake else None
        return [r["weight"] for r in (vs or {}).get("spec", {}).get("http", [{}])[0].get("route", [])]

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            assert weights() == [90, 10]
            mark = fake.fake.mark()
            put(fake, docs(SPLIT_V2))
            await until(lambda: weights() == [50, 50], what="new weights")
            await settled(ctl)
            writes = [(w.method, w.path) for w in fake.fake.writes(mark) if not w.path.endswith("/events")]
            assert writes == [
                (
                    "PATCH",
                    "/apis/networking.istio.io/v1/namespaces/bookstore/virtualservices/bookstore-canary",
                )
            ]

    asyncio.run(body())


def test_outputs_no_longer_emitted_are_deleted_and_foreign_objects_never(fake: Cluster) -> None:
    install(fake, "smi", "istio")
    put(fake, demo_docs())
    assert fake.fake is not None
    foreign = [
        # our label but no generator annotation, and neither: both must survive every prune
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {
                "name": "hand-made",
                "namespace": "bookstore",
                "labels": {"app.kubernetes.io/managed-by": "smi-bridge"},
            },
            "spec": {"hosts": ["x"]},
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "other-tool", "namespace": "bookstore"},
            "spec": {"hosts": ["y"]},
        },
    ]
    put(fake, foreign)

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            assert fake.fake.get_object(*VS, "bookstore", "bookstore-canary") is not None
            await off(
                fake.fake.delete_object,
                "split.smi-spec.io/v1alpha4",
                "TrafficSplit",
                "bookstore",
                "bookstore-canary",
            )
            await until(
                lambda: fake.fake.get_object(*VS, "bookstore", "bookstore-canary") is None, what="prune"
            )
            await settled(ctl)
        names = sorted(o["metadata"]["name"] for o in _live(fake, VS, "bookstore"))
        assert names == ["hand-made", "other-tool"]

    asyncio.run(body())


def test_a_restarted_controller_prunes_what_it_owns_and_rewrites_nothing(fake: Cluster) -> None:
    install(fake, "smi", "istio")
    put(fake, demo_docs())
    assert fake.fake is not None

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
        # while it is down, the split goes away
        fake.fake.delete_object("split.smi-spec.io/v1alpha4", "TrafficSplit", "bookstore", "bookstore-canary")
        mark = fake.fake.mark()
        async with running(fake) as ctl:
            await settled(ctl)
            writes = [(w.method, w.path) for w in fake.fake.writes(mark) if "/events" not in w.path]
        assert writes == [
            ("DELETE", "/apis/networking.istio.io/v1/namespaces/bookstore/virtualservices/bookstore-canary")
        ]

    asyncio.run(body())


def test_an_object_of_the_same_name_not_made_by_smi_bridge_is_left_alone(fake: Cluster) -> None:
    install(fake, "smi", "istio")
    put(fake, demo_docs())
    assert fake.fake is not None
    theirs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "bookstore-canary", "namespace": "bookstore"},
        "spec": {"hosts": ["mine"]},
    }
    put(fake, [theirs])

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            live = fake.fake.get_object(*VS, "bookstore", "bookstore-canary")
            assert live is not None and live["spec"] == {"hosts": ["mine"]}
            assert "labels" not in live["metadata"]
            reasons = {e["reason"] for e in fake.fake.list_of("events.k8s.io/v1", "events", "bookstore")}
            assert "NotOwned" in reasons

    asyncio.run(body())


def test_conflict_on_an_object_smi_bridge_never_applied_is_an_event_not_a_force(fake: Cluster) -> None:
    """`smi-bridge translate | kubectl apply` output carries our label; the controller must not seize it."""
    install(fake, "smi", "istio")
    put(fake, demo_docs())
    assert fake.fake is not None
    expected = translate([fixture_path("demo", "bookstore.yaml")], ["istio"], Options()).outputs[0].objects
    vs = copy.deepcopy(next(o for o in expected if o["kind"] == "VirtualService"))
    vs["spec"]["http"][0]["route"][0]["weight"] = 70
    vs["spec"]["http"][0]["route"][1]["weight"] = 30
    fake.fake.put_object(vs)  # written by another manager (an update)

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            live = fake.fake.get_object(*VS, "bookstore", "bookstore-canary")
            assert live is not None
            assert [r["weight"] for r in live["spec"]["http"][0]["route"]] == [70, 30]
            events = fake.fake.list_of("events.k8s.io/v1", "events", "bookstore")
            conflicts = [e for e in events if e["reason"] == "ApplyConflict"]
            assert conflicts and conflicts[0]["type"] == "Warning"
            assert conflicts[0]["regarding"]["kind"] == "TrafficSplit"
            assert ".spec.http" in conflicts[0]["note"]

    asyncio.run(body())


def test_a_human_edit_of_an_owned_output_is_restored_with_a_normal_event(fake: Cluster) -> None:
    install(fake, "smi", "istio")
    put(fake, demo_docs())
    assert fake.fake is not None

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            await off(
                fake.fake.patch_object,
                "networking.istio.io/v1",
                "VirtualService",
                "bookstore",
                "bookstore-canary",
                {"spec": {"hosts": ["hijacked"]}},
                manager="kubectl-edit",
            )

            def restored() -> bool:
                live = fake.fake.get_object(*VS, "bookstore", "bookstore-canary") if fake.fake else None
                return bool(live) and live["spec"]["hosts"] != ["hijacked"]

            await until(restored, what="restore")
            await settled(ctl)
            events = fake.fake.list_of("events.k8s.io/v1", "events", "bookstore")
            assert any(e["reason"] == "OwnershipRestored" and e["type"] == "Normal" for e in events)

    asyncio.run(body())


def test_skip_on_an_smi_object_freezes_its_outputs_and_skip_on_an_output_is_respected(fake: Cluster) -> None:
    install(fake, "smi", "istio")
    put(fake, demo_docs())
    assert fake.fake is not None

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            frozen = fake.fake.get_object(*VS, "bookstore", "bookstore-canary")
            skip = {"metadata": {"annotations": {d.SKIP_ANNOTATION: "true"}}}
            await off(
                fake.fake.patch_object,
                "split.smi-spec.io/v1alpha4",
                "TrafficSplit",
                "bookstore",
                "bookstore-canary",
                skip,
            )
            await settled(ctl)
            await off(
                put,
                fake,
                docs(
                    SPLIT_V2.replace("metadata: {", "metadata: {annotations: {smi-bridge.io/skip: 'true'}, ")
                ),
            )
            await settled(ctl)
            assert fake.fake.get_object(*VS, "bookstore", "bookstore-canary") == frozen
            # an output marked skip is neither updated nor deleted
            await off(
                fake.fake.patch_object,
                "security.istio.io/v1",
                "AuthorizationPolicy",
                "bookstore",
                "bookbuyer-to-bookstore",
                {**skip, "spec": {"action": "AUDIT"}},
                manager="ops",
            )
            await off(
                fake.fake.delete_object,
                "access.smi-spec.io/v1alpha3",
                "TrafficTarget",
                "bookstore",
                "bookbuyer-to-bookstore",
            )
            await settled(ctl)
            ap = fake.fake.get_object(*AP, "bookstore", "bookbuyer-to-bookstore")
            assert ap is not None and ap["spec"]["action"] == "AUDIT"

    asyncio.run(body())


CROSS = """
apiVersion: v1
kind: Namespace
metadata: {name: web}
---
apiVersion: v1
kind: Namespace
metadata: {name: policy}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: web, labels: {app: web}}
spec: {serviceAccountName: web, containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
status: {podIP: 10.0.0.5}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: routes, namespace: policy}
spec:
  matches:
  - {name: all, pathRegex: "/.*"}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: to-web, namespace: policy}
spec:
  destination: {kind: ServiceAccount, name: web, namespace: web}
  rules:
  - {kind: HTTPRouteGroup, name: routes}
  sources:
  - {kind: ServiceAccount, name: client, namespace: policy}
"""


def test_cross_namespace_outputs_get_a_finalizer_that_cleans_up_on_delete(fake: Cluster) -> None:
    install(fake, "smi", "istio")
    put(fake, docs(CROSS))
    assert fake.fake is not None
    tt = ("access.smi-spec.io/v1alpha3", "traffictargets")

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            in_web = _live(fake, AP, "web")
            assert in_web and all(not o["metadata"].get("ownerReferences") for o in in_web)
            target = fake.fake.get_object(*tt, "policy", "to-web")
            assert target is not None and d.FINALIZER in target["metadata"]["finalizers"]
            await off(
                fake.fake.delete_object, "access.smi-spec.io/v1alpha3", "TrafficTarget", "policy", "to-web"
            )
            await until(
                lambda: fake.fake.get_object(*tt, "policy", "to-web") is None, what="finalizer removal"
            )
            left = _live(fake, AP, "web")
            # What the target produced is gone; enforce mode keeps the namespace's allow-nothing
            # policy, which stands for web's workloads, not for the deleted target.
            from_target = [
                o
                for o in left
                if "TrafficTarget/policy/to-web"
                in o["metadata"]["annotations"].get("smi-bridge.io/source", "")
            ]
            assert from_target == []
            assert [o["metadata"]["name"] for o in left] == ["smi-bridge-deny-by-default"]

    asyncio.run(body())


def test_owner_references_point_at_sources_in_the_same_namespace(fake: Cluster) -> None:
    install(fake, "smi", "istio")
    put(fake, demo_docs())
    assert fake.fake is not None

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
        split = fake.fake.get_object(
            "split.smi-spec.io/v1alpha4", "trafficsplits", "bookstore", "bookstore-canary"
        )
        vs = fake.fake.get_object(*VS, "bookstore", "bookstore-canary")
        assert split is not None and vs is not None
        assert vs["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "split.smi-spec.io/v1alpha4",
                "kind": "TrafficSplit",
                "name": "bookstore-canary",
                "uid": split["metadata"]["uid"],
            }
        ]
        assert d.FINALIZER not in (split["metadata"].get("finalizers") or [])

    asyncio.run(body())


def test_outputs_outside_the_watched_namespaces_are_reported_not_written(fake: Cluster) -> None:
    install(fake, "smi", "istio")
    put(fake, docs(CROSS))
    assert fake.fake is not None

    async def body() -> None:
        async with running(fake, namespaces=("policy",)) as ctl:
            await settled(ctl)
            assert _live(fake, AP, "web") == []
            events = fake.fake.list_of("events.k8s.io/v1", "events", "policy")
            assert any(e["reason"] == "OutOfScope" for e in events)

    asyncio.run(body())


def test_a_missing_target_crd_is_reported_on_the_source(fake: Cluster) -> None:
    install(fake, "smi")  # no Istio CRDs
    put(fake, demo_docs())
    assert fake.fake is not None

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            events = fake.fake.list_of("events.k8s.io/v1", "events", "bookstore")
            missing = [e for e in events if e["reason"] == "TargetKindMissing"]
            assert missing and all(e["type"] == "Warning" for e in missing)
            assert any(
                "VirtualService" in e["note"] and e["regarding"]["kind"] == "TrafficSplit" for e in missing
            )

    asyncio.run(body())


def test_crds_installed_after_start_are_discovered_and_reconciled(fake: Cluster) -> None:
    put(fake, [o for o in demo_docs() if "smi-spec.io" not in o["apiVersion"]])
    assert fake.fake is not None

    async def body() -> None:
        async with running(fake) as ctl:
            await until(lambda: ctl.ready, what="ready without SMI CRDs")
            assert not any(k[0] == "smi" for k in ctl.informers)
            await off(install, fake, "smi", "istio")
            await off(put, fake, [o for o in demo_docs() if "smi-spec.io" in o["apiVersion"]])
            await until(
                lambda: fake.fake.get_object(*VS, "bookstore", "bookstore-canary") is not None,
                what="output after CRDs appeared",
            )
            # and a CRD going away takes its objects, and so our outputs, with it
            await off(
                fake.fake.delete_object,
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "trafficsplits.split.smi-spec.io",
            )
            await until(
                lambda: fake.fake.get_object(*VS, "bookstore", "bookstore-canary") is None,
                what="prune after CRD removal",
            )

    asyncio.run(body())


LINKERD_SMI_SPLIT = """
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: bookstore-canary, namespace: bookstore}
spec:
  service: bookstore
  backends:
  - {service: bookstore-v1, weight: 75}
  - {service: bookstore-v2, weight: 25}
"""


def test_with_several_served_smi_versions_one_informer_reads_the_newest_known(fake: Cluster) -> None:
    install(fake, "smi-linkerd", "istio")
    put(
        fake, [o for o in demo_docs() if o["kind"] != "TrafficSplit" and "smi-spec.io" not in o["apiVersion"]]
    )
    put(fake, docs(LINKERD_SMI_SPLIT))
    assert fake.fake is not None

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            split_informers = [
                i for k, i in ctl.informers.items() if k[0] == "smi" and i.rt.kind == "TrafficSplit"
            ]
            assert [i.rt.version for i in split_informers] == ["v1alpha2"]
            vs = fake.fake.get_object(*VS, "bookstore", "bookstore-canary")
            assert vs is not None
            assert [r["weight"] for r in vs["spec"]["http"][0]["route"]] == [75, 25]

    asyncio.run(body())


def test_pod_status_churn_does_not_rebuild_but_a_new_pod_ip_does(fake: Cluster) -> None:
    install(fake, "smi", "istio")
    put(fake, demo_docs())
    assert fake.fake is not None
    pod = next(o for o in demo_docs() if o["kind"] == "Pod")
    name, ns = pod["metadata"]["name"], pod["metadata"]["namespace"]

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            before = ctl.reconciler.parse.parses
            churn = {**pod, "status": {**pod["status"], "conditions": [{"type": "Ready", "status": "True"}]}}
            await off(put, fake, [churn])
            await until(
                lambda: (
                    ctl.informers
                    and all(
                        (i.get(ns, name) or {}).get("status", {}).get("conditions")
                        for k, i in ctl.informers.items()
                        if k[0] == "inventory" and i.rt.kind == "Pod"
                    )
                ),
                what="pod event",
            )
            await settled(ctl)
            assert not ctl.reconciler.dirty_ns and ctl.reconciler.parse.parses == before + 1
            passes = ctl.reconciler.passes
            moved = {**pod, "status": {**pod["status"], "podIP": "127.0.10.99"}}
            await off(put, fake, [moved])
            await until(lambda: ctl.reconciler.passes > passes, what="rebuild after the pod IP moved")

    asyncio.run(body())


NAMED_PORT = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: bookstore}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: web}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: bookstore, labels: {app: web}}
spec: {serviceAccountName: web, containers: [{name: c, image: x}]}
status: {podIP: 10.0.0.5}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: routes, namespace: bookstore}
spec:
  matches:
  - {name: all, pathRegex: "/.*"}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: to-web, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: web, namespace: bookstore}
  rules:
  - {kind: HTTPRouteGroup, name: routes}
  sources:
  - {kind: ServiceAccount, name: client, namespace: bookstore}
"""


@pytest.mark.parametrize("bed", ["fake", "fake_120"])
def test_endpointslices_resolve_named_ports_at_whichever_version_is_served(
    bed: str, request: pytest.FixtureRequest
) -> None:
    """discovery.k8s.io/v1 on current servers, v1beta1 only on 1.20: the controller reads whichever there is."""
    cluster: Cluster = request.getfixturevalue(bed)
    install(cluster, "smi", "linkerd")
    put(
        cluster,
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bookstore"}}, *docs(NAMED_PORT)],
    )
    assert cluster.fake is not None
    api = cluster.fake
    version = "v1" if bed == "fake" else "v1beta1"
    servers = ("policy.linkerd.io/v1beta3", "servers")
    slice_ = {
        "apiVersion": f"discovery.k8s.io/{version}",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "web-abc",
            "namespace": "bookstore",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": ["10.0.0.5"],
                "conditions": {"ready": True},
                "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "bookstore"},
            }
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }

    async def body() -> None:
        async with running(cluster, "linkerd") as ctl:
            await settled(ctl)
            assert [i.rt.version for k, i in ctl.informers.items() if i.rt.kind == "EndpointSlice"] == [
                version
            ]
            assert [o["metadata"]["name"] for o in api.list_of(*servers, "bookstore")] == ["web-80"]
            await off(put, cluster, [slice_])
            await until(
                lambda: [o["metadata"]["name"] for o in api.list_of(*servers, "bookstore")] == ["web-8080"],
                what="Server on the port the EndpointSlice names",
            )

    asyncio.run(body())


def test_a_stale_finalizer_patch_is_read_again_and_retried(fake: Cluster) -> None:
    install(fake, "smi", "istio")
    put(fake, docs(CROSS))
    assert fake.fake is not None
    fault = fake.fake.inject(Fault(status=409, method="PATCH", path="/traffictargets/to-web", times=1))

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
        target = fake.fake.get_object("access.smi-spec.io/v1alpha3", "traffictargets", "policy", "to-web")
        assert fault.hits == 1
        assert target is not None and target["metadata"]["finalizers"] == [d.FINALIZER]
        reads = [
            r for r in fake.fake.requests if r.method == "GET" and r.path.endswith("/traffictargets/to-web")
        ]
        assert reads, "the 409 must be followed by a fresh read"

    asyncio.run(body())


def test_a_rejected_output_is_reported_and_the_rest_applied(fake: Cluster) -> None:
    install(fake, "smi", "istio")
    put(fake, demo_docs())
    assert fake.fake is not None
    fake.fake.inject(Fault(status=403, method="PATCH", path="/virtualservices/", times=None))

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            assert fake.fake.get_object(*VS, "bookstore", "bookstore-canary") is None
            assert len(_live(fake, AP, "bookstore")) == 2
            events = fake.fake.list_of("events.k8s.io/v1", "events", "bookstore")
            rejected = [e for e in events if e["reason"] == "ApplyRejected"]
            assert rejected and rejected[0]["regarding"]["kind"] == "TrafficSplit"

    asyncio.run(body())
