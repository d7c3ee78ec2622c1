"""The listening sockets: one per Service port on its cluster IP, plus the Host-routing one.

Binding the Service's ``clusterIP:port`` makes the proxy behave like kube-proxy on a test bed
whose cluster IPs are in 127.0.0.0/8: the destination of a connection is the address the client
dialed (its socket name), with no Host header or SNI involved. A port whose ``appProtocol`` or
name says HTTP is served by ``proxy.http``; every other TCP port by ``proxy.tcp``.

``ListenerSet.reconcile`` makes the bound set match a config: it binds what is new, closes what
is gone (open connections on it finish) and rebinds a port that switched between HTTP and TCP.
A port that cannot be bound is retried in the background; ``/readyz`` stays not-ready until
every listener of the active config is bound.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
from dataclasses import dataclass

from proxy.config import ActiveConfig
from proxy.dataplane import DataPlane
from proxy.http import HTTPDownstream
from proxy.tcp import TCPDownstream

log = logging.getLogger("smi-proxy")

BACKLOG = 4096


@dataclass
class Bound:
    server: asyncio.Server
    http: bool


class ListenerSet:
    def __init__(
        self, plane: DataPlane, tls: ssl.SSLContext | None, http_listen: tuple[str, int] | None
    ) -> None:
        self.plane = plane
        self.tls = tls
        self.http_listen = http_listen
        self.bound: dict[tuple[str, int], Bound] = {}
        self.failed: dict[tuple[str, int], str] = {}
        self.host_router: asyncio.Server | None = None
        self._retry: asyncio.Task[None] | None = None
        self._wanted: dict[tuple[str, int], bool] = {}

    @property
    def ready(self) -> bool:
        if self.http_listen is not None and self.host_router is None:
            return False
        return not self.failed and all(address in self.bound for address in self._wanted)

    async def start_host_router(self) -> None:
        if self.http_listen is None:
            return
        host, port = self.http_listen
        plane = self.plane
        self.host_router = await plane.loop.create_server(
            lambda: HTTPDownstream(plane, None), host, port, ssl=self.tls, reuse_address=True, backlog=BACKLOG
        )

    async def reconcile(self, cfg: ActiveConfig) -> None:
        wanted = {address: target.http for address, target in cfg.listeners.items()}
        self._wanted = wanted
        for address, bound in list(self.bound.items()):
            if wanted.get(address) != bound.http:
                bound.server.close()
                del self.bound[address]
        self.failed = {a: why for a, why in self.failed.items() if a in wanted}
        for address, http in sorted(wanted.items()):
            if address not in self.bound:
                await self._bind(address, http)
        if self.failed and (self._retry is None or self._retry.done()):
            self._retry = self.plane.loop.create_task(self._retry_failed())

    async def _bind(self, address: tuple[str, int], http: bool) -> None:
        plane = self.plane
        host, port = address
        try:
            if http:
                server = await plane.loop.create_server(
                    lambda: HTTPDownstream(plane, address),
                    host,
                    port,
                    ssl=self.tls,
                    reuse_address=True,
                    backlog=BACKLOG,
                )
            else:
                server = await plane.loop.create_server(
                    lambda: TCPDownstream(plane, address),
                    host,
                    port,
                    ssl=self.tls,
                    reuse_address=True,
                    backlog=BACKLOG,
                )
        except OSError as exc:
            why = errno.errorcode.get(exc.errno or 0, str(exc))
            if self.failed.get(address) != why:
                log.error("cannot listen on %s:%d (%s): %s", host, port, "http" if http else "tcp", exc)
            self.failed[address] = why
            return
        self.failed.pop(address, None)
        self.bound[address] = Bound(server, http)
        log.debug("listening on %s:%d (%s)", host, port, "http" if http else "tcp")

    async def _retry_failed(self) -> None:
        delay = 0.5
        while self.failed:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
            for address in list(self.failed):
                http = self._wanted.get(address)
                if http is None:
                    self.failed.pop(address, None)
                    continue
                await self._bind(address, http)

    def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        for bound in self.bound.values():
            bound.server.close()
        self.bound.clear()
        if self.host_router is not None:
            self.host_router.close()
