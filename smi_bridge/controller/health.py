"""``/metrics``, ``/healthz`` and ``/readyz`` over a minimal asyncio HTTP/1.1 server.

The controller answers probes and scrapes only: GET, tiny responses, ``Connection: close``. A
whole web framework would be the larger dependency by far, and prometheus-client's own server runs
in a thread that cannot see the event loop's state.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

Route = Callable[[], tuple[int, str, bytes]]  # -> (status, content type, body)

_REASONS = {
    200: "OK",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def parse_address(text: str) -> tuple[str, int] | None:
    """``host:port``, ``:port`` (all interfaces) or ``0``/empty (disabled)."""
    text = text.strip()
    if text in ("", "0"):
        return None
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError(f"address {text!r}: expected HOST:PORT or :PORT")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"address {text!r}: port {port!r} is not a number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"address {text!r}: port out of range")
    return (host.strip("[]") or "0.0.0.0", number)


class ProbeServer:
    """Serves ``routes`` (path -> handler) on one address."""

    def __init__(self, host: str, port: int, routes: Mapping[str, Route]) -> None:
        self.host, self.port = host, port
        self.routes = dict(routes)
        self._server: asyncio.Server | None = None

    async def start(self) -> ProbeServer:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                status, ctype, body = 405, "text/plain", b"method not allowed\n"
            elif path in self.routes:
                status, ctype, body = self.routes[path]()
            else:
                status, ctype, body = 404, "text/plain", b"not found\n"
            head_out = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            writer.write(head_out + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ConnectionError,
            UnicodeError,
        ):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


__all__ = ["ProbeServer", "Route", "parse_address"]
