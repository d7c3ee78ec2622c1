"""Benchmark smi-proxy against nginx and HAProxy on loopback, and time its config compiler.

    python benchmarks/proxy.py [--duration 10] [--connections 64]

Peers (Debian: ``apt-get install -y wrk nginx-light haproxy``), one worker process each:

- **direct**: wrk straight to the upstream, the floor;
- **nginx**: a weighted ``upstream`` (9:1) with keep-alive to the upstream;
- **haproxy**: ``balance roundrobin`` with weights 9 and 1, ``http-reuse always``;
- **smi-proxy**: the same 90/10 TrafficSplit with access control on, caller identity from a
  request header (``--identity header:x-identity``, so that wrk can present one).

nginx and HAProxy get an equivalent access check (the identity header and a path prefix, else
403), so every proxy does the same work. The upstream is nginx itself serving a 3-byte body on
two addresses (the two "pods"). Each proxy under test is pinned to CPU 0; the upstream and wrk
share CPU 1 (``taskset``), so the proxies compete for nothing but their own core.

Two loads per proxy:

1. **peak**: wrk with a fixed number of connections (closed loop), requests/s and p50/p99;
2. **half of nginx's peak rate**: wrk is closed-loop (wrk2's fixed rate is not in Debian's wrk),
   so the rate is fixed approximately: every connection waits a fixed delay before each request
   (a wrk Lua ``delay()`` of D ms, default 10), and the number of connections C is chosen so
   that C / (D + nginx's unloaded latency) is half of nginx's peak, then corrected once from a
   short probe run. Every proxy then runs with the same C and D; its achieved rate is printed
   next to its p99, so a proxy that cannot keep up shows it.

On a 2-CPU machine wrk and the upstream share CPU 1, which then caps the requests/s of every
proxy alike: compare the proxies' own capacity in the CPU-per-request column.

Next to requests/s, each proxy's CPU time per request is read from ``/proc/<pid>/stat``: on a
machine shared with other work, CPU per request (and its inverse, requests/s per core) is the
figure that contention does not distort; the load average is printed with it.

Then, in process: the time to compile a config of 100 Services and 10,000 routes, and the cost
of one routing decision as the routes grow (10, 1,000, 10,000). Nothing here runs in the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

UPSTREAMS = ("127.0.20.1", "127.0.20.2")
UPSTREAM_PORT = 8080
NGINX = ("127.0.22.1", 8080)
HAPROXY = ("127.0.23.1", 8080)
SMI = ("127.0.21.1", 8080)
IDENTITY = "shop/web"
PATH = "/bench/item"


@dataclass
class WrkResult:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: str
    requests: int = 0
    cpu_us: float = 0.0  # CPU time the proxy process spent per request (0: not measured)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process: the CPU it really got, whatever else shares the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- processes ---------------------------------------------------------------------------------------


def wait_port(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


def start(cmd: Sequence[str], cpu: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen(["taskset", "-c", str(cpu), *cmd], stdout=fh, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def nginx_config(directory: Path, server: str) -> Path:
    path = directory / f"{'upstream' if 'root' in server else 'proxy'}-nginx.conf"
    path.write_text(
        f"""
