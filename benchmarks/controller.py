"""Benchmark: the controller against the fake API server (run in its own process).

What it measures, on a generated cluster (``--namespaces`` x (``--per-namespace`` TrafficSplits +
the same number of TrafficTargets), default 20 x 50 = 1,000 + 1,000, with their Services, Pods and
ServiceAccounts):

1. convergence: from the first create of the 2,000 SMI objects (all sent at once, concurrently) until
   every output object the CLI's ``translate`` would emit for that cluster exists in the API server;
2. single weight changes, one at a time: time from the PATCH of one TrafficSplit to the watch event
   that shows its VirtualService with the new weights (p50, p99, max);
3. writes once converged: the API server's write count over a quiet period that includes a forced
   full resync (``mark_all``) and a forced relist of every cache (410) — must be zero;
4. memory: the benchmark process's peak RSS (the controller plus this script; the server is elsewhere).

The peer, measured in the same run on a fresh server with the same cluster: the one-shot job a team
runs without a controller, ``smi-bridge translate`` of the manifests followed by a server-side apply
of every output (what ``kubectl apply --server-side`` sends: one PATCH of
``application/apply-patch+yaml`` per object, with as many connections as the controller's
concurrency). Its time includes creating the same SMI objects, so both clocks start at the first
create; the controller's convergence is printed as a ratio of it.

Targets: converged in under 20 s, change p99 under 200 ms, zero writes, under 300 MB.
``python benchmarks/controller.py --help`` for the knobs.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backends.base import Options  # noqa: E402
from smi_bridge.controller.kubeapi import ClusterConfig, KubeClient  # noqa: E402
from smi_bridge.controller.run import Controller, ControllerConfig  # noqa: E402
from smi_bridge.translate import translate_ir  # noqa: E402

Obj = dict[str, Any]
ANCHORS = ROOT.parent / "shared" / "anchors"
TARGET_CONVERGE_S = 20.0
TARGET_P99_MS = 200.0
TARGET_RSS_MB = 300.0


def cluster_objects(namespaces: int, per_ns: int) -> tuple[list[Obj], list[Obj]]:
    """(inventory, SMI objects) of the generated cluster."""
    inventory: list[Obj] = []
    smi: list[Obj] = []
    for n in range(namespaces):
        ns = f"bench-{n:02d}"
        inventory.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        smi.append(
            {
                "apiVersion": "specs.smi-spec.io/v1alpha4",
                "kind": "HTTPRouteGroup",
                "metadata": {"name": "routes", "namespace": ns},
                "spec": {"matches": [{"name": "all", "pathRegex": "/.*", "methods": ["GET", "POST"]}]},
            }
        )
        for i in range(per_ns):
            app = f"app-{i:03d}"
            inventory.append(
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": app, "namespace": ns}}
            )
            inventory.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": app, "namespace": ns},
                    "spec": {
                        "selector": {"app": app},
                        "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                    },
                }
            )
            for v in ("v1", "v2"):
                inventory.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Service",
                        "metadata": {"name": f"{app}-{v}", "namespace": ns},
                        "spec": {
                            "selector": {"app": app, "version": v},
                            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                        },
                    }
                )
                inventory.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {
                            "name": f"{app}-{v}-0",
                            "namespace": ns,
                            "labels": {"app": app, "version": v},
                        },
                        "spec": {"serviceAccountName": app, "containers": [{"name": "c", "image": app}]},
                    }
                )
            smi.append(
                {
                    "apiVersion": "split.smi-spec.io/v1alpha4",
                    "kind": "TrafficSplit",
                    "metadata": {"name": f"{app}-split", "namespace": ns},
                    "spec": {
                        "service": app,
                        "backends": [
                            {"service": f"{app}-v1", "weight": 90},
                            {"service": f"{app}-v2", "weight": 10},
                        ],
                    },
                }
            )
            caller = f"app-{(i + 1) % per_ns:03d}"
            smi.append(
                {
                    "apiVersion": "access.smi-spec.io/v1alpha3",
                    "kind": "TrafficTarget",
                    "metadata": {"name": f"{caller}-to-{app}", "namespace": ns},
                    "spec": {
                        "destination": {"kind": "ServiceAccount", "name": app, "namespace": ns},
                        "rules": [{"kind": "HTTPRouteGroup", "name": "routes", "matches": ["all"]}],
                        "sources": [{"kind": "ServiceAccount", "name": caller, "namespace": ns}],
                    },
                }
            )
    return inventory, smi


def expected_outputs(inventory: list[Obj], smi: list[Obj], backend: str) -> set[tuple[str, str, str, str]]:
    """What ``smi-bridge translate`` emits for this cluster (the controller must apply exactly that)."""
    from smi_bridge.build import build
    from smi_bridge.controller.desired import document_for
    from smi_bridge.parse import parse_documents

    parsed = parse_documents([document_for(o) for o in inventory + smi if o["kind"] != "Namespace"])
    ir = build(parsed.resources).ir
    out = translate_ir(ir, [backend], Options())[0]
    return {
        (o["apiVersion"], o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
        for o in out.objects
    }


class Server:
    """The fake API server in a child process (so that it does not share this process's GIL)."""

    @classmethod
    def attach(cls, url: str) -> Server:
        """A client of a server started elsewhere (no process of its own)."""
        server = cls.__new__(cls)
        server.url = url
        server.http = httpx.Client(base_url=url, timeout=60, limits=httpx.Limits(max_connections=64))
        return server

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smi_bridge.controller.testing.fakeapi"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        atexit.register(self.proc.kill)  # never leave the server behind, whatever happens here
        self.http = httpx.Client(base_url=self.url, timeout=60, limits=httpx.Limits(max_connections=32))

    def stats(self) -> Obj:
        out: Obj = self.http.get("/fake/stats").json()
        return out

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def path(self, obj: Obj, name: bool = False) -> str:
        api, kind = obj["apiVersion"], obj["kind"]
        plural = {
            "Namespace": "namespaces",
            "ServiceAccount": "serviceaccounts",
            "Service": "services",
            "Pod": "pods",
            "TrafficSplit": "trafficsplits",
            "TrafficTarget": "traffictargets",
            "HTTPRouteGroup": "httproutegroups",
            "CustomResourceDefinition": "customresourcedefinitions",
        }[kind]
        base = f"/apis/{api}" if "/" in api else f"/api/{api}"
        ns = obj["metadata"].get("namespace")
        if ns:
            base += f"/namespaces/{ns}"
        return f"{base}/{plural}" + (f"/{obj['metadata']['name']}" if name else "")

    def create_all(self, objects: list[Obj], workers: int = 16) -> None:
        def one(obj: Obj) -> None:
            resp = self.http.post(
                self.path(obj), content=json.dumps(obj), headers={"Content-Type": "application/json"}
            )
            assert resp.status_code == 201, resp.text

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, objects))


