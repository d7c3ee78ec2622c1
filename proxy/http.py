"""The HTTP/1.1 side facing clients: parse, harden, decide, forward, stream back.

``HTTPDownstream`` is one client connection (keep-alive, pipelined requests answered in order).
``Exchange`` is one request on it, from its first byte to the end of its response. Per request:

1. parse with httptools (llhttp, strict: it already rejects ``Content-Length`` with
   ``Transfer-Encoding``, two ``Content-Length`` headers, bad chunking, obs-fold and bare LF),
   and add the checks llhttp leaves to us: a transfer coding other than ``chunked``, a missing or
   repeated ``Host``, limits on the request line and on header count and size;
2. normalise the path (``proxy.paths``): what is matched is what is forwarded;
3. find the destination: the Service whose cluster IP and port the client dialed, or, on the
   ``--http-listen`` listener, the Service the ``Host`` header names;
4. ask the active config for the decision (``smi_bridge.semantics`` via a cache), pick a backend
   Service by smooth weighted round robin, and enforce that backend's ``allowed``: a denied
   request gets 403 and a body naming what was missing;
5. pick an endpoint of that Service and stream the request to it over a pooled keep-alive
   connection; stream the response back with its status, headers and body unchanged (only
   hop-by-hop headers belong to one hop).

Bodies are streamed both ways with back-pressure (reading pauses on the side whose peer is not
draining); nothing buffers a whole body. What one upstream read produces (usually the whole
response head and body) is written to the client in one send.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import cast

import httptools

from proxy.balance import EndpointRing, Upstream
from proxy.config import NO_ENDPOINTS, ActiveConfig
from proxy.dataplane import DataPlane
from proxy.identity import identity_from_certificate, parse_header_identity
from proxy.paths import BadPath, normalise
from proxy.upstream import UpstreamConnection, connect
from smi_bridge.ir import Identity

log = logging.getLogger("smi-proxy")

# Request headers that belong to the client's hop; the proxy sets its own framing upstream.
_REQUEST_HOP_BY_HOP = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade", b"transfer-encoding")
)
_HOST = b"host"
_CONTENT_LENGTH = b"content-length"
_TRANSFER_ENCODING = b"transfer-encoding"
_CONNECTION = b"connection"
_EXPECT = b"expect"

_PAUSE_PIPELINE = 1
_PAUSE_BODY_BUFFER = 2
_PAUSE_UPSTREAM = 4
_BODY_BUFFER_LIMIT = 256 * 1024

_REASONS = {
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    408: b"Request Timeout",
    413: b"Content Too Large",
    414: b"URI Too Long",
    417: b"Expectation Failed",
    431: b"Request Header Fields Too Large",
    501: b"Not Implemented",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}
_METHODS: dict[bytes, str] = {}


class _Reject(Exception):
    """Raised inside a parser callback to stop parsing; the status is on the connection."""


class Exchange:
    """One request and its response."""

    __slots__ = (
        "body_buffer",
        "body_done",
        "body_sent",
        "buffered",
        "cfg",
        "chunked",
        "close_after",
        "conn",
        "connection_tokens",
        "content_length",
        "deadline",
        "denied",
        "down_chunked",
        "endpoint",
        "expect_continue",
        "finished",
        "head_sent",
        "header_bytes",
        "headers",
        "host",
        "host_count",
        "http11",
        "identity_value",
        "interim",
        "keep_alive",
        "labels",
        "match_headers",
        "method",
        "no_body_response",
        "out",
        "path",
        "query",
        "ring",
        "started",
        "status",
        "upstream",
        "upstream_reusable",
        "url",
    )

    def __init__(self, conn: HTTPDownstream, cfg: ActiveConfig) -> None:
        self.conn = conn
        self.cfg = cfg
        self.url = b""
        self.headers: list[bytes] = []  # "name: value\r\n" lines to forward
        self.header_bytes = 0
        self.host: bytes | None = None
        self.host_count = 0
        self.content_length: bytes | None = None
        self.chunked = False
        self.expect_continue = False
        self.identity_value: bytes | None = None
        self.connection_tokens: list[bytes] = []
        self.match_headers: list[tuple[str, str]] = []
        self.method = b""
        self.http11 = True
        self.keep_alive = True
        self.path = b""
        self.query = b""
        self.body_done = False
        self.body_buffer: list[bytes] | None = []
        self.buffered = 0
        self.body_sent = False
        self.upstream: UpstreamConnection | None = None
        self.upstream_reusable = False
        self.endpoint: Upstream | None = None
        self.ring: EndpointRing | None = None
        self.status = 0
        self.interim = False
        self.head_sent = False
        self.out: list[bytes] | None = None  # response bytes gathered during one upstream read
        self.down_chunked = False
        self.no_body_response = False
        self.close_after = False
        self.denied = False
        self.finished = False
        self.started = 0.0
        self.deadline = 0.0
        # source ns, source workload, source sa, dest ns, dest service, backend, dest workload, dest pod
        self.labels: tuple[str, str, str, str, str, str, str, str] = ("", "", "", "", "", "", "", "")

    # --- request side -----------------------------------------------------------------------------

    def request_body(self, chunk: bytes) -> None:
        if self.finished:
            return  # answered already; the rest of the body is read and dropped
        buffer = self.body_buffer
        if buffer is None:
            upstream = self.upstream
            if upstream is not None:
                self.body_sent = True
                if self.chunked:
                    upstream.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                else:
                    upstream.write(chunk)
            return
        buffer.append(chunk)
        self.buffered += len(chunk)
        if self.buffered > _BODY_BUFFER_LIMIT:
            self.conn.pause(_PAUSE_BODY_BUFFER, True)

    def request_complete(self) -> None:
        self.body_done = True
        if self.body_buffer is None and self.upstream is not None and self.chunked:
            self.upstream.write(b"0\r\n\r\n")

    # --- forwarding -------------------------------------------------------------------------------

    def forward(self, endpoint: Upstream, ring: EndpointRing) -> None:
        plane = self.conn.plane
        self.endpoint = endpoint
        self.ring = ring
        self.deadline = self.started + plane.limits.response_timeout
        if self.expect_continue and self.http11:
            self.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        pool = endpoint.pool
        if pool is None:
            pool = endpoint.pool = plane.pool(endpoint.host, endpoint.port)
        upstream = pool.take()
        if upstream is not None:
            self.attach(upstream)
        else:
            plane.spawn(self._connect(endpoint, retries=True))

    async def _connect(self, endpoint: Upstream, retries: bool) -> None:
        plane = self.conn.plane
        candidates = [endpoint]
        if retries and self.ring is not None:
            # A connect failure sent nothing: safe to try the Service's other endpoints.
            candidates += self.ring.others(endpoint, plane.loop.time())[:2]
        for candidate in candidates:
            if self.finished:
                return
            try:
                upstream = await connect(
                    plane.loop,
                    plane.pool(candidate.host, candidate.port),
                    candidate,
                    plane.limits.connect_timeout,
                )
            except (OSError, TimeoutError) as exc:
                EndpointRing.failed(candidate, plane.loop.time())
                log.debug("connect to %s:%d failed: %r", candidate.host, candidate.port, exc)
                continue
            if self.finished:
                upstream.close()
                return
            self.endpoint = candidate
            self._set_destination_pod(candidate)
            self.attach(upstream)
            return
        # A connect timeout is a "connect" failure too: no request reached the upstream.
        self.fail("connect", 503, "upstream connect failed")

    def attach(self, upstream: UpstreamConnection) -> None:
        upstream.start(self)
        self.upstream = upstream
        parts = [self.method, b" ", self.path, self.query, b" HTTP/1.1\r\n"]
        tokens = self.connection_tokens
        if tokens:
            # Headers the client named in Connection belong to its hop only.
            parts += [line for line in self.headers if line.split(b":", 1)[0].lower() not in tokens]
        else:
            parts += self.headers
        if self.host is None:
            parts.append(b"host: %b\r\n" % self.default_host())
        if self.chunked:
            parts.append(b"transfer-encoding: chunked\r\n")
        parts.append(b"\r\n")
        buffer = self.body_buffer
        self.body_buffer = None
        if buffer:
            self.body_sent = True
            if self.chunked:
                parts += (b"%x\r\n%b\r\n" % (len(c), c) for c in buffer)
            else:
                parts += buffer
        if self.body_done and self.chunked:
            parts.append(b"0\r\n\r\n")
        upstream.write(b"".join(parts))
        if self.buffered > _BODY_BUFFER_LIMIT:
            self.conn.pause(_PAUSE_BODY_BUFFER, False)
        if self.conn.write_paused:
            upstream.pause_reading(True)

    def default_host(self) -> bytes:
        _, _, _, ns, svc, _, _, _ = self.labels
        return f"{svc}.{ns}.svc.{self.cfg.cluster_domain}".encode()

    def _set_destination_pod(self, endpoint: Upstream) -> None:
        labels = self.labels
        self.labels = (*labels[:6], endpoint.workload, endpoint.pod)

    # --- response side (ResponseSink) ----------------------------------------------------------------

    def upstream_head(
        self,
        status: int,
        reason: bytes,
        block: bytes,
        chunked: bool,
        has_length: bool,
        keep_alive: bool,
    ) -> None:
        if self.finished:
            return
        conn = self.conn
        if 100 <= status < 200:
            self.interim = True
            if status != 100 and status != 101 and self.http11:
                self.emit(b"HTTP/1.1 %d %b\r\n%b\r\n" % (status, reason, block))
            return
        if self.endpoint is not None:
            EndpointRing.succeeded(self.endpoint)
        self.status = status
        self.upstream_reusable = keep_alive
        head_request = self.method == b"HEAD"
        no_body = head_request or status == 204 or status == 304
        self.no_body_response = no_body
        if not self.keep_alive or conn.draining or conn.plane.draining:
            self.close_after = True
        if not no_body and (chunked or not has_length):
            # Chunked, or delimited by the upstream closing: re-chunk for an HTTP/1.1 client.
            if self.http11:
                self.down_chunked = True
            else:
                self.close_after = True  # an HTTP/1.0 client reads to the end of the connection
        parts = [b"HTTP/1.1 %d %b\r\n" % (status, reason), block]
        if self.down_chunked:
            parts.append(b"transfer-encoding: chunked\r\n")
        if self.close_after:
            parts.append(b"connection: close\r\n")
        elif not self.http11:
            parts.append(b"connection: keep-alive\r\n")
        parts.append(b"\r\n")
        self.emit(b"".join(parts))
        self.head_sent = True
        if head_request:
            # httptools cannot be told that a HEAD response has no body: finish here and retire
            # the connection, whose parser would otherwise wait for Content-Length bytes.
            self.upstream_reusable = False
            self.finish()

    def upstream_body(self, chunk: bytes) -> None:
        if self.finished or self.interim:
            return
        if self.down_chunked:
            self.emit(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        else:
            self.emit(chunk)

    def upstream_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        if self.finished:
            return
        if self.down_chunked:
            self.emit(b"0\r\n\r\n")
        self.finish()

    def emit(self, data: bytes) -> None:
        out = self.out
        if out is None:
            self.out = [data]
        else:
            out.append(data)

    def flush(self) -> None:
        """Write what one upstream read produced in one go (head and body: one send, not two)."""
        out = self.out
        if out is not None:
            self.out = None
            self.conn.write(out[0] if len(out) == 1 else b"".join(out))
            if not self.finished:
                plane = self.conn.plane
                self.deadline = plane.loop.time() + plane.limits.idle_timeout

    def upstream_lost(self, exc: Exception | None) -> None:
        if self.finished:
            return
        upstream = self.upstream
        self.upstream = None
        self.upstream_reusable = False
        if not self.head_sent:
            if upstream is not None and self._retryable(upstream):
                endpoint = self.endpoint
                assert endpoint is not None
                self.conn.plane.spawn(self._connect(endpoint, retries=False))
                return
            self.fail("reset", 503, "upstream reset before the response")
            return
        if not self.no_body_response and self._open_ended():
            # A response without Content-Length or chunking ends when the connection does.
            if self.down_chunked:
                self.emit(b"0\r\n\r\n")
            self.finish()
            return
        self.conn.plane.metrics.upstream_failure(self.labels[5], "reset")
        self.close_after = True
        self.finish(abort=True)

    def upstream_paused(self, paused: bool) -> None:
        self.conn.pause(_PAUSE_UPSTREAM, paused)

    def _retryable(self, upstream: UpstreamConnection) -> bool:
        # Only a reused keep-alive connection that died before answering (the upstream closed it
        # as we wrote) and only when no body bytes are lost with it.
        return (
            upstream.idle_since > 0
            and not self.body_sent
            and not self.chunked
            and self.content_length in (None, b"0")
        )

    def _open_ended(self) -> bool:
        return self.down_chunked or self.close_after

    def timeout(self) -> None:
        if self.finished:
            return
        upstream = self.upstream
        if upstream is not None:
            self.upstream = None
            upstream.sink = None
            upstream.close()
        if not self.head_sent:
            self.fail("timeout", 504, "upstream response timeout")
            return
        self.conn.plane.metrics.upstream_failure(self.labels[5], "timeout")
        self.close_after = True
        self.finish(abort=True)

    def fail(self, reason: str, status: int, message: str) -> None:
        self.conn.plane.metrics.upstream_failure(self.labels[5], reason)
        self.local(status, message)

    # --- local answers and the end ------------------------------------------------------------------

    def local(self, status: int, message: str, *, close: bool = False) -> None:
        """Answer without an upstream (errors, denials); the rest of the request body is dropped."""
        if self.finished:
            return
        self.flush()  # an interim (1xx) response already gathered goes first
        if self.head_sent:
            self.close_after = True
            self.finish(abort=True)
            return
        self.status = status
        if close or not self.keep_alive or self.conn.draining or self.conn.plane.draining:
            self.close_after = True
        body = message.encode("utf-8", "replace") + b"\n"
        head = (
            b"HTTP/1.1 %d %b\r\nserver: smi-proxy\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            % (
                status,
                _REASONS.get(status, b"Error"),
                len(body),
            )
        )
        if self.close_after:
            head += b"connection: close\r\n"
        self.conn.write(head + b"\r\n" + (b"" if self.method == b"HEAD" else body))
        self.head_sent = True
        self.finish()

    def finish(self, abort: bool = False) -> None:
        if self.finished:
            return
        self.flush()
        self.finished = True
        conn = self.conn
        plane = conn.plane
        now = plane.loop.time()
        upstream = self.upstream
        if upstream is not None:
            self.upstream = None
            upstream.release(self.upstream_reusable and self.body_done, now)
        self.body_buffer = None
        if conn.paused & (_PAUSE_BODY_BUFFER | _PAUSE_UPSTREAM):
            conn.pause(_PAUSE_BODY_BUFFER | _PAUSE_UPSTREAM, False)
        if self.started:
            plane.metrics.request(self.labels, self.status, self.denied, now - self.started)
        conn.exchange_done(self, abort)


class HTTPDownstream(asyncio.Protocol):
    """One client connection on an HTTP listener."""

    __slots__ = (
        "active",
        "closed",
        "deadline",
        "draining",
        "error",
        "listener",
        "now",
        "parser",
        "paused",
        "peer_ip",
        "pending",
        "plane",
        "reading",
        "tls_uris",
        "transport",
        "write_paused",
    )

    def __init__(self, plane: DataPlane, listener: tuple[str, int] | None) -> None:
        self.plane = plane
        self.listener = listener  # the cluster IP and port; None on the Host-routing listener
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer_ip = ""
        self.tls_uris: object = None
        self.reading: Exchange | None = None
        self.active: Exchange | None = None
        self.pending: deque[Exchange] = deque()
        self.paused = 0
        self.write_paused = False
        self.deadline = 0.0
        self.now = 0.0  # the loop's clock, read once per read from the client
        self.closed = False
        self.draining = False
        self.error: tuple[int, str] | None = None

    # --- asyncio ------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are no asyncio.Transport subclass
        peer = transport.get_extra_info("peername")
        self.peer_ip = peer[0] if peer else ""
        if self.plane.identity.kind == "mtls":
            self.tls_uris = transport.get_extra_info("ssl_object")
        self.deadline = self.plane.loop.time() + self.plane.limits.header_timeout
        self.plane.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.now = self.plane.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The request asked for a protocol switch; it was answered as plain HTTP, and the
            # bytes after it belong to a protocol the proxy does not speak: close after it.
            if self.active is not None:
                self.active.close_after = True
            else:
                self.close()
        except httptools.HttpParserError as exc:
            status, message = self.error or (400, f"malformed request: {exc}")
            self.reject(status, message)

    def eof_received(self) -> bool | None:
        if self.active is not None and self.reading is None:
            # Half-close after a complete request: answer it, then close.
            self.active.close_after = True
            return True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.plane.connections.discard(self)
        for ex in (self.active, *self.pending):
            if ex is not None and not ex.finished:
                ex.finished = True
                upstream = ex.upstream
                if upstream is not None:
                    ex.upstream = None
                    upstream.sink = None
                    upstream.close()
        self.active = None
        self.pending.clear()

    def pause_writing(self) -> None:
        self.write_paused = True
        ex = self.active
        if ex is not None and ex.upstream is not None:
            ex.upstream.pause_reading(True)

    def resume_writing(self) -> None:
        self.write_paused = False
        ex = self.active
        if ex is not None and ex.upstream is not None:
            ex.upstream.pause_reading(False)

    # --- httptools callbacks ------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.closed:
            raise _Reject  # stop parsing what follows a request that closed the connection
        self.reading = Exchange(self, self.plane.config)
        self.deadline = self.now + self.plane.limits.header_timeout

    def on_url(self, url: bytes) -> None:
        ex = self.reading
        assert ex is not None
        ex.url += url
        if len(ex.url) > self.plane.limits.max_request_line:
            self.error = (414, "request target too long")
            raise _Reject

    def on_header(self, name: bytes, value: bytes) -> None:
        ex = self.reading
        assert ex is not None
        limits = self.plane.limits
        ex.header_bytes += len(name) + len(value) + 4
        if len(ex.headers) >= limits.max_headers or ex.header_bytes > limits.max_header_bytes:
            self.error = (431, "too many or too large request headers")
            raise _Reject
        lname = name.lower()
        if lname in _REQUEST_HOP_BY_HOP:
            if lname == _TRANSFER_ENCODING:
                if value.strip().lower() != b"chunked" or ex.chunked:
                    self.error = (501, "only the chunked transfer coding is accepted")
                    raise _Reject
                ex.chunked = True
            elif lname == _CONNECTION:
                for token in value.lower().split(b","):
                    token = token.strip()
                    if token and token not in (b"close", b"keep-alive"):
                        ex.connection_tokens.append(token)
            return
        if lname == _HOST:
            ex.host_count += 1
            if ex.host_count > 1:
                self.error = (400, "more than one Host header")
                raise _Reject
            ex.host = value
        elif lname == _CONTENT_LENGTH:
            ex.content_length = value
        elif lname == _EXPECT:
            if value.strip().lower() != b"100-continue":
                self.error = (417, "only 'Expect: 100-continue' is understood")
                raise _Reject
            ex.expect_continue = True
            return
        identity_header = self.plane.identity.header
        if identity_header and lname == identity_header:
            ex.identity_value = value
            return
        names = ex.cfg.header_names
        if names:
            text = lname.decode("latin-1")
            if text in names:
                ex.match_headers.append((text, value.decode("latin-1")))
        ex.headers.append(b"%b: %b\r\n" % (name, value))

    def on_headers_complete(self) -> None:
        ex = self.reading
        assert ex is not None
        parser = self.parser
        method = parser.get_method()
        ex.method = method
        ex.http11 = parser.get_http_version() == "1.1"
        ex.keep_alive = parser.should_keep_alive()
        if ex.http11 and ex.host is None:
            self.error = (400, "an HTTP/1.1 request needs a Host header")
            raise _Reject
        expects_body = ex.chunked or (ex.content_length is not None and ex.content_length.strip() != b"0")
        now = self.now
        self.deadline = now + self.plane.limits.idle_timeout if expects_body else 0.0
        ex.started = now
        if self.active is None:
            self.active = ex
            self.dispatch(ex)
        else:
            self.pending.append(ex)
            self.pause(_PAUSE_PIPELINE, True)

    def on_body(self, body: bytes) -> None:
        ex = self.reading
        assert ex is not None
        self.deadline = self.now + self.plane.limits.idle_timeout
        ex.request_body(body)

    def on_message_complete(self) -> None:
        ex = self.reading
        assert ex is not None
        self.reading = None
        self.deadline = 0.0
        ex.request_complete()
        if ex.finished and self.active is ex:
            self._next(ex)  # answered before its body was all read; now the connection moves on

    # --- one request ----------------------------------------------------------------------------------

    def dispatch(self, ex: Exchange) -> None:
        cfg = ex.cfg
        url = ex.url
        if not url.startswith(b"/"):
            if not self._absolute_form(ex):
                return
            url = ex.url
        q = url.find(b"?")
        raw_path, ex.query = (url, b"") if q < 0 else (url[:q], url[q:])
        try:
            path, ex.path = normalise(raw_path)
        except BadPath as exc:
            ex.local(400, f"bad request path: {exc}", close=True)
            return
        source, source_workload = self._source(cfg, ex)
        target = self._destination(cfg, ex, source)
        if target is None:
            return
        namespace, service, port = target
        src_ns, src_sa = (source.namespace, source.name) if source is not None else ("", "")
        method = _METHODS.get(ex.method)
        if method is None:
            method = ex.method.decode("ascii")
            _METHODS[ex.method] = method
        headers = tuple(ex.match_headers) if ex.match_headers else ()
        cached = cfg.decide(source, namespace, service, port, "http", method, path, headers)
        backends = cached.decision.backends
        if not backends:
            ex.labels = (src_ns, source_workload, src_sa, namespace, service, service, "", "")
            ex.local(503, f"no backend for Service {namespace}/{service}: {cached.decision.reason}")
            return
        picker = cached.picker
        index = picker.pick() if picker is not None else 0
        choice = backends[index]
        backend = choice.service
        if not choice.allowed:
            denied_workload = cfg.service_workloads.get((namespace, backend), "")
            ex.labels = (src_ns, source_workload, src_sa, namespace, service, backend, denied_workload, "")
            ex.denied = True
            ex.local(403, f"access denied to Service {namespace}/{backend}: {choice.reason}")
            return
        ring = cached.rings[index]
        if ring is None:
            ring = cached.rings[index] = cfg.rings.get((namespace, backend, port), NO_ENDPOINTS)
        endpoint = ring.pick(self.now)
        if endpoint is None:
            ex.labels = (src_ns, source_workload, src_sa, namespace, service, backend, "", "")
            ex.local(503, f"no ready endpoint for Service {namespace}/{backend} port {port}")
            return
        ex.labels = (
            src_ns,
            source_workload,
            src_sa,
            namespace,
            service,
            backend,
            endpoint.workload,
            endpoint.pod,
        )
        ex.forward(endpoint, ring)

    def _absolute_form(self, ex: Exchange) -> bool:
        """``http://authority/path``: the authority must agree with Host (no second opinion)."""
        url = ex.url
        if not url.lower().startswith(b"http://"):
            ex.local(400, "the request target must be a path or an http:// URL", close=True)
            return False
        rest = url[7:]
        slash = rest.find(b"/")
        authority, path = (rest, b"/") if slash < 0 else (rest[:slash], rest[slash:])
        if ex.host is None or authority.lower() != ex.host.strip().lower():
            ex.local(400, "the URL's authority and the Host header disagree", close=True)
            return False
        ex.url = path
        return True

    def _source(self, cfg: ActiveConfig, ex: Exchange) -> tuple[Identity | None, str]:
        kind = self.plane.identity.kind
        if kind == "source-address":
            found = cfg.sources_by_ip.get(self.peer_ip)
            return found if found is not None else (None, "")
        if kind == "mtls":
            identity = identity_from_certificate(self.tls_uris, cfg.trust_domain)
        else:
            value = ex.identity_value
            if not value:
                return None, ""
            parsed = cfg.header_sources.get(value)
            if parsed is None:
                identity = parse_header_identity(value.decode("latin-1"), cfg.trust_domain)
                parsed = (identity, cfg.workload_of(identity))
                if len(cfg.header_sources) < 4096:
                    cfg.header_sources[value] = parsed
            return parsed
        return identity, cfg.workload_of(identity)

    def _destination(
        self, cfg: ActiveConfig, ex: Exchange, source: Identity | None
    ) -> tuple[str, str, int] | None:
        if self.listener is not None:
            target = cfg.listeners.get(self.listener)
            if target is None or not target.http:
                ex.local(404, f"no HTTP Service is served on {self.listener[0]}:{self.listener[1]}")
                return None
            return target.namespace, target.service, target.port
        host = ex.host.decode("latin-1") if ex.host is not None else ""
        found = cfg.resolve_host(host, source.namespace if source else "")
        if found is None:
            ex.local(404, f"no Service is named by Host {host!r}")
            return None
        namespace, service, port = found
        if port is None:
            port = cfg.default_ports.get((namespace, service))
            if port is None:
                ex.local(404, f"Service {namespace}/{service} has no single HTTP port; name one in Host")
                return None
        if not cfg.http_ports.get((namespace, service, port), False):
            ex.local(404, f"Service {namespace}/{service} has no HTTP port {port}")
            return None
        return namespace, service, port

    def exchange_done(self, ex: Exchange, abort: bool) -> None:
        if self.closed:
            if self.active is ex:
                self.active = None
            return
        if abort:
            self.abort()
            return
        if ex.close_after or self.draining or self.plane.draining:
            self.close()
            return
        if ex.body_done:
            self._next(ex)
        # else: the rest of its body is read and dropped, then on_message_complete moves on

    def _next(self, ex: Exchange) -> None:
        if self.active is ex:
            self.active = None
        if self.pending:
            nxt = self.pending.popleft()
            if not self.pending:
                self.pause(_PAUSE_PIPELINE, False)
            self.active = nxt
            self.dispatch(nxt)
            return
        self.pause(_PAUSE_PIPELINE, False)
        if self.reading is None:
            self.deadline = self.plane.loop.time() + self.plane.limits.idle_timeout

    # --- connection control -----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def pause(self, reason: int, on: bool) -> None:
        before = self.paused
        self.paused = before | reason if on else before & ~reason
        if self.transport is None or self.closed:
            return
        if before == 0 and self.paused:
            self.transport.pause_reading()
        elif before and self.paused == 0:
            self.transport.resume_reading()

    def reject(self, status: int, message: str) -> None:
        """A request that cannot be parsed or breaks a limit: answer it (if in order) and close."""
        self.error = None
        ex = self.reading
        self.reading = None
        if self.closed:
            return
        if self.active is not None and self.active is not ex:
            self.close()  # it cannot be answered in order: the request before it is still running
            return
        if ex is None:
            ex = Exchange(self, self.plane.config)
        if ex.head_sent or ex.finished:
            self.abort()
            return
        self.active = ex
        ex.local(status, message, close=True)

    def check_deadline(self, now: float) -> None:
        ex = self.active
        if ex is not None and ex.deadline and now > ex.deadline and not ex.finished:
            ex.timeout()
        if self.deadline and now > self.deadline and not self.closed:
            reading = self.reading
            if reading is None and self.active is None:
                self.close()  # idle keep-alive connection
            elif reading is not None and self.active is None and not reading.started:
                self.reading = None
                self.active = reading
                reading.local(408, "request headers not received in time", close=True)
            else:
                self.abort()  # a request body that stopped coming

    def drain(self) -> None:
        self.draining = True
        if self.active is None and self.reading is None:
            self.close()

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.plane.connections.discard(self)
            self.transport.close()

    def abort(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.plane.connections.discard(self)
            self.transport.abort()