daemon off;
master_process off;
worker_processes 1;
pid {directory}/{path.stem}.pid;
error_log {directory}/{path.stem}.error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {directory}/body;
  proxy_temp_path {directory}/proxy;
  keepalive_requests 1000000;
  {server}
}}
"""
    )
    return path


def upstream_server(directory: Path) -> str:
    (directory / "www" / "bench").mkdir(parents=True, exist_ok=True)
    (directory / "www" / "bench" / "item").write_text("ok\n")
    listens = "\n".join(f"listen {ip}:{UPSTREAM_PORT} backlog=4096;" for ip in UPSTREAMS)
    return f"server {{ {listens} root {directory}/www; location / {{ }} }}"


def nginx_proxy_server() -> str:
    a, b = UPSTREAMS
    return f"""
  upstream checkout {{
    server {a}:{UPSTREAM_PORT} weight=9;
    server {b}:{UPSTREAM_PORT} weight=1;
    keepalive 256;
  }}
  server {{
    listen {NGINX[0]}:{NGINX[1]} backlog=4096;
    location /bench/ {{
      if ($http_x_identity != "{IDENTITY}") {{ return 403; }}
      proxy_pass http://checkout;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
    location / {{ return 403; }}
  }}
"""


def haproxy_config(directory: Path) -> Path:
    a, b = UPSTREAMS
    path = directory / "haproxy.cfg"
    path.write_text(
        f"""
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend bench
  bind {HAPROXY[0]}:{HAPROXY[1]}
  http-request deny deny_status 403 unless {{ req.hdr(x-identity) -m str {IDENTITY} }} {{ path_beg /bench/ }}
  default_backend checkout
backend checkout
  balance roundrobin
  server v1 {a}:{UPSTREAM_PORT} weight 9
  server v2 {b}:{UPSTREAM_PORT} weight 1
"""
    )
    return path


def smi_manifests() -> str:
    """A 90/10 split of checkout whose two backends are the upstream's two addresses."""
    services = [
        ("checkout", SMI[0], "checkout"),
        ("checkout-v1", "127.0.21.2", "v1"),
        ("checkout-v2", "127.0.21.3", "v2"),
    ]
    docs = []
    for name, ip, version in services:
        selector = "{app: checkout}" if version == "checkout" else f"{{app: checkout, version: {version}}}"
        docs.append(
            f"""apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: shop}}
spec:
  clusterIP: {ip}
  selector: {selector}
  ports: [{{name: http, port: {SMI[1]}, targetPort: {UPSTREAM_PORT}}}]
"""
        )
    for ip, version in zip(UPSTREAMS, ("v1", "v2"), strict=True):
        docs.append(
            f"""apiVersion: v1
kind: Pod
metadata: {{name: checkout-{version}-0, namespace: shop, labels: {{app: checkout, version: {version}}}}}
spec: {{serviceAccountName: checkout, containers: [{{name: c, image: c}}]}}
status: {{podIP: {ip}}}
"""
        )
    docs.append(
        """apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: checkout, namespace: shop}
spec:
  service: checkout
  backends: [{service: checkout-v1, weight: 90}, {service: checkout-v2, weight: 10}]
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: bench, namespace: shop}
spec:
  matches: [{name: bench, pathRegex: /bench/, methods: [GET]}]
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: web-to-checkout, namespace: shop}
spec:
  destination: {kind: ServiceAccount, name: checkout, namespace: shop}
  sources: [{kind: ServiceAccount, name: web, namespace: shop}]
  rules: [{kind: HTTPRouteGroup, name: bench}]
"""
    )
    return "---\n".join(docs)


# --- wrk ----------------------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not m:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(
    name: str, url: str, connections: int, duration: float, script: Path | None = None, pid: int | None = None
) -> WrkResult:
    cmd = [
        "taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
        "-H", f"x-identity: {IDENTITY}",
    ]  # fmt: skip
    if script is not None:
        cmd += ["-s", str(script)]
    cpu_before = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    cpu_used = cpu_seconds(pid) - cpu_before if pid else 0.0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return WrkResult(
        name,
        rps,
        p50,
        p99,
        int(non.group(1)) if non else 0,
        errors.group(1) if errors else "",
        requests,
        cpu_used * 1e6 / requests if pid and requests else 0.0,
    )


# --- in-process: compile time and decision cost -------------------------------------------------------------------


def synthetic_config(services: int, routes: int) -> dict[str, Any]:
    """A ProxyConfig of ``services`` Services (each split 90/10 between two versions, guarded by a
    TrafficTarget) and ``routes`` HTTP routes spread evenly over them."""
    from backends.base import Options
    from backends.proxy import ProxyBackend
    from smi_bridge.ir import (
        IR,
        AccessRule,
        Endpoint,
        EndpointPort,
        HTTPMatch,
        Identity,
        Pod,
        RouteGroup,
        Service,
        ServicePort,
        Split,
        SplitBackend,
        TrafficTarget,
    )

    per_service = max(1, routes // services)
    svcs, pods, groups, splits, targets = [], [], [], [], []
    for i in range(services):
        name = f"svc-{i:04d}"
        sa = f"sa-{i:04d}"
        ip_base = f"10.{i // 250}.{i % 250}"
        ports = (ServicePort(80, "http", 8080),)
        for v in ("", "-v1", "-v2"):
            svcs.append(
                Service(
                    "bench",
                    name + v,
                    cluster_ip=f"{ip_base}.{len(v) + 1}",
                    ports=ports,
                    selector=(("app", name),),
                    service_accounts=(sa,),
                    endpoints=(Endpoint(f"{ip_base}.100", (EndpointPort(8080, "http"),), f"{name}-0", sa),),
                )
            )
        pods.append(Pod("bench", f"{name}-0", (("app", name),), sa, f"{ip_base}.100", workload=name))
        matches = tuple(
            HTTPMatch(f"r{j}", f"/{name}/items/{j}(/.*)?$", ("GET", "POST"), ()) for j in range(per_service)
        )
        groups.append(RouteGroup("bench", f"routes-{i:04d}", matches))
        splits.append(
            Split("bench", name, name, (SplitBackend(name + "-v1", 90), SplitBackend(name + "-v2", 10)))
        )
        targets.append(
            TrafficTarget(
                "bench",
                f"to-{i:04d}",
                Identity("bench", sa),
                (Identity("bench", "client"),),
                (AccessRule("http", f"routes-{i:04d}", matches),),
            )
        )
    ir = IR(
        services=tuple(sorted(svcs, key=lambda s: s.name)),
        pods=tuple(pods),
        route_groups=tuple(groups),
        splits=tuple(splits),
        targets=tuple(targets),
    )
    (obj,) = ProxyBackend().emit(ir, Options()).objects
    return obj


def compile_figures() -> list[str]:
    import yaml

    from proxy.config import compile_config, load_config
    from smi_bridge import semantics
    from smi_bridge.ir import ir_from_dict

    lines = []
    obj = synthetic_config(100, 10_000)
    ir = ir_from_dict(obj["spec"]["ir"])
    semantics_cpu, _ = _timed(lambda: semantics.compile(ir))
    compile_cpu, compile_wall = _timed(lambda: compile_config(obj, version="1"))
    lines.append(
        f"compile 100 services / 10,000 routes: {compile_cpu * 1000:.0f} ms CPU ({compile_wall * 1000:.0f} ms wall), "
        f"of which semantics.compile {semantics_cpu * 1000:.0f} ms"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("json", "yaml"):
            path = Path(tmp) / f"big.{fmt}"
            text = json.dumps(obj) if fmt == "json" else yaml.safe_dump(obj, sort_keys=False)
            path.write_text(text)
            cpu, wall = _timed(lambda p=path: load_config(p, "1"))  # type: ignore[misc]
            lines.append(
                f"  load from {fmt.upper()} ({len(text) / 1e6:.1f} MB) incl. parse, schema check and compile: "
                f"{cpu * 1000:.0f} ms CPU ({wall * 1000:.0f} ms wall)"
            )
    return lines


def _timed(fn: Any) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one call: CPU time is what a shared machine cannot inflate."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def decision_figures() -> list[str]:
    from proxy.config import compile_config
    from smi_bridge.ir import Identity
    from smi_bridge.semantics import Request

    rows = ["routes  services  routes/svc  decide (uncached)  proxy path (cached)   [CPU time per decision]"]
    client = Identity("bench", "client")
    for routes, services in ((10, 1), (1_000, 100), (10_000, 1_000), (10, 10), (1_000, 10), (10_000, 100)):
        cfg = compile_config(synthetic_config(services, routes), version="1")
        per = max(1, routes // services)
        name = f"svc-{services // 2:04d}"
        path = f"/{name}/items/{per // 2}/x"
        request = Request(client, "bench", name, 80, "http", "GET", path)
        n = 20_000
        start = time.process_time()
        for _ in range(n):
            cfg.router.decide(request)
        uncached = (time.process_time() - start) / n
        start = time.process_time()
        for _ in range(n):
            cfg.decide(client, "bench", name, 80, "http", "GET", path, ())
        cached = (time.process_time() - start) / n
        assert cfg.router.decide(request).backends[0].allowed
        rows.append(
            f"{routes:>6}  {services:>8}  {per:>10}  {uncached * 1e6:>14.1f} us  {cached * 1e6:>16.2f} us"
        )
    return rows


# --- main -------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    p.add_argument("--connections", type=int, default=64, help="connections for the peak run (default 64)")
    p.add_argument("--delay-ms", type=int, default=10, help="per-connection delay for the half-rate run")
    p.add_argument("--repeat", type=int, default=2, help="rounds per load; the best of each is kept")
    p.add_argument("--skip-load", action="store_true", help="only the in-process figures")
    args = p.parse_args(argv)

    print("== config compile and decision cost (in process)")
    for line in compile_figures():
        print("  " + line)
    for line in decision_figures():
        print("  " + line)
    if args.skip_load:
        return 0
    missing = [tool for tool in ("wrk", "nginx", "haproxy", "taskset") if shutil.which(tool) is None]
    if missing:
        print(f"missing tools: {', '.join(missing)} (apt-get install -y wrk nginx-light haproxy)")
        return 2
    if (os.cpu_count() or 1) < 2:
        print("needs at least 2 CPUs (proxy on one, upstream and wrk on the other)")
        return 2

    from smi_bridge.verify import ProxyProcess, ir_from_manifests, write_proxy_config

    with tempfile.TemporaryDirectory(prefix="smi-bench-") as tmp:
        d = Path(tmp)
        procs: list[subprocess.Popen[bytes]] = []
        smi: ProxyProcess | None = None
        try:
            nginx = shutil.which("nginx") or "nginx"
            upstream_conf = nginx_config(d, upstream_server(d))
            procs.append(start([nginx, "-p", str(d), "-c", str(upstream_conf)], 1, d / "upstream.log"))
            proxy_conf = nginx_config(d, nginx_proxy_server())
            nginx_proc = start([nginx, "-p", str(d), "-c", str(proxy_conf)], 0, d / "nginx.log")
            haproxy_proc = start(["haproxy", "-f", str(haproxy_config(d))], 0, d / "haproxy.log")
            procs += [nginx_proc, haproxy_proc]
            config, _ = write_proxy_config(ir_from_manifests(smi_manifests()), d, "enforce", "cluster.local")
            smi = ProxyProcess(
                config,
                identity="header:x-identity",
                args=["--watch-interval", "0", "--log-level", "warning"],
                command=["taskset", "-c", "0", sys.executable, "-m", "proxy.main"],
                log=d / "smi-proxy.log",
            )
            smi.start()
            for ip in UPSTREAMS:
                wait_port(ip, UPSTREAM_PORT)
            wait_port(*NGINX)
            wait_port(*HAPROXY)
            targets = {
                "direct": f"http://{UPSTREAMS[0]}:{UPSTREAM_PORT}{PATH}",
                "nginx": f"http://{NGINX[0]}:{NGINX[1]}{PATH}",
                "haproxy": f"http://{HAPROXY[0]}:{HAPROXY[1]}{PATH}",
                "smi-proxy": f"http://{SMI[0]}:{SMI[1]}{PATH}",
            }
            assert smi.process is not None
            pids = {
                "direct": procs[0].pid,
                "nginx": nginx_proc.pid,
                "haproxy": haproxy_proc.pid,
                "smi-proxy": smi.process.pid,
            }
            for url in targets.values():
                wrk("warm-up", url, args.connections, 2)
            peak = {
                name: wrk(name, url, args.connections, args.duration, pid=pids[name])
                for name, url in targets.items()
            }
            half_rate = peak["nginx"].rps / 2
            # C connections, each waiting D ms before every request: rate = C / (D + latency).
            # The latency that counts is the unloaded one (wrk -c1), not the peak run's queueing.
            delay = args.delay_ms
            script = d / "delay.lua"
            script.write_text(f"function delay()\n  return {delay}\nend\n")
            idle = wrk("nginx", targets["nginx"], 1, 2)
            connections = max(1, round(half_rate * (delay + idle.p50_ms) / 1000))
            probe = wrk("nginx", targets["nginx"], connections, 3, script)
            connections = max(1, round(connections * half_rate / probe.rps))  # one correction
            half: dict[str, WrkResult] = {}
            for _ in range(args.repeat):
                for name, url in targets.items():
                    if name == "direct":
                        continue
                    r = wrk(name, url, connections, args.duration, script)
                    if name not in half or r.p99_ms < half[name].p99_ms:
                        half[name] = r
        finally:
            if smi is not None:
                smi.stop()
            for proc in procs:
                stop(proc)

    print(
        f"\n== peak: wrk -t1 -c{args.connections} -d{args.duration:g}s (closed loop), best of {args.repeat}"
    )
    print(
        f"  {'target':<10} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11} {'req/s per core':>15}  notes"
    )
    for r in peak.values():
        notes = f"non-2xx {r.non_2xx}" if r.non_2xx else ""
        notes += f" socket errors: {r.errors}" if r.errors else ""
        capacity = 1e6 / r.cpu_us if r.cpu_us else 0.0
        print(
            f"  {r.name:<10} {r.rps:>10.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.cpu_us:>11.1f} {capacity:>15.0f}  {notes}"
        )
    smi_peak = peak["smi-proxy"]
    print(f"  smi-proxy/nginx req/s: {smi_peak.rps / peak['nginx'].rps:.2f}   "
          f"smi-proxy/haproxy req/s: {smi_peak.rps / peak['haproxy'].rps:.2f}")  # fmt: skip
    print(f"  smi-proxy/nginx per core: {peak['nginx'].cpu_us / smi_peak.cpu_us:.2f}   "
          f"smi-proxy/haproxy per core: {peak['haproxy'].cpu_us / smi_peak.cpu_us:.2f}   "
          f"(load average during the run: {os.getloadavg()[0]:.1f})")  # fmt: skip
    print(
        f"\n== half of nginx's peak ({half_rate:.0f} req/s): {connections} connections, each waiting {delay} ms "
        "before every request"
    )
    print(f"  {'target':<10} {'achieved':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for r in half.values():
        print(f"  {r.name:<10} {r.rps:>10.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f}")
    print(f"  smi-proxy/nginx p99: {half['smi-proxy'].p99_ms / half['nginx'].p99_ms:.2f}   "
          f"smi-proxy/haproxy p99: {half['smi-proxy'].p99_ms / half['haproxy'].p99_ms:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
