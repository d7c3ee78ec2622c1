"""The running data plane: the active config, limits, upstream pools, timers and draining.

``DataPlane`` is what every connection holds on to. ``config`` is swapped by plain assignment on
reload (one reference store on the loop thread, so it is atomic); a request reads it once when
its headers are complete and keeps that ``ActiveConfig`` to the end.

Timeouts are not one timer per request: each connection keeps a deadline and one sweeper task
looks at all of them a few times per shortest timeout. That keeps timer handles off the request
path and still cuts off a slowloris client within a fraction of the header timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from proxy.config import ActiveConfig
from proxy.identity import IdentityMode
from proxy.metrics import ProxyMetrics
from proxy.upstream import UpstreamPool

log = logging.getLogger("smi-proxy")


@dataclass(frozen=True)
class Limits:
    """Sizes and timeouts (seconds); every one is a command-line option of ``smi-proxy``."""

    max_request_line: int = 8192
    max_header_bytes: int = 32768
    max_headers: int = 100
    header_timeout: float = 10.0
    idle_timeout: float = 60.0
    connect_timeout: float = 2.0
    response_timeout: float = 30.0
    upstream_idle_timeout: float = 30.0
    drain_timeout: float = 10.0
    max_idle_per_upstream: int = 256

    def sweep_interval(self) -> float:
        shortest = min(self.header_timeout, self.idle_timeout, self.response_timeout, self.connect_timeout)
        return max(0.02, min(1.0, shortest / 4))


class Timed(Protocol):
    """A connection the sweeper watches."""

    def check_deadline(self, now: float) -> None: ...

    def drain(self) -> None: ...


class DataPlane:
    def __init__(
        self, config: ActiveConfig, identity: IdentityMode, limits: Limits, metrics: ProxyMetrics
    ) -> None:
        self.config = config
        self.identity = identity
        self.limits = limits
        self.metrics = metrics
        self.pools: dict[tuple[str, int], UpstreamPool] = {}
        self.connections: set[Timed] = set()
        self.draining = False
        self.loop = asyncio.get_running_loop()  # created inside the running loop, by ``serve``
        self._sweeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def pool(self, host: str, port: int) -> UpstreamPool:
        key = (host, port)
        pool = self.pools.get(key)
        if pool is None:
            pool = UpstreamPool(key, self.limits.max_idle_per_upstream)
            self.pools[key] = pool
        return pool

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task the plane holds on to (the loop keeps only weak references)."""
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start(self) -> None:
        self._sweeper = self.loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        interval = self.limits.sweep_interval()
        while True:
            await asyncio.sleep(interval)
            now = self.loop.time()
            for conn in list(self.connections):
                conn.check_deadline(now)
            expired = now - self.limits.upstream_idle_timeout
            for pool in self.pools.values():
                pool.expire(expired)

    async def drain(self) -> None:
        """Let in-flight requests finish (up to the drain timeout), closing idle connections."""
        self.draining = True
        for conn in list(self.connections):
            conn.drain()
        deadline = self.loop.time() + self.limits.drain_timeout
        while self.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.02)
        if self.connections:
            log.warning(
                "drain timeout: closing %d connections with requests in flight", len(self.connections)
            )
        for pool in self.pools.values():
            pool.close_all()
        if self._sweeper is not None:
            self._sweeper.cancel()
