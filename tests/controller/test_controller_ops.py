"""Operating the controller: Events, leader election, probes and metrics, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx

from smi_bridge.controller.testing.fakeapi import Fault
from tests.conftest import REPO
from tests.controller.cluster import Cluster
from tests.controller.harness import demo_docs, install, off, put, running, settled, until

SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MICROTIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
VS = ("networking.istio.io/v1", "virtualservices")


def _setup(cluster: Cluster) -> None:
    install(cluster, "smi", "istio")
    put(cluster, demo_docs())


def test_events_are_valid_and_told_once_per_version_of_the_object(fake: Cluster) -> None:
    _setup(fake)
    assert fake.fake is not None
    api = fake.fake

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
            events = api.list_of("events.k8s.io/v1", "events", "bookstore")
            assert events
            for e in events:
                assert SUBDOMAIN.match(e["metadata"]["name"]) and len(e["metadata"]["name"]) <= 253
                assert MICROTIME.match(e["eventTime"])
                assert e["reportingController"] == "smi-bridge" and e["action"] in ("Translate", "Apply")
            lossy = [e for e in events if e["reason"] == "LossyTranslation"]
            assert lossy and lossy[0]["type"] == "Warning" and lossy[0]["note"].startswith("[SMT")
            ref = lossy[0]["regarding"]
            about = api.list_of(ref["apiVersion"], ref["kind"].lower() + "s", "bookstore")
            assert ref["uid"] in {o["metadata"]["uid"] for o in about}
            mark = api.mark()
            ctl.reconciler.mark_all()
            await settled(ctl)
            assert api.writes(mark) == []
            # an edit that does not fix the finding: the same series counts up, no new Event
            await off(
                api.patch_object,
                ref["apiVersion"],
                ref["kind"],
                "bookstore",
                ref["name"],
                {"metadata": {"labels": {"touched": "yes"}}},
            )
            await until(
                lambda: any(
                    (e.get("series") or {}).get("count") == 2
                    for e in api.list_of("events.k8s.io/v1", "events", "bookstore")
                    if e["reason"] == "LossyTranslation"
                ),
                what="series count 2",
            )
            await settled(ctl)
            after = [
                e
                for e in api.list_of("events.k8s.io/v1", "events", "bookstore")
                if e["reason"] == "LossyTranslation"
            ]
            assert len(after) == len(lossy)

    asyncio.run(body())


def test_a_restarted_controller_does_not_repeat_its_events(fake: Cluster) -> None:
    _setup(fake)
    assert fake.fake is not None

    async def body() -> None:
        async with running(fake) as ctl:
            await settled(ctl)
        mark = fake.fake.mark()
        async with running(fake) as ctl:
            await settled(ctl)
            assert fake.fake.writes(mark) == []

    asyncio.run(body())


def test_events_are_rate_limited_per_object(fake: Cluster) -> None:
    _setup(fake)
    assert fake.fake is not None

    async def body() -> None:
        async with running(fake, event_burst=1, event_refill_seconds=3600) as ctl:
            await settled(ctl)
            events = fake.fake.list_of("events.k8s.io/v1", "events", "bookstore")
            per_object: dict[str, int] = {}
            for e in events:
                per_object[e["regarding"]["uid"]] = per_object.get(e["regarding"]["uid"], 0) + 1
            assert per_object and max(per_object.values()) == 1
            assert ctl.telemetry.events_dropped.labels(why="rate-limit")._value.get() >= 1

    asyncio.run(body())


def test_only_the_lease_holder_writes_and_the_other_takes_over_when_it_stops(fake: Cluster) -> None:
    _setup(fake)
    assert fake.fake is not None
    api = fake.fake

    def holder() -> str | None:
        lease = api.get_object("coordination.k8s.io/v1", "leases", "default", "smi-bridge-istio")
        return (lease or {}).get("spec", {}).get("holderIdentity")

    async def body() -> None:
        async with running(fake, leader_elect=True, identity="first") as one:
            await until(lambda: one.leading, what="first leads")
            async with running(fake, leader_elect=True, identity="second") as two:
                await settled(one)
                await until(lambda: two.ready, what="second ready (leader known)")
                assert holder() == "first" and not two.leading
                assert api.get_object(*VS, "bookstore", "bookstore-canary") is not None
                assert two.reconciler.passes == 0
                one.stop()
                await until(lambda: two.leading, timeout=10, what="second takes over")
                await settled(two)
                assert holder() == "second"
                lease = api.get_object("coordination.k8s.io/v1", "leases", "default", "smi-bridge-istio")
                assert lease is not None and lease["spec"]["leaseTransitions"] >= 1

    asyncio.run(body())


def test_the_leader_steps_down_when_it_cannot_renew(fake: Cluster) -> None:
    _setup(fake)
    assert fake.fake is not None

    async def body() -> None:
        async with running(fake, leader_elect=True, identity="only") as ctl:
            await settled(ctl)
            fault = fake.fake.inject(Fault(status=500, method="PUT", path="/leases/", times=None))
            await until(lambda: not ctl.leading, timeout=10, what="step down")
            assert ctl.reconciler.leading is False and ctl.recorder.enabled is False
            fault.times = 0
            await until(lambda: ctl.leading, timeout=10, what="leads again")

    asyncio.run(body())


def test_probes_and_metrics(fake: Cluster) -> None:
    _setup(fake)

    async def body() -> None:
        async with running(fake, metrics_addr="127.0.0.1:0", health_addr="127.0.0.1:0") as ctl:
            await until(lambda: len(ctl.servers) == 2, what="probe servers")
            health = next(s.port for s in ctl.servers if "/readyz" in s.routes)
            metrics = next(s.port for s in ctl.servers if "/metrics" in s.routes)
            await settled(ctl)
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"http://127.0.0.1:{health}/healthz")).text == "ok\n"
                assert (await http.get(f"http://127.0.0.1:{health}/readyz")).status_code == 200
                assert (await http.get(f"http://127.0.0.1:{health}/metrics")).status_code == 404
                text = (await http.get(f"http://127.0.0.1:{metrics}/metrics")).text
            for name in (
                "smi_bridge_controller_reconciles_total",
                "smi_bridge_controller_reconcile_duration_seconds_bucket",
                "smi_bridge_controller_lossy_translations",
                "smi_bridge_controller_writes_total",
                "smi_bridge_controller_events_total",
            ):
                assert name in text, name
            assert 'smi_bridge_controller_managed_objects{kind="VirtualService"} 1.0' in text
            assert 'smi_bridge_controller_managed_objects{kind="AuthorizationPolicy"} 2.0' in text
            assert "smi_bridge_controller_ready 1.0" in text

    asyncio.run(body())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_stops_the_controller_process_cleanly_and_releases_the_lease(fake: Cluster) -> None:
    _setup(fake)
    assert fake.fake is not None
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "smi_bridge.controller",
        "--backend",
        "istio",
        "--kubeconfig",
        str(fake.kubeconfig()),
        "--leader-elect",
        "--leader-election-namespace",
        "default",
        "--identity",
        "proc",
        "--metrics-addr",
        "0",
        "--health-addr",
        f"127.0.0.1:{port}",
        "--discovery-interval",
        "1",
        "--lease-duration",
        "3",
        "--renew-deadline",
        "2",
        "--retry-period",
        "0.5",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("controller process never became ready")
        fake.wait_for(
            lambda: fake.fake.get_object(*VS, "bookstore", "bookstore-canary") if fake.fake else None,
            what="output applied by the process",
        )
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
        code = proc.returncode
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 0, output
    assert "Traceback" not in output, output
    lease = fake.fake.get_object("coordination.k8s.io/v1", "leases", "default", "smi-bridge-istio")
    assert lease is not None and not lease["spec"].get("holderIdentity")
