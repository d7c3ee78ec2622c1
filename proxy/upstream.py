"""Connections to upstream endpoints: keep-alive pools and the HTTP/1.1 response side.

One ``UpstreamPool`` per endpoint address keeps idle connections for reuse (bounded, and closed
after an idle timeout by the data plane's sweeper). An ``UpstreamConnection`` carries one
request at a time; the response is parsed with httptools only to learn its framing, and its
status, headers and body are handed to the exchange that owns the request, which streams them to
the client as they arrive. Hop-by-hop headers (``Connection``, ``Keep-Alive``,
``Transfer-Encoding`` ...) belong to one hop and are not passed on; everything else is.

A connection that the upstream closes while idle in the pool is dropped from it; a request that
meets a connection the upstream had closed just before (the keep-alive race) is retried once on a
new connection when nothing of its body has been streamed yet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import TYPE_CHECKING, Protocol, cast

import httptools

if TYPE_CHECKING:
    from proxy.balance import Upstream

# Response headers that describe one connection, not the message (RFC 9110 section 7.6.1).
RESPONSE_HOP_BY_HOP = (
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"te",
    b"trailer",
    b"upgrade",
)
_HOP_NEEDLES = tuple(b"\n" + name + b":" for name in RESPONSE_HOP_BY_HOP)


def without_hop_by_hop(lines: bytes) -> tuple[bytes, bytes]:
    """``(kept, lower)`` for header ``lines`` that start with ``\\n`` (the status line's end) and
    end with CRLF: ``kept`` is the block less its hop-by-hop lines and less the leading ``\\n``;
    ``lower`` is the lower-cased input, for further look-ups."""
    lower = lines.lower()
    cuts = []
    for needle in _HOP_NEEDLES:
        at = lower.find(needle)
        while at >= 0:
            cuts.append((at + 1, lower.find(b"\n", at + 1) + 1))
            at = lower.find(needle, at + 1)
    if not cuts:
        return lines[1:], lower
    cuts.sort()
    kept = []
    pos = 1
    for cut_start, cut_end in cuts:
        kept.append(lines[pos:cut_start])
        pos = cut_end
    kept.append(lines[pos:])
    return b"".join(kept), lower


class ResponseSink(Protocol):
    """What an upstream connection reports to (the exchange that owns the request)."""

    def upstream_head(
        self,
        status: int,
        reason: bytes,
        block: bytes,
        chunked: bool,
        has_length: bool,
        keep_alive: bool,
    ) -> None: ...

    def upstream_body(self, chunk: bytes) -> None: ...

    def upstream_complete(self) -> None: ...

    def upstream_lost(self, exc: Exception | None) -> None: ...

    def upstream_paused(self, paused: bool) -> None: ...

    def flush(self) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    """One connection to an endpoint; carries one exchange at a time.

    httptools parses the response for its framing only. The status line and header block are
    taken from the raw bytes when the head is complete instead of one Python callback per
    header: the block is passed on as it came, less the hop-by-hop lines cut out of it.
    """

    __slots__ = (
        "_raw",
        "_scan",
        "closed",
        "idle_since",
        "parser",
        "paused",
        "pool",
        "sink",
        "transport",
        "used",
    )

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.sink: ResponseSink | None = None
        self.closed = False
        self.paused = False  # reading paused because the client is not draining
        self.used = False  # True once it has carried a request (a reused connection may be stale)
        self.idle_since = 0.0
        self._raw = b""  # bytes of the response read while its head is incomplete
        self._scan = 0  # where the next head starts in ``_raw`` (after an interim 1xx head)

    # --- asyncio ----------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are no asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is None:
            # Bytes while idle (or after a finished response) are a protocol error upstream.
            self.close()
            return
        if self._raw is not None:
            self._raw = self._raw + data if self._raw else data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.sink = None
            self.close()
            sink.upstream_lost(exc)
            return
        if self.sink is sink:  # a finished exchange has flushed and let go already
            sink.flush()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        sink = self.sink
        if sink is not None:
            self.sink = None
            sink.upstream_lost(exc)

    def pause_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_paused(True)

    def resume_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_paused(False)

    # --- httptools callbacks -----------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        raw = self._raw
        start = self._scan
        end = raw.find(b"\r\n\r\n", start)
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self._scan = end + 4  # a final response follows the interim one
        else:
            self._raw = None  # type: ignore[assignment]  # no more head bytes to keep
            self._scan = 0
        if self.sink is None:
            return
        line_end = raw.find(b"\r\n", start)
        status_line = raw[start:line_end]
        reason = status_line.split(b" ", 2)[2] if status_line.count(b" ") >= 2 else b""
        # Every header line with its CRLF, after the "\n" that ends the status line.
        block, lower = without_hop_by_hop(raw[line_end + 1 : end + 2])
        chunked = b"\ntransfer-encoding:" in lower
        has_length = b"\ncontent-length:" in lower
        self.sink.upstream_head(status, reason, block, chunked, has_length, self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        if self.sink is not None:
            self.sink.upstream_body(body)

    def on_message_complete(self) -> None:
        sink = self.sink
        if sink is not None:
            sink.upstream_complete()

    # --- use --------------------------------------------------------------------------------------

    def start(self, sink: ResponseSink) -> None:
        self.sink = sink
        self.used = True
        self._raw = b""
        self._scan = 0

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def pause_reading(self, paused: bool) -> None:
        if self.transport is not None and not self.closed and paused != self.paused:
            self.paused = paused
            if paused:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def release(self, reusable: bool, now: float) -> None:
        """The exchange is done with this connection: back to the pool, or closed."""
        self.sink = None
        if reusable and not self.closed:
            self.idle_since = now
            self.pool.put(self)
        else:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.pool.forget(self)
            if self.transport is not None:
                self.transport.close()


class UpstreamPool:
    """Idle keep-alive connections to one endpoint address."""

    __slots__ = ("address", "idle", "max_idle")

    def __init__(self, address: tuple[str, int], max_idle: int) -> None:
        self.address = address
        self.idle: deque[UpstreamConnection] = deque()
        self.max_idle = max_idle

    def take(self) -> UpstreamConnection | None:
        idle = self.idle
        while idle:
            conn = idle.pop()  # most recently used first: the one least likely to be stale
            if not conn.closed:
                return conn
        return None

    def put(self, conn: UpstreamConnection) -> None:
        if len(self.idle) >= self.max_idle:
            conn.close()
            return
        conn.pause_reading(False)
        self.idle.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)

    def expire(self, older_than: float) -> None:
        while self.idle and self.idle[0].idle_since < older_than:
            self.idle.popleft().close()

    def close_all(self) -> None:
        while self.idle:
            self.idle.popleft().close()


async def connect(
    loop: asyncio.AbstractEventLoop, pool: UpstreamPool, endpoint: Upstream, timeout: float
) -> UpstreamConnection:
    """A new connection to ``endpoint``; raises ``OSError`` or ``TimeoutError``."""
    async with asyncio.timeout(timeout):
        _, protocol = await loop.create_connection(
            lambda: UpstreamConnection(pool), endpoint.host, endpoint.port
        )
    return protocol
