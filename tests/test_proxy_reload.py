"""Hot reload and shutdown of smi-proxy: new configs are swapped in whole, bad ones are refused,
requests in flight finish on the config they started with, SIGTERM drains.
"""

from __future__ import annotations

import asyncio
import re
import signal
import threading
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from smi_bridge.verify import HTTPClient, LoopbackBed, ProxyProcess, ir_from_manifests

# This module's loopback ranges (other proxy test modules use others).
WEB = "127.0.80.10"
CATALOG = "127.0.8.20"

BASE = """
apiVersion: v1
kind: Service
metadata: {name: catalog, namespace: shop}
spec:
  clusterIP: 127.0.8.20
  selector: {app: catalog}
  ports: [{name: http, port: 8080, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: catalog-0, namespace: shop, labels: {app: catalog}}
spec: {serviceAccountName: catalog, containers: [{name: c, image: c}]}
status: {podIP: 127.0.80.20}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec: {serviceAccountName: web, containers: [{name: c, image: c}]}
status: {podIP: 127.0.80.10}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: everything, namespace: shop}
spec:
  matches: [{name: all, methods: ["*"]}]
"""

ALLOW_WEB = """
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: web-to-catalog, namespace: shop}
spec:
  destination: {kind: ServiceAccount, name: catalog, namespace: shop}
  sources: [{kind: ServiceAccount, name: web, namespace: shop}]
  rules: [{kind: HTTPRouteGroup, name: everything}]
"""

CLOSED = BASE
OPEN = BASE + ALLOW_WEB


def status_of(path: str = "/", headers: dict[str, str] | None = None) -> int:
    async def go() -> int:
        client = HTTPClient(CATALOG, 8080, source=WEB)
        try:
            return (await client.request("GET", path, headers or {})).status
        finally:
            await client.aclose()

    return asyncio.run(go())


def reloads(bed: LoopbackBed) -> dict[str, float]:
    _, text = bed.proxy.admin("/metrics")
    for family in text_string_to_metric_families(text):
        if family.name == "smi_proxy_config_reloads":
            return {s.labels["result"]: s.value for s in family.samples}
    return {}


def config_info(bed: LoopbackBed) -> dict[str, Any]:
    _, text = bed.proxy.admin("/metrics")
    for family in text_string_to_metric_families(text):
        if family.name == "smi_proxy_config_info":
            return dict(family.samples[0].labels)
    return {}


def test_sighup_reload_swaps_the_policy(tmp_path: Path) -> None:
    with LoopbackBed(ir_from_manifests(CLOSED), tmp_path) as bed:
        assert status_of() == 403
        bed.reconfigure(ir_from_manifests(OPEN))
        assert status_of() == 200
        assert reloads(bed) == {"success": 1.0, "failure": 0.0}
        info = config_info(bed)
        assert info["version"] == "2"
        _, body = bed.proxy.admin("/config")
        assert info["digest"] in body


def test_a_changed_config_file_is_picked_up_without_a_signal(tmp_path: Path) -> None:
    with LoopbackBed(ir_from_manifests(CLOSED), tmp_path, proxy_args=["--watch-interval", "0.1"]) as bed:
        assert status_of() == 403
        digest = bed.write_config(ir_from_manifests(OPEN))
        bed.wait_for_digest(digest)
        assert status_of() == 200


def test_an_invalid_config_is_rejected_and_the_last_good_one_keeps_serving(tmp_path: Path) -> None:
    with LoopbackBed(ir_from_manifests(OPEN), tmp_path) as bed:
        _, before = bed.proxy.admin("/config")
        text = bed.config.read_text()
        line = next(i for i, row in enumerate(text.splitlines(), 1) if row.strip().startswith("accessMode:"))
        bed.config.write_text(re.sub(r"accessMode: \w+", "accessMode: lenient", text))
        bed.proxy.signal(signal.SIGHUP)
        for _ in range(500):
            if reloads(bed).get("failure") == 1.0:
                break
            threading.Event().wait(0.02)
        assert reloads(bed) == {"success": 0.0, "failure": 1.0}
        assert f"{bed.config}:{line}: ProxyConfig smi-proxy: spec.accessMode:" in bed.proxy.log_text()
        assert bed.proxy.admin("/config")[1] == before
        assert status_of() == 200
        # Unparseable YAML is refused the same way.
        bed.config.write_text("spec: [\n")
        bed.proxy.signal(signal.SIGHUP)
        for _ in range(500):
            if reloads(bed).get("failure") == 2.0:
                break
            threading.Event().wait(0.02)
        assert reloads(bed)["failure"] == 2.0
        assert status_of() == 200


def test_a_request_in_flight_finishes_on_the_config_it_started_with(tmp_path: Path) -> None:
    with LoopbackBed(ir_from_manifests(OPEN), tmp_path) as bed:
        result: list[int] = []
        slow = threading.Thread(target=lambda: result.append(status_of("/slow", {"x-echo-delay": "1.5"})))
        slow.start()
        for _ in range(500):
            if any(s.path == "/slow" for s in bed.fleet.seen):
                break
            threading.Event().wait(0.01)
        bed.reconfigure(ir_from_manifests(CLOSED))
        assert status_of() == 403  # new requests see the new config at once
        slow.join(10)
        assert result == [200]  # the one that started before the reload was allowed to finish


def test_sigterm_drains_requests_in_flight_then_exits(tmp_path: Path) -> None:
    bed = LoopbackBed(ir_from_manifests(OPEN), tmp_path)
    with bed:
        result: list[int] = []
        slow = threading.Thread(target=lambda: result.append(status_of("/slow", {"x-echo-delay": "1.0"})))
        slow.start()
        for _ in range(500):
            if any(s.path == "/slow" for s in bed.fleet.seen):
                break
            threading.Event().wait(0.01)
        bed.proxy.signal(signal.SIGTERM)
        slow.join(10)
        assert result == [200]
        assert bed.proxy.process is not None
        assert bed.proxy.process.wait(10) == 0
        assert "draining" in bed.proxy.log_text()


def test_readiness_waits_until_every_listener_is_bound(tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET-1) is no local address: that listener cannot be bound.
    unbindable = CLOSED.replace("clusterIP: 127.0.8.20", "clusterIP: 192.0.2.1")
    bed = LoopbackBed(ir_from_manifests(unbindable), tmp_path)
    bed.fleet.start()
    proxy: ProxyProcess = bed.proxy
    try:
        proxy.start(wait_ready=False)
        assert proxy.admin("/readyz")[0] == 503
        assert proxy.admin("/healthz")[0] == 200
        bed.reconfigure(ir_from_manifests(CLOSED))  # waits for /readyz 200
        assert proxy.admin("/readyz")[0] == 200
        assert "cannot listen on 192.0.2.1:8080" in proxy.log_text()
    finally:
        proxy.stop()
        bed.fleet.stop()
