"""The admin listener (``--admin 127.0.0.1:15000``): metrics, health, readiness, active config.

- ``GET /metrics``: Prometheus text format (``proxy.metrics``);
- ``GET /healthz``: 200 while the process serves;
- ``GET /readyz``: 200 once every listener of the active config is bound, 503 before and while
  draining;
- ``GET /config``: JSON with the active config's version, digest, source file and counts.

It is a small HTTP/1.1 server that answers one request per connection; it is not on the request
path and favours plainness over speed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import cast

import httptools

from proxy.dataplane import DataPlane


class AdminProtocol(asyncio.Protocol):
    def __init__(self, plane: DataPlane, ready: Callable[[], bool]) -> None:
        self.plane = plane
        self.ready = ready
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.answered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are no asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._send(400, b"text/plain", b"malformed request\n")

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        path = self.url.split(b"?", 1)[0]
        if method != b"GET":
            self._send(405, b"text/plain", b"only GET\n")
        elif path == b"/metrics":
            self._send(200, b"text/plain; version=0.0.4; charset=utf-8", self.plane.metrics.exposition())
        elif path == b"/healthz":
            self._send(200, b"text/plain", b"ok\n")
        elif path == b"/readyz":
            if self.ready() and not self.plane.draining:
                self._send(200, b"text/plain", b"ready\n")
            else:
                self._send(503, b"text/plain", b"not ready\n")
        elif path == b"/config":
            cfg = self.plane.config
            body = {
                "version": cfg.version,
                "digest": cfg.digest,
                "source": cfg.source,
                "accessMode": cfg.access_mode,
                "trustDomain": cfg.trust_domain,
                "clusterDomain": cfg.cluster_domain,
                "identity": str(self.plane.identity),
                "services": len(cfg.ir.services),
                "listeners": len(cfg.listeners),
                "splits": len(cfg.ir.splits),
                "targets": len(cfg.ir.targets),
                "notes": cfg.notes,
            }
            self._send(200, b"application/json", json.dumps(body, indent=2).encode() + b"\n")
        else:
            self._send(404, b"text/plain", b"not found\n")

    def _send(self, status: int, content_type: bytes, body: bytes) -> None:
        if self.answered or self.transport is None:
            return
        self.answered = True
        reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed"}.get(
            status, b"Service Unavailable"
        )
        head = b"HTTP/1.1 %d %b\r\ncontent-type: %b\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % (
            status,
            reason,
            content_type,
            len(body),
        )
        self.transport.write(head + body)
        self.transport.close()


async def start_admin(plane: DataPlane, host: str, port: int, ready: Callable[[], bool]) -> asyncio.Server:
    return await plane.loop.create_server(lambda: AdminProtocol(plane, ready), host, port, reuse_address=True)
