"""The running controller: discovery, informers, leader election, the reconcile loop and the probes.

``Controller.run()`` returns an exit code when ``stop()`` is called (SIGTERM in the CLI):

* discovery runs at start and every ``discovery_interval``; it finds which SMI versions are served
  (one informer per SMI kind, at the newest served version smi-bridge reads — every served version
  shows the same stored objects) and notices CRDs that appear or go away later;
* while the API server cannot be reached, discovery retries with backoff and jitter and /readyz
  answers 503; informers retry on their own;
* /readyz is ok once every informer has listed once and the leader is known (us or another
  holder of the Lease); /healthz is ok while the process runs;
* shutdown stops the loop, releases the Lease and closes the caches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from backends.base import Options
from smi_bridge.controller import desired as d
from smi_bridge.controller.events import CORE_EVENTS, EVENTS_V1, EventRecorder
from smi_bridge.controller.health import ProbeServer, Route, parse_address
from smi_bridge.controller.informer import ChangeHandler, Informer
from smi_bridge.controller.kubeapi import ApiError, Backoff, Discovery, KubeClient, ResourceType
from smi_bridge.controller.leader import LeaseElector
from smi_bridge.controller.reconciler import TARGET_KINDS, Reconciler, Settings, settle_memory
from smi_bridge.controller.telemetry import Telemetry
from smi_bridge.model import KIND_VERSIONS

log = logging.getLogger("smi_bridge.controller")

InformerKey = tuple[str, ResourceType, str | None]  # (role, type, namespace)


def default_identity() -> str:
    """The Pod name when set (the chart passes it), else hostname plus a random suffix."""
    name = os.environ.get("POD_NAME") or socket.gethostname() or "smi-bridge"
    return f"{name}_{uuid.uuid4().hex[:8]}"


def default_namespace() -> str:
    """The namespace this Pod runs in (for the Lease), else ``default``."""
    env = os.environ.get("POD_NAMESPACE")
    if env:
        return env
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    with contextlib.suppress(OSError), open(path, encoding="utf-8") as fh:
        text = fh.read().strip()
        if text:
            return text
    return "default"


@dataclass
class ControllerConfig:
    backend: str
    options: Options = field(default_factory=Options)
    namespaces: tuple[str, ...] | None = None
    leader_elect: bool = False
    lease_namespace: str = "default"
    lease_name: str = ""
    identity: str = field(default_factory=default_identity)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    metrics_addr: str = ":8080"
    health_addr: str = ":8081"
    discovery_interval: float = 30.0
    watch_timeout: tuple[int, int] = (240, 360)
    concurrency: int = 4
    event_burst: int = 25
    event_refill_seconds: float = 30.0
    backoff: Backoff = field(default_factory=lambda: Backoff(base=0.2, cap=30.0))


def _preferred_version(group: str, kind: str, served: list[ResourceType]) -> ResourceType | None:
    """The first served version (in the server's preference order) that smi-bridge has a model for."""
    known = set(KIND_VERSIONS.get((group, kind), ()))
    for rt in served:
        if rt.version in known:
            return rt
    return served[0] if served else None


class Controller:
    def __init__(self, client: KubeClient, config: ControllerConfig) -> None:
        if config.backend not in TARGET_KINDS:
            raise ValueError(
                f"unknown controller backend {config.backend!r} (choose one of: {', '.join(TARGET_KINDS)})"
            )
        self.client = client
        self.config = config
        self.telemetry = Telemetry()
        self.recorder = EventRecorder(
            client,
            instance=config.identity,
            burst=config.event_burst,
            refill_seconds=config.event_refill_seconds,
            telemetry=self.telemetry,
        )
        self.recorder.enabled = False
        self.reconciler = Reconciler(
            client,
            Settings(config.backend, config.options, config.namespaces, config.concurrency),
            telemetry=self.telemetry,
            recorder=self.recorder,
        )
        self.elector: LeaseElector | None = None
        if config.leader_elect:
            self.elector = LeaseElector(
                client,
                namespace=config.lease_namespace,
                name=config.lease_name or f"smi-bridge-{config.backend}",
                identity=config.identity,
                lease_duration=config.lease_duration,
                renew_deadline=config.renew_deadline,
                retry_period=config.retry_period,
                on_change=self._leadership,
            )
        self.informers: dict[InformerKey, Informer] = {}
        self.reconciler.covered = self._covered
        self.discovery: Discovery | None = None
        self.api_ok = False
        self.started = False  # caches synced once and the first full pass scheduled
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.servers: list[ProbeServer] = []

    # --- state -----------------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return self.discovery is not None and all(i.synced.is_set() for i in self.informers.values())

    @property
    def leader_known(self) -> bool:
        return self.elector.leader_known if self.elector is not None else True

    @property
    def ready(self) -> bool:
        return self.api_ok and self.synced and self.leader_known

    @property
    def leading(self) -> bool:
        return self.reconciler.leading

    def stop(self) -> None:
        self._stop.set()

    def _leadership(self, leading: bool) -> None:
        self.telemetry.leader.set(1 if leading else 0)
        if leading and not self.started:
            return  # the first pass starts once the caches are synced
        self.reconciler.leading = leading
        self.recorder.enabled = leading
        if leading:
            self.reconciler.mark_all()

    # --- probes ----------------------------------------------------------------------------------

    def routes(self) -> dict[str, Route]:
        def healthz() -> tuple[int, str, bytes]:
            return 200, "text/plain", b"ok\n"

        def readyz() -> tuple[int, str, bytes]:
            self.telemetry.ready.set(1 if self.ready else 0)
            if self.ready:
                return 200, "text/plain", b"ok\n"
            why = []
            if not self.api_ok:
                why.append("API server not reachable")
            if not self.synced:
                pending = [i.name for i in self.informers.values() if not i.synced.is_set()]
                why.append("caches not synced" + (f": {', '.join(pending[:5])}" if pending else ""))
            if not self.leader_known:
                why.append("no leader known")
            return 503, "text/plain", ("not ready: " + "; ".join(why) + "\n").encode()

        def metrics() -> tuple[int, str, bytes]:
            self.telemetry.ready.set(1 if self.ready else 0)
            for key, inf in self.informers.items():
                self.telemetry.cached.labels(kind=f"{key[0]}:{inf.rt.kind}").set(len(inf.store))
            return 200, "text/plain; version=0.0.4; charset=utf-8", self.telemetry.render()

        return {"/healthz": healthz, "/livez": healthz, "/readyz": readyz, "/metrics": metrics}

    async def _start_servers(self) -> None:
        routes = self.routes()
        groups: list[tuple[tuple[str, int], set[str]]] = []
        for addr, paths in (
            (self.config.metrics_addr, {"/metrics"}),
            (self.config.health_addr, {"/healthz", "/livez", "/readyz"}),
        ):
            parsed = parse_address(addr)
            if parsed is None:
                continue
            same = next((g for g in groups if g[0] == parsed and parsed[1] != 0), None)
            if same is not None:
                same[1].update(paths)  # one address for both: one server
            else:
                groups.append((parsed, set(paths)))
        for (host, port), paths in groups:
            server = ProbeServer(host, port, {p: routes[p] for p in paths})
            self.servers.append(await server.start())

    # --- informers -------------------------------------------------------------------------------

    def _scopes(self) -> Iterable[str | None]:
        return self.config.namespaces if self.config.namespaces is not None else (None,)

    def _wanted(self, disc: Discovery) -> dict[InformerKey, tuple[ChangeHandler, str | None]]:
        r = self.reconciler
        wanted: dict[InformerKey, tuple[ChangeHandler, str | None]] = {}
        for group, kind in d.SMI_KINDS:
            rt = _preferred_version(group, kind, disc.kinds_in(group).get(kind, []))
            if rt is not None:
                for ns in self._scopes():
                    wanted[("smi", rt, ns)] = (r.on_smi_change, None)
        for group, kind, versions in d.INVENTORY_KINDS:
            for v in versions:
                rt = disc.types.get((group, v, kind))
                if rt is not None:
                    for ns in self._scopes():
                        wanted[("inventory", rt, ns)] = (r.on_inventory_change, None)
                    break
        # Outputs are cached whole, not only ours (no label selector): an absent key then means no
        # object at all, so a create needs no GET first, and another tool's object of the same name
        # is seen and left alone.
        output_kinds = set(TARGET_KINDS[self.config.backend]) | {(k[0], k[1]) for k in r.desired}
        for api_version, kind in sorted(output_kinds):
            rt = disc.find(api_version, kind)
            if rt is not None:
                for ns in self._scopes():
                    wanted[("output", rt, ns)] = (r.on_output_change, None)
        return wanted

    def _covered(self, api_version: str, kind: str, namespace: str) -> bool:
        for (role, rt, ns), inf in self.informers.items():
            if (
                role == "output"
                and rt.api_version == api_version
                and rt.kind == kind
                and ns in (None, namespace)
                and inf.synced.is_set()
                and not inf.gone
            ):
                return True
        return False

    async def _sync_informers(self, disc: Discovery) -> None:
        wanted = self._wanted(disc)
        for key in [k for k in self.informers if k not in wanted]:
            inf = self.informers.pop(key)
            log.info("%s is no longer served: dropping its cache", inf.name)
            await inf.stop()
            inf._replace({}, "")  # everything it held is gone: tell the reconciler
        for key, (handler, selector) in wanted.items():
            if key in self.informers:
                continue
            role, rt, ns = key
            inf = Informer(
                self.client,
                rt,
                namespace=ns,
                label_selector=selector,
                on_change=handler,
                backoff=self.config.backoff,
                watch_timeout=self.config.watch_timeout,
                on_error=self._informer_error,
                keep_managed_fields=role == "output",
            )
            self.informers[key] = inf
            inf.start()
            log.info("watching %s (%s)", inf.name, role)

    def _informer_error(self, inf: Informer, exc: Exception) -> None:
        if isinstance(exc, ApiError) and exc.status in (0, 500, 502, 503, 504):
            self.api_ok = False
        self.telemetry.errors.labels(what="watch").inc()
        if isinstance(exc, ApiError) and exc.status == 410:
            self.telemetry.relists.inc()

    # --- main loops ------------------------------------------------------------------------------

    def _groups(self) -> list[str]:
        groups = {g for g, _k in d.SMI_KINDS} | {g for g, _k, _v in d.INVENTORY_KINDS if g}
        groups |= {api.rpartition("/")[0] for api, _k in TARGET_KINDS[self.config.backend]}
        groups |= {"coordination.k8s.io", "events.k8s.io"}
        return sorted(groups)

    async def _discovery_loop(self) -> None:
        failures = 0
        while True:
            try:
                disc = await self.client.discover(
                    self._groups() + sorted({k[0].rpartition("/")[0] for k in self.reconciler.desired})
                )
            except (ApiError, ValueError, TypeError, KeyError) as exc:
                failures += 1
                self.api_ok = False
                self.telemetry.errors.labels(what="discovery").inc()
                delay = self.config.backoff.delay(
                    failures, exc.retry_after if isinstance(exc, ApiError) else None
                )
                log.warning("API server discovery failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            self.api_ok = True
            changed = self.discovery is None or set(disc.types) != set(self.discovery.types)
            self.discovery = disc
            self.reconciler.discovery = disc
            self.recorder.api = EVENTS_V1 if disc.find("events.k8s.io/v1", "Event") else CORE_EVENTS
            await self._sync_informers(disc)
            # poll faster while some cache has not synced (the API may be coming back)
            interval = (
                self.config.discovery_interval if self.synced else min(1.0, self.config.discovery_interval)
            )
            if not self.started:
                waiting = [i.synced.wait() for i in self.informers.values()]
                try:
                    await asyncio.wait_for(asyncio.gather(*waiting), timeout=interval)
                except TimeoutError:
                    continue
                await self._first_sync()
                continue
            if changed:
                self.reconciler.mark_all()
            await asyncio.sleep(interval)

    async def _first_sync(self) -> None:
        with contextlib.suppress(ApiError):
            primed = await self.recorder.prime(self._scopes())
            log.info("found %d event series written before", primed)
        self.started = True
        settle_memory()  # the caches just filled are long-lived
        if self.elector is None or self.elector.is_leader:
            self._leadership(True)
        log.info("caches synced (%d informers)", len(self.informers))

    async def run(self) -> int:
        """Run until ``stop()``; 0 on a clean shutdown."""
        await self._start_servers()
        loops = [self._discovery_loop(), self.reconciler.run(), self.recorder.run()]
        if self.elector is not None:
            loops.append(self.elector.run())
        self._tasks = [asyncio.create_task(c) for c in loops]
        stopper = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait([stopper, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        code = 0
        for t in done:
            if t is not stopper and t.exception() is not None:
                log.error("controller loop failed: %r", t.exception(), exc_info=t.exception())
                code = 1
        await self.shutdown()
        return code

    async def shutdown(self) -> None:
        self.reconciler.leading = False
        if self.recorder.enabled:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.recorder.drain(), timeout=2.0)
        self.recorder.enabled = False
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []
        for inf in self.informers.values():
            await inf.stop()
        for server in self.servers:
            await server.close()
        self.servers = []


__all__ = ["Controller", "ControllerConfig", "default_identity", "default_namespace"]
