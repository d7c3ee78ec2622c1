"""The TCP side: connections to non-HTTP Service ports, decided once and then relayed.

A connection is decided as soon as it is accepted (``Request(protocol="tcp")``: source
identity, destination Service and port). Reading from the client stays paused until the decision
allows it and the upstream connection is up, so a denied connection is closed before a single
byte of it flows anywhere. After that, bytes are relayed both ways with back-pressure, and
half-closes are passed on.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from proxy.balance import EndpointRing, Upstream
from proxy.dataplane import DataPlane
from proxy.identity import identity_from_certificate
from proxy.metrics import TCPKey
from smi_bridge.ir import Identity

log = logging.getLogger("smi-proxy")


class TCPUpstream(asyncio.Protocol):
    __slots__ = ("down", "transport")

    def __init__(self, down: TCPDownstream) -> None:
        self.down = down
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are no asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        self.down.send(data)

    def eof_received(self) -> bool | None:
        self.down.upstream_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.down.close()

    def pause_writing(self) -> None:
        self.down.pause_client(True)

    def resume_writing(self) -> None:
        self.down.pause_client(False)


class TCPDownstream(asyncio.Protocol):
    """One client connection on a TCP listener."""

    __slots__ = ("_received_key", "_sent_key", "closed", "listener", "plane", "transport", "upstream")

    def __init__(self, plane: DataPlane, listener: tuple[str, int]) -> None:
        self.plane = plane
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self.upstream: TCPUpstream | None = None
        self.closed = False
        self._sent_key: tuple[TCPKey, str] | None = None
        self._received_key: tuple[TCPKey, str] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are no asyncio.Transport subclass
        self.transport.pause_reading()
        self.plane.connections.add(self)
        self._decide(self.transport)

    def _decide(self, transport: asyncio.Transport) -> None:
        plane = self.plane
        cfg = plane.config
        target = cfg.listeners.get(self.listener)
        if target is None or target.http:
            self.close()
            return
        source: Identity | None = None
        workload = ""
        kind = plane.identity.kind
        if kind == "source-address":
            peer = transport.get_extra_info("peername")
            found = cfg.sources_by_ip.get(peer[0] if peer else "")
            if found is not None:
                source, workload = found
        elif kind == "mtls":
            source = identity_from_certificate(transport.get_extra_info("ssl_object"), cfg.trust_domain)
            workload = cfg.workload_of(source)
        # header identity: a TCP connection has no headers, so its caller is unauthenticated.
        ns, svc, port = target.namespace, target.service, target.port
        cached = cfg.decide(source, ns, svc, port, "tcp", "GET", "/", ())
        backends = cached.decision.backends
        if not backends:
            log.info("TCP %s/%s:%d: no backend (%s); closing", ns, svc, port, cached.decision.reason)
            self.close()
            return
        choice = backends[cached.picker.pick()] if cached.picker is not None else backends[0]
        src_ns = source.namespace if source else ""
        if not choice.allowed:
            denied_workload = cfg.service_workloads.get((ns, choice.service), "")
            plane.metrics.tcp_connection((src_ns, workload, ns, svc, choice.service, denied_workload, "true"))
            log.debug("TCP %s/%s:%d from %s denied: %s", ns, svc, port, source, choice.reason)
            self.close()
            return
        ring = cfg.rings.get((ns, choice.service, port))
        endpoint = ring.pick(plane.loop.time()) if ring is not None else None
        if endpoint is None or ring is None:
            log.info("TCP %s/%s:%d: no ready endpoint of %s; closing", ns, svc, port, choice.service)
            self.close()
            return
        key: TCPKey = (src_ns, workload, ns, svc, choice.service, endpoint.workload, "false")
        plane.metrics.tcp_connection(key)
        self._sent_key = (key, "sent")
        self._received_key = (key, "received")
        plane.spawn(self._connect(ring, endpoint, choice.service))

    async def _connect(self, ring: EndpointRing, endpoint: Upstream, backend: str) -> None:
        plane = self.plane
        for candidate in [endpoint, *ring.others(endpoint, plane.loop.time())[:2]]:
            if self.closed:
                return
            try:
                async with asyncio.timeout(plane.limits.connect_timeout):
                    _, upstream = await plane.loop.create_connection(
                        lambda: TCPUpstream(self), candidate.host, candidate.port
                    )
            except (OSError, TimeoutError):
                EndpointRing.failed(candidate, plane.loop.time())
                continue
            EndpointRing.succeeded(candidate)
            if self.closed:
                if upstream.transport is not None:
                    upstream.transport.close()
                return
            self.upstream = upstream
            if self.transport is not None:
                self.transport.resume_reading()
            return
        plane.metrics.upstream_failure(backend, "connect")
        self.close()

    def data_received(self, data: bytes) -> None:
        upstream = self.upstream
        if upstream is not None and upstream.transport is not None:
            upstream.transport.write(data)
            key = self._received_key
            if key is not None:
                tcp_bytes = self.plane.metrics.tcp_bytes
                tcp_bytes[key] = tcp_bytes.get(key, 0) + len(data)

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)
            key = self._sent_key
            if key is not None:
                tcp_bytes = self.plane.metrics.tcp_bytes
                tcp_bytes[key] = tcp_bytes.get(key, 0) + len(data)

    def eof_received(self) -> bool | None:
        upstream = self.upstream
        if upstream is not None and upstream.transport is not None and upstream.transport.can_write_eof():
            upstream.transport.write_eof()
            return True
        return None

    def upstream_eof(self) -> None:
        if self.transport is not None and not self.closed and self.transport.can_write_eof():
            self.transport.write_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.plane.connections.discard(self)
        upstream = self.upstream
        if upstream is not None and upstream.transport is not None:
            upstream.transport.close()

    def pause_writing(self) -> None:
        self._pause_upstream(True)

    def resume_writing(self) -> None:
        self._pause_upstream(False)

    def _pause_upstream(self, paused: bool) -> None:
        upstream = self.upstream
        if upstream is not None and upstream.transport is not None:
            if paused:
                upstream.transport.pause_reading()
            else:
                upstream.transport.resume_reading()

    def pause_client(self, paused: bool) -> None:
        if self.transport is not None and not self.closed:
            if paused:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def check_deadline(self, now: float) -> None:
        return None  # relayed TCP streams may stay quiet for as long as their peers like

    def drain(self) -> None:
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.plane.connections.discard(self)
            if self.transport is not None:
                self.transport.close()
