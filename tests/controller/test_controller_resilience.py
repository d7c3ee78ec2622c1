"""The controller when the API server misbehaves: 410s, closed and dropped watches, bookmarks, outages,
429 with Retry-After, 5xx, and broken SMI objects."""

from __future__ import annotations

import asyncio
import socket

import httpx

from smi_bridge.controller.testing.fakeapi import FakeKubeAPI, Fault
from tests.controller.cluster import Cluster
from tests.controller.harness import demo_docs, docs, install, off, put, running, settled, until

VS = ("networking.istio.io/v1", "virtualservices")

SPLIT = """
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {{name: bookstore-canary, namespace: bookstore}}
spec:
  service: bookstore
  backends:
  - {{service: bookstore-v1, weight: {a}}}
  - {{service: bookstore-v2, weight: {b}}}
"""


def _weights(fake: FakeKubeAPI) -> list[int]:
    vs = fake.get_object(*VS, "bookstore", "bookstore-canary")
    return [r["weight"] for r in (vs or {}).get("spec", {}).get("http", [{}])[0].get("route", [])]


def _setup(cluster: Cluster) -> FakeKubeAPI:
    install(cluster, "smi", "istio")
    put(cluster, demo_docs())
    assert cluster.fake is not None
    return cluster.fake


def test_a_410_relists_and_a_change_made_meanwhile_is_not_lost(fake: Cluster) -> None:
    api = _setup(fake)

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            lists = {k: i.lists for k, i in ctl.informers.items()}
            # watches cannot come back for a moment; history is forgotten; then the change
            slow = api.inject(Fault(status=0, delay=0.5, watch=True, times=None))
            api.expire_watches()
            put(fake, docs(SPLIT.format(a=60, b=40)))
            slow.times = 0
            await until(lambda: _weights(api) == [60, 40], what="change after 410")
            await until(
                lambda: all(ctl.informers[k].lists > n for k, n in lists.items()), what="every cache relisted"
            )

    asyncio.run(body())


def test_watches_resume_after_a_clean_end_and_after_a_dropped_connection(fake: Cluster) -> None:
    api = _setup(fake)

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            before = {k: (i.watches, i.lists) for k, i in ctl.informers.items()}
            api.end_watches()
            await until(
                lambda: all(i.watches > before[k][0] for k, i in ctl.informers.items()), what="re-watch"
            )
            await off(put, fake, docs(SPLIT.format(a=70, b=30)))
            await until(lambda: _weights(api) == [70, 30], what="change after a clean end")
            api.drop_watches()
            await off(put, fake, docs(SPLIT.format(a=80, b=20)))
            await until(lambda: _weights(api) == [80, 20], what="change after a dropped watch")
            # neither needed a relist: the watches resumed from their resourceVersion
            assert all(i.lists == before[k][1] for k, i in ctl.informers.items() if k in before)

    asyncio.run(body())


def test_bookmarks_move_the_resource_version_when_the_server_sends_them(fake: Cluster) -> None:
    api = _setup(fake)
    api.bookmark_interval = 0.1

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            split_inf = next(
                i for k, i in ctl.informers.items() if k[0] == "smi" and i.rt.kind == "TrafficSplit"
            )
            await off(
                fake.request,
                "POST",
                "/api/v1/namespaces/default/configmaps",
                body={"metadata": {"name": "unrelated"}},
            )
            target = str(api.resource_version)
            await until(lambda: split_inf.resource_version == target, what="bookmark")

    asyncio.run(body())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_api_at_start_is_retried_and_readiness_waits(tmp_path: object) -> None:
    api = FakeKubeAPI(port=_free_port())
    cluster = Cluster("fake", api.url, fake=api)
    _setup(cluster)  # the store is ready; the server is not listening yet

    async def body() -> None:
        async with running(cluster) as ctl:
            await until(lambda: bool(ctl.servers), what="probe server")
            port = next(s.port for s in ctl.servers if "/readyz" in s.routes)
            async with httpx.AsyncClient() as http:
                await until(
                    lambda: ctl.telemetry.errors.labels(what="discovery")._value.get() >= 2,
                    what="failed discovery attempts",
                )
                assert (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 503
                assert (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
                api.start()
                await settled(ctl)
                assert _weights(api) == [90, 10]
                assert (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200

    try:
        asyncio.run(body())
    finally:
        api.stop()
        cluster.close()


def test_an_outage_mid_run_turns_readiness_off_and_changes_arrive_after_it(fake: Cluster) -> None:
    api = _setup(fake)

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            assert ctl.ready
            api.pause()
            await until(lambda: not ctl.ready, what="readiness off during the outage")
            put(fake, docs(SPLIT.format(a=55, b=45)))  # changed while nobody could watch
            api.resume()
            await until(lambda: _weights(api) == [55, 45], what="change after the outage")
            await until(lambda: ctl.ready, what="ready again")

    asyncio.run(body())


def test_429_is_retried_no_sooner_than_retry_after(fake: Cluster) -> None:
    api = _setup(fake)
    api.inject(Fault(status=429, method="PATCH", path="virtualservices", retry_after=1, times=1))

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
        patches = [r for r in api.requests if r.method == "PATCH" and "virtualservices" in r.path]
        assert [r.status for r in patches] == [429, 201]
        assert patches[1].at - patches[0].at >= 1.0

    asyncio.run(body())


def test_server_errors_on_apply_are_retried_until_they_stop(fake: Cluster) -> None:
    api = _setup(fake)
    fault = api.inject(Fault(status=503, method="PATCH", path="virtualservices", times=6))

    async def body() -> None:
        async with running(fake) as ctl:
            await until(lambda: _weights(api) == [90, 10], what="apply after the 503s")
            assert fault.hits == 6
            assert ctl.telemetry.errors.labels(what="apply")._value.get() >= 1
            await settled(ctl)

    asyncio.run(body())


BROKEN = """
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: all-zero, namespace: bookstore}
spec:
  service: bookstore-v1
  backends:
  - {service: bookstore-v1, weight: 0}
  - {service: bookstore-v2, weight: 0}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: dangling, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore}
  rules:
  - {kind: HTTPRouteGroup, name: no-such-routes}
  sources:
  - {kind: ServiceAccount, name: bookbuyer, namespace: bookstore}
"""


def test_broken_smi_objects_get_events_and_everything_else_reconciles(fake: Cluster) -> None:
    api = _setup(fake)
    put(fake, docs(BROKEN))

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            assert _weights(api) == [90, 10]
            events = api.list_of("events.k8s.io/v1", "events", "bookstore")
            by_object: dict[str, list[str]] = {}
            for e in events:
                by_object.setdefault(e["regarding"]["name"], []).append(f"{e['reason']} {e['note']}")
            assert any("InvalidPolicy" in t and "SMB035" in t for t in by_object["all-zero"])
            assert any("InvalidPolicy" in t and "SMB030" in t for t in by_object["dangling"])
            assert all(e["type"] == "Warning" for e in events if e["reason"] == "InvalidPolicy")

    asyncio.run(body())
