"""The end of ``make demo``: the TrafficMetrics of every TrafficSplit, read from a running smi-proxy.

``demo_split_metrics(ir, admin, since=...)`` starts a throwaway Prometheus that scrapes the
proxy's admin listener, waits for its first scrape, and asks the ``proxy`` backend for each
split's per-backend TrafficMetrics over the window from ``since`` (before the demo's traffic
began) to that scrape. Prometheus starts after the traffic, so every series is born inside the
window and the counts are the proxy's totals since it started (see ``queries``: a series with no
value at the window start counts in full).

``python -m smi_bridge.metrics.demo --admin 127.0.0.1:15000 --since <unix> MANIFESTS...`` does the
same for a proxy running elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections.abc import Sequence

from smi_bridge.ir import IR
from smi_bridge.metrics.cli import render, splits_from_manifests
from smi_bridge.metrics.kinds import TRAFFICSPLIT
from smi_bridge.metrics.local_prometheus import LocalPrometheus, LocalPrometheusError, ScrapeTarget
from smi_bridge.metrics.prometheus import PrometheusClient, PrometheusError
from smi_bridge.metrics.queries import MESHES
from smi_bridge.metrics.service import Scope, TrafficMetricsService
from smi_bridge.metrics.window import MIN_WINDOW_MS, Window


def demo_split_metrics(ir: IR, admin: str, *, since: float, output: str = "table") -> tuple[int, str]:
    """``(0, the TrafficMetrics of every split)``, or ``(1, why not)``; ``admin`` is ``host:port``."""
    if not ir.splits:
        return 0, "no TrafficSplit in the demo: nothing to report\n"
    try:
        with LocalPrometheus([ScrapeTarget("smi-proxy", admin)]) as prom:
            end = math.ceil(prom.wait_for_scrape(time.time()))
            window = Window(max((end - math.floor(since)) * 1000, MIN_WINDOW_MS))
            text = asyncio.run(_report(prom.url, ir, window, end, output))
    except (LocalPrometheusError, PrometheusError) as exc:
        return 1, f"TrafficMetrics of the demo are not available: {exc}\n"
    return 0, text


async def _report(url: str, ir: IR, window: Window, end: int, output: str) -> str:
    parts = []
    async with PrometheusClient(url) as client:
        service = TrafficMetricsService(client, MESHES["proxy"], ir.splits)
        for split in ir.splits:
            answer = await service.answer(Scope(TRAFFICSPLIT, split.namespace, split.name), window, end)
            if output == "table":
                parts.append(
                    f"TrafficMetrics of TrafficSplit {split.namespace}/{split.name} (root {split.root}):\n"
                )
            parts.append(render(answer.obj, output))
    return "".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m smi_bridge.metrics.demo", description=__doc__.splitlines()[0])
    p.add_argument("manifests", nargs="+", help="the demo's manifests (for its TrafficSplits)")
    p.add_argument(
        "--admin", required=True, metavar="HOST:PORT", help="the running smi-proxy's admin listener"
    )
    p.add_argument("--since", type=float, required=True, help="Unix time before the demo's traffic began")
    p.add_argument("-o", "--output", choices=("table", "yaml", "json"), default="table")
    args = p.parse_args(argv)
    splits = splits_from_manifests(args.manifests, sys.stderr)
    code, text = demo_split_metrics(
        IR(splits=tuple(splits)), args.admin, since=args.since, output=args.output
    )
    (sys.stdout if code == 0 else sys.stderr).write(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
