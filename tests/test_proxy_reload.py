"""Hot reload and shutdown of smi-proxy: new configs are swapped in whole, bad ones are refused,
requests in flight finish on the config they started with, SIGTERM drains.
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smi_bridge.verify import HTTPClient, LoopbackBed, ProxyProcess, ir_from_manifests
from tests.proxybed import ANY_METHOD, documents, fetch, loopback_bed, metric_samples, pod, service, web_to

# This module's loopback ranges (other proxy test modules use others).
WEB = "127.0.80.10"
CATALOG = "127.0.8.20"


def manifests(*, web_allowed: bool, catalog_ip: str = CATALOG) -> str:
    """catalog and a caller web; ``web_allowed`` adds the TrafficTarget that lets web in."""
    return documents(
        service("catalog", catalog_ip, {"app": "catalog"}),
        pod("catalog-0", "127.0.80.20", {"app": "catalog"}),
        pod("web-0", WEB, {"app": "web"}),
        ANY_METHOD,
        *([web_to("catalog")] if web_allowed else []),
    )


CLOSED = manifests(web_allowed=False)
OPEN = manifests(web_allowed=True)


def status_of(path: str = "/", headers: dict[str, str] | None = None) -> int:
    (response,) = fetch(HTTPClient(CATALOG, 8080, source=WEB), method="GET", path=path, headers=headers or {})
    return response.status


def reloads(bed: LoopbackBed) -> dict[str, float]:
    return {s.labels["result"]: s.value for s in metric_samples(bed, "smi_proxy_config_reloads")}


def config_info(bed: LoopbackBed) -> dict[str, Any]:
    info = metric_samples(bed, "smi_proxy_config_info")
    return dict(info[0].labels) if info else {}


def wait_until(condition: Callable[[], bool], pause: float) -> None:
    """Check ``condition`` up to 500 times, ``pause`` seconds apart, until it holds; the caller
    asserts what it needs afterwards."""
    for _ in range(500):
        if condition():
            return
        threading.Event().wait(pause)


def start_slow_request(bed: LoopbackBed, delay: str) -> tuple[threading.Thread, list[int]]:
    """GET /slow, answered after ``delay`` seconds, on a thread that puts its status in the list;
    returns once the upstream has the request."""
    result: list[int] = []
    slow = threading.Thread(target=lambda: result.append(status_of("/slow", {"x-echo-delay": delay})))
    slow.start()
    wait_until(lambda: any(s.path == "/slow" for s in bed.fleet.seen), 0.01)
    return slow, result


def test_sighup_reload_swaps_the_policy(tmp_path: Path) -> None:
    with loopback_bed(CLOSED, tmp_path) as bed:
        assert status_of() == 403
        bed.reconfigure(ir_from_manifests(OPEN))
        assert status_of() == 200
        assert reloads(bed) == {"success": 1.0, "failure": 0.0}
        info = config_info(bed)
        assert info["version"] == "2"
        _, body = bed.proxy.admin("/config")
        assert info["digest"] in body


def test_a_changed_config_file_is_picked_up_without_a_signal(tmp_path: Path) -> None:
    with loopback_bed(CLOSED, tmp_path, proxy_args=["--watch-interval", "0.1"]) as bed:
        assert status_of() == 403
        digest = bed.write_config(ir_from_manifests(OPEN))
        bed.wait_for_digest(digest)
        assert status_of() == 200


def test_an_invalid_config_is_rejected_and_the_last_good_one_keeps_serving(tmp_path: Path) -> None:
    with loopback_bed(OPEN, tmp_path) as bed:
        _, before = bed.proxy.admin("/config")
        text = bed.config.read_text()
        line = next(i for i, row in enumerate(text.splitlines(), 1) if row.strip().startswith("accessMode:"))
        bed.config.write_text(re.sub(r"accessMode: \w+", "accessMode: lenient", text))
        bed.proxy.signal(signal.SIGHUP)
        wait_until(lambda: reloads(bed).get("failure") == 1.0, 0.02)
        assert reloads(bed) == {"success": 0.0, "failure": 1.0}
        assert f"{bed.config}:{line}: ProxyConfig smi-proxy: spec.accessMode:" in bed.proxy.log_text()
        assert bed.proxy.admin("/config")[1] == before
        assert status_of() == 200
        # Unparseable YAML is refused the same way.
        bed.config.write_text("spec: [\n")
        bed.proxy.signal(signal.SIGHUP)
        wait_until(lambda: reloads(bed).get("failure") == 2.0, 0.02)
        assert reloads(bed)["failure"] == 2.0
        assert status_of() == 200


def test_a_request_in_flight_finishes_on_the_config_it_started_with(tmp_path: Path) -> None:
    with loopback_bed(OPEN, tmp_path) as bed:
        slow, result = start_slow_request(bed, "1.5")
        bed.reconfigure(ir_from_manifests(CLOSED))
        assert status_of() == 403  # new requests see the new config at once
        slow.join(10)
        assert result == [200]  # the one that started before the reload was allowed to finish


def test_sigterm_drains_requests_in_flight_then_exits(tmp_path: Path) -> None:
    bed = loopback_bed(OPEN, tmp_path)
    with bed:
        slow, result = start_slow_request(bed, "1.0")
        bed.proxy.signal(signal.SIGTERM)
        slow.join(10)
        assert result == [200]
        assert bed.proxy.process is not None
        assert bed.proxy.process.wait(10) == 0
        assert "draining" in bed.proxy.log_text()


def test_readiness_waits_until_every_listener_is_bound(tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET-1) is no local address: that listener cannot be bound.
    bed = loopback_bed(manifests(web_allowed=False, catalog_ip="192.0.2.1"), tmp_path)
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