def create_elsewhere(url: str, objects: list[Obj], workers: int = 32) -> None:
    """Create ``objects`` from another process, as kubectl would: the creating threads must not take
    the controller's interpreter lock while it is being measured."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(objects, fh)
    try:
        subprocess.run(
            [sys.executable, __file__, "--create", fh.name, "--url", url, "--workers", str(workers)],
            cwd=ROOT,
            check=True,
        )
    finally:
        os.unlink(fh.name)


def crd_docs() -> list[Obj]:
    files = sorted((ANCHORS / "smi" / "crds" / "smi-sdk-go").glob("*.yaml")) + sorted(
        (ANCHORS / "crds" / "istio").glob("*.yaml")
    )
    return [
        d
        for f in files
        for d in yaml.load_all(f.read_text(), Loader=yaml.CSafeLoader)
        if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"
    ]


class OutputWatch:
    """Watches VirtualServices and AuthorizationPolicies in threads: what exists, and when it changed."""

    PATHS = (
        "/apis/networking.istio.io/v1/virtualservices",
        "/apis/security.istio.io/v1/authorizationpolicies",
    )

    def __init__(self, url: str) -> None:
        self.url = url
        self.cond = threading.Condition()
        self.live: dict[tuple[str, str, str], tuple[list[int], float]] = {}
        for path in self.PATHS:
            threading.Thread(target=self._run, args=(path,), daemon=True).start()

    def _run(self, path: str) -> None:
        try:
            with httpx.stream(
                "GET", f"{self.url}{path}", params={"watch": "true", "timeoutSeconds": "3600"}, timeout=None
            ) as resp:
                for line in resp.iter_lines():
                    if line.strip():
                        self._seen(json.loads(line))
        except httpx.HTTPError:
            return  # the server went away at the end of the run

    def _seen(self, ev: Obj) -> None:
        obj = ev["object"]
        md = obj.get("metadata", {})
        key = (obj.get("kind", ""), md.get("namespace", ""), md.get("name", ""))
        routes = ((obj.get("spec") or {}).get("http") or [{}])[0].get("route", [])
        with self.cond:
            if ev["type"] == "DELETED":
                self.live.pop(key, None)
            else:
                self.live[key] = ([r.get("weight") for r in routes], time.monotonic())
            self.cond.notify_all()

    def count(self) -> int:
        with self.cond:
            return len(self.live)

    def wait(self, ns: str, name: str, weights: list[int], timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = self.live.get(("VirtualService", ns, name))
                if got is not None and got[0] == weights:
                    return got[1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{ns}/{name} never showed weights {weights}")
                self.cond.wait(left)


PLURALS = {"VirtualService": "virtualservices", "AuthorizationPolicy": "authorizationpolicies"}


def peer_one_shot(inventory: list[Obj], smi: list[Obj], concurrency: int) -> dict[str, float]:
    """The same cluster on a fresh server: create the SMI objects, translate, apply every output."""
    from smi_bridge.build import build
    from smi_bridge.controller.desired import document_for
    from smi_bridge.parse import parse_documents

    server = Server()
    try:
        server.create_all(crd_docs(), workers=1)
        server.create_all([o for o in inventory if o["kind"] == "Namespace"])
        server.create_all([o for o in inventory if o["kind"] != "Namespace"])
        t0 = time.monotonic()
        create_elsewhere(server.url, smi)
        created = time.monotonic()
        parsed = parse_documents([document_for(o) for o in inventory + smi if o["kind"] != "Namespace"])
        outputs = translate_ir(build(parsed.resources).ir, ["istio"], Options())[0].objects
        translated = time.monotonic()

        def apply(obj: Obj) -> None:
            md = obj["metadata"]
            path = (
                f"/apis/{obj['apiVersion']}/namespaces/{md['namespace']}/{PLURALS[obj['kind']]}/{md['name']}"
            )
            resp = server.http.patch(
                path,
                params={"fieldManager": "kubectl", "force": "true"},
                content=json.dumps(obj),
                headers={"Content-Type": "application/apply-patch+yaml"},
            )
            assert resp.status_code in (200, 201), resp.text

        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(apply, outputs))
        done = time.monotonic()
        return {
            "peer_seconds": done - t0,
            "peer_create_seconds": created - t0,
            "peer_translate_seconds": translated - created,
            "peer_apply_seconds": done - translated,
            "peer_outputs": float(len(outputs)),
        }
    finally:
        server.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    server = Server()
    results: dict[str, Any] = {}
    try:
        server.create_all(crd_docs(), workers=1)
        inventory, smi = cluster_objects(args.namespaces, args.per_namespace)
        namespaces = [o for o in inventory if o["kind"] == "Namespace"]
        server.create_all(namespaces)
        server.create_all([o for o in inventory if o["kind"] != "Namespace"])
        for pod in [
            o for o in inventory if o["kind"] == "Pod"
        ]:  # pod IPs go through /status, as on a cluster
            live = server.http.get(server.path(pod, name=True)).json()
            live["status"] = {
                "phase": "Running",
                "podIP": f"10.{random.randint(1, 250)}.{random.randint(0, 250)}.{random.randint(1, 250)}",
            }
            server.http.put(server.path(pod, name=True) + "/status", content=json.dumps(live))
        expected = await asyncio.to_thread(expected_outputs, inventory, smi, "istio")
        results["smi_objects"] = len(smi)
        results["inventory_objects"] = len(inventory)
        results["expected_outputs"] = len(expected)

        client = KubeClient(ClusterConfig(server.url), max_connections=args.concurrency * 2)
        ctl = Controller(
            client,
            ControllerConfig(
                "istio",
                metrics_addr="0",
                health_addr="0",
                discovery_interval=5.0,
                concurrency=args.concurrency,
            ),
        )
        task = asyncio.create_task(ctl.run())
        while not (ctl.started and ctl.reconciler.passes > 0 and ctl.reconciler.converged()):
            await asyncio.sleep(0.05)

        # 1. convergence after a burst of creates
        watcher = OutputWatch(server.url)
        t0 = time.monotonic()
        await asyncio.to_thread(create_elsewhere, server.url, smi)
        results["create_seconds"] = time.monotonic() - t0
        while True:
            n = watcher.count()
            if n >= len(expected) and ctl.reconciler.converged():
                break
            if time.monotonic() - t0 > 300:
                raise TimeoutError(f"only {n} of {len(expected)} outputs after 300 s")
            await asyncio.sleep(0.02)
        results["converge_seconds"] = time.monotonic() - t0
        results["applied_outputs"] = n
        results["passes_to_converge"] = ctl.reconciler.passes

        # 2. single weight changes, once the Events of the burst are written (the controller is idle)
        while ctl.recorder.pending():
            await asyncio.sleep(0.05)
        results["events_drained_seconds"] = time.monotonic() - t0
        splits = [o for o in smi if o["kind"] == "TrafficSplit"]
        rng = random.Random(7)
        latencies: list[float] = []
        for i in range(args.changes):
            split = rng.choice(splits)
            a = rng.randint(1, 99)
            weights = [a, 100 - a] if [a, 100 - a] != [90, 10] else [89, 11]
            patch = {
                "spec": {
                    "backends": [
                        {"service": b["service"], "weight": w}
                        for b, w in zip(split["spec"]["backends"], weights, strict=True)
                    ]
                }
            }
            split["spec"]["backends"] = patch["spec"]["backends"]
            md = split["metadata"]
            vs_name = split["spec"]["service"] + "-split"
            started = time.monotonic()
            await asyncio.to_thread(
                server.http.patch,
                server.path(split, name=True),
                content=json.dumps(patch),
                headers={"Content-Type": "application/merge-patch+json"},
            )
            seen_at = await asyncio.to_thread(watcher.wait, md["namespace"], vs_name, weights)
            latencies.append((seen_at - started) * 1000)
            del i
        latencies.sort()
        results["change_p50_ms"] = statistics.median(latencies)
        results["change_p99_ms"] = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        results["change_max_ms"] = latencies[-1]

        # 3. writes once converged, through a forced full pass and a forced relist of every cache
        while not ctl.reconciler.converged() or ctl.recorder.pending():
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        before = await asyncio.to_thread(server.stats)
        ctl.reconciler.mark_all()
        for inf in ctl.informers.values():
            inf.resource_version = "1"  # the next re-watch meets a 410 and relists
        await asyncio.to_thread(server.http.delete, "/api/v1/namespaces/default/configmaps/none")
        await asyncio.sleep(args.quiet)
        while not ctl.reconciler.converged():
            await asyncio.sleep(0.05)
        after = await asyncio.to_thread(server.stats)
        results["writes_when_converged"] = (
            after["writes"] - before["writes"] - 1
        )  # minus our own probe DELETE
        results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ctl.stop()
        await task
        await client.aclose()
    finally:
        server.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--per-namespace", type=int, default=50)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--quiet", type=float, default=3.0, help="seconds of forced resync to count writes over"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--create", metavar="FILE", help=argparse.SUPPRESS)  # the creating child process
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=32, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.create:
        server = Server.attach(args.url)
        server.create_all(json.loads(Path(args.create).read_text()), workers=args.workers)
        return 0
    results = asyncio.run(run(args))
    results.update(
        peer_one_shot(*cluster_objects(args.namespaces, args.per_namespace), concurrency=args.concurrency)
    )
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    ok = {
        "converge_seconds": results["converge_seconds"] < TARGET_CONVERGE_S,
        "change_p99_ms": results["change_p99_ms"] < TARGET_P99_MS,
        "writes_when_converged": results["writes_when_converged"] == 0,
        "peak_rss_mb": results["peak_rss_mb"] < TARGET_RSS_MB,
    }
    print(
        f"cluster: {results['smi_objects']} SMI objects, {results['inventory_objects']} inventory objects, "
        f"{results['expected_outputs']} outputs expected"
    )
    print(f"SMI objects created in {results['create_seconds']:.1f} s")
    print(f"every Event of the burst written after {results['events_drained_seconds']:.1f} s")
    print(
        f"converged (all {results['applied_outputs']} outputs applied) in {results['converge_seconds']:.2f} s "
        f"[target < {TARGET_CONVERGE_S:.0f} s] {'ok' if ok['converge_seconds'] else 'MISSED'}"
    )
    print(
        f"peer, one-shot translate + server-side apply of the same cluster: {results['peer_seconds']:.2f} s "
        f"(create {results['peer_create_seconds']:.1f} s, translate {results['peer_translate_seconds']:.1f} s, "
        f"apply {int(results['peer_outputs'])} outputs {results['peer_apply_seconds']:.1f} s); "
        f"controller convergence = {results['converge_seconds'] / results['peer_seconds']:.2f}x the one-shot job"
    )
    print(
        f"single weight change -> applied: p50 {results['change_p50_ms']:.1f} ms, p99 {results['change_p99_ms']:.1f} ms, "
        f"max {results['change_max_ms']:.1f} ms [target p99 < {TARGET_P99_MS:.0f} ms] "
        f"{'ok' if ok['change_p99_ms'] else 'MISSED'}"
    )
    print(
        f"writes once converged (full resync + relist): {results['writes_when_converged']} [target 0] "
        f"{'ok' if ok['writes_when_converged'] else 'MISSED'}"
    )
    print(
        f"peak RSS: {results['peak_rss_mb']:.0f} MB [target < {TARGET_RSS_MB:.0f} MB] {'ok' if ok['peak_rss_mb'] else 'MISSED'}"
    )
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
