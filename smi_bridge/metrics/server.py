"""The ``metrics.smi-spec.io`` API over HTTP, shaped like an aggregated API server.

Paths (under ``/apis/metrics.smi-spec.io/{v1alpha1|v1alpha2}``), as smi-metrics served them:

===============================================  ==========================================
``/``                                            APIResourceList (kinds and their ``/edges``)
``/{plural}``                                    every object of a kind with traffic, all namespaces
``/namespaces/{name}`` [``/edges``]              one Namespace (cluster-scoped) [its edges]
``/namespaces/{ns}/{plural}``                    every object of a kind with traffic in ``ns``
``/namespaces/{ns}/{plural}/{name}`` [``/edges``]  one object (a TrafficSplit: one item per backend)
===============================================  ==========================================

plus ``/apis`` (APIGroupList), ``/apis/metrics.smi-spec.io`` (APIGroup), ``/healthz`` (the process
is up) and ``/readyz`` (Prometheus answers). ``?t=<Go duration>`` sets the window (default 30s);
``?at=<RFC 3339 | Unix seconds>`` (our extension) sets its end, for answers that can be reproduced.
So ``kubectl get --raw`` works through an APIService, or directly against this server.

Errors are ``Status`` objects, as the Kubernetes API writes them: 400 (bad window, selectors),
404 (unknown kind or path, a split we were not given or the cluster does not hold, a cluster that
serves no TrafficSplits, a scope this mesh cannot measure), 405 (not GET/HEAD), 503 (Prometheus
unreachable or too slow: every Prometheus call has a deadline, so the server answers, never hangs;
likewise the Kubernetes API when TrafficSplits are read from the cluster), 500 (Prometheus refused
our query). What a mesh cannot measure for an answered scope is sent as ``Warning: 299`` headers,
which kubectl prints.

The HTTP layer is a small asyncio HTTP/1.1 server (GET and HEAD, keep-alive, bounded header size,
idle timeout, no request bodies), optionally over TLS with client-certificate verification, the
way kube-aggregator talks to an extension API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from smi_bridge.metrics.kinds import KINDS, NAMESPACE, ResourceKind, UnknownKind, resolve_kind
from smi_bridge.metrics.model import API_GROUP, API_VERSIONS, DEFAULT_API_VERSION, api_version
from smi_bridge.metrics.prometheus import PrometheusUnavailable, QueryFailed
from smi_bridge.metrics.service import Scope, ScopeError, SplitsUnavailable, TrafficMetricsService
from smi_bridge.metrics.window import DEFAULT_WINDOW, Window, WindowError, parse_instant

log = logging.getLogger(__name__)

_REASONS = {
    400: "BadRequest",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "RequestEntityTooLarge",
    431: "RequestHeaderFieldsTooLarge",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
_MAX_HEAD = 32 * 1024


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    warnings: list[str] = field(default_factory=list)


def status_body(code: int, message: str) -> dict[str, Any]:
    """A ``meta/v1 Status`` failure, as the Kubernetes API server writes it."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": _REASONS.get(code, "Unknown"),
        "code": code,
    }


def _json(status: int, doc: Mapping[str, Any], warnings: list[str] | None = None) -> Response:
    return Response(status, json.dumps(doc, separators=(",", ":")).encode(), warnings=warnings or [])


def _failure(code: int, message: str) -> Response:
    return _json(code, status_body(code, message))


def api_resource_list(version: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for kind in KINDS.values():
        entry = {
            "namespaced": kind.namespaced,
            "kind": "TrafficMetrics",
            "singularName": "",
            "verbs": ["get", "list"],
        }
        if kind.plural == "trafficsplits":
            entry["verbs"] = ["get"]
        resources.append({"name": kind.plural, **entry})
        if kind.edges:
            resources.append({"name": f"{kind.plural}/edges", **entry, "verbs": ["get"]})
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": api_version(version),
        "resources": resources,
    }


def _api_group() -> dict[str, Any]:
    versions = [{"groupVersion": api_version(v), "version": v} for v in API_VERSIONS]
    preferred = {"groupVersion": api_version(DEFAULT_API_VERSION), "version": DEFAULT_API_VERSION}
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": API_GROUP,
        "versions": versions,
        "preferredVersion": preferred,
    }


class MetricsAPI:
    """Maps one GET to a ``Response``; knows nothing of sockets (tests call ``handle`` directly)."""

    def __init__(self, service: TrafficMetricsService, *, default_window: Window = DEFAULT_WINDOW) -> None:
        self.service = service
        self.default_window = default_window

    async def handle(self, method: str, target: str) -> Response:
        if method not in ("GET", "HEAD"):
            return _failure(405, f"method {method} is not allowed: the metrics API is read-only (get, list)")
        parts = urlsplit(target)
        segments = [s for s in parts.path.split("/") if s]
        query = parse_qs(parts.query, keep_blank_values=True)
        if segments == ["healthz"]:
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if segments == ["readyz"]:
            if await self.service.client.ready():
                return Response(200, b"ok", "text/plain; charset=utf-8")
            return _failure(503, f"Prometheus at {self.service.client.url} is not ready")
        if segments == ["apis"]:
            return _json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_api_group()]})
        if segments[:2] != ["apis", API_GROUP]:
            return _failure(404, f"the server could not find the requested resource {parts.path!r}")
        if len(segments) == 2:
            return _json(200, _api_group())
        version = segments[2]
        if version not in API_VERSIONS:
            return _failure(404, f"{API_GROUP}/{version} is not served (served: {', '.join(API_VERSIONS)})")
        rest = segments[3:]
        if not rest:
            return _json(200, api_resource_list(version))
        try:
            scope = self._scope(rest)
            window = self._window(query)
            at = parse_instant(query["at"][0]) if query.get("at", [""])[0] else None
        except (UnknownKind, ScopeError, WindowError) as exc:
            code = exc.status if isinstance(exc, ScopeError) else 404 if isinstance(exc, UnknownKind) else 400
            return _failure(code, str(exc))
        for selector in ("labelSelector", "fieldSelector"):
            if query.get(selector, [""])[0]:
                return _failure(
                    400,
                    f"{selector} is not supported: TrafficMetrics are computed from metrics, "
                    "which do not carry the objects' labels",
                )
        try:
            answer = await self.service.answer(scope, window, at, api_version=version)
        except ScopeError as exc:
            return _failure(exc.status, str(exc))
        except (PrometheusUnavailable, SplitsUnavailable) as exc:
            return _failure(503, str(exc))
        except QueryFailed as exc:
            log.error("Prometheus refused a query: %s\n%s", exc, exc.expr)
            return _failure(500, str(exc))
        return _json(200, answer.obj.wire(version), answer.notes)

    def _scope(self, rest: list[str]) -> Scope:
        """Path segments after the version -> the question (raises on a path that is no question)."""
        if rest[0] == "namespaces":
            if len(rest) == 1:
                return Scope(NAMESPACE, None)
            if len(rest) == 2:
                return Scope(NAMESPACE, None, rest[1])
            if len(rest) == 3 and rest[2] == "edges":
                return Scope(NAMESPACE, None, rest[1], edges=True)
            namespace, kind = rest[1], self._kind(rest[2])
            if not kind.namespaced:
                raise ScopeError(f"{kind.plural} are not namespaced: ask /{kind.plural}/NAME", 404)
            if len(rest) == 3:
                return Scope(kind, namespace)
            if len(rest) == 4:
                return Scope(kind, namespace, rest[3])
            if len(rest) == 5 and rest[4] == "edges":
                return Scope(kind, namespace, rest[3], edges=True)
        elif len(rest) == 1:
            return Scope(self._kind(rest[0]), None)
        elif len(rest) == 2 and not self._kind(rest[0]).namespaced:
            return Scope(self._kind(rest[0]), None, rest[1])
        raise ScopeError(f"the server could not find the requested resource /{'/'.join(rest)}", 404)

    @staticmethod
    def _kind(plural: str) -> ResourceKind:
        kind = resolve_kind(plural)
        if kind.plural != plural:
            raise UnknownKind(plural)  # URLs use the plural, exactly
        if not kind.namespaced and kind is not NAMESPACE:
            raise UnknownKind(plural)
        return kind

    def _window(self, query: Mapping[str, list[str]]) -> Window:
        text = query.get("t", [""])[0]
        return Window.parse(text) if text else self.default_window


# --- HTTP/1.1 over asyncio ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerLimits:
    idle_timeout_s: float = 30.0
    header_timeout_s: float = 10.0
    response_deadline_s: float = 30.0  # a safety net above the Prometheus client's own deadlines


class MetricsServer:
    """``await MetricsServer(api).start(host, port)``; ``close()`` stops listening and drains."""

    def __init__(self, api: MetricsAPI, *, limits: ServerLimits = ServerLimits()) -> None:
        self.api = api
        self.limits = limits
        self._server: asyncio.Server | None = None
        self._closing = False

    async def start(
        self, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None
    ) -> tuple[str, int]:
        self._server = await asyncio.start_server(
            self._connection, host, port, ssl=ssl_context, limit=_MAX_HEAD
        )
        sock = self._server.sockets[0].getsockname()
        return str(sock[0]), int(sock[1])

    async def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            # A connection still open when the event loop ends (after close()) is cancelled; on
            # Python 3.11 asyncio then prints a traceback for the connection's task unless it ends
            # quietly.
            if not self._closing:
                raise

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = True
            while True:
                timeout = self.limits.header_timeout_s if first else self.limits.idle_timeout_s
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    await self._write(writer, _failure(431, "request header too large"), keep_alive=False)
                    return
                first = False
                request = _parse_head(head)
                if request is None:
                    await self._write(writer, _failure(400, "malformed HTTP request"), keep_alive=False)
                    return
                method, target, version, headers = request
                if headers.get("transfer-encoding") or headers.get("content-length", "0") not in ("", "0"):
                    await self._write(
                        writer, _failure(413, "request bodies are not accepted"), keep_alive=False
                    )
                    return
                try:
                    response = await asyncio.wait_for(
                        self.api.handle(method, target), self.limits.response_deadline_s
                    )
                except TimeoutError:
                    response = _failure(503, "the metrics query did not finish in time")
                except Exception:  # a bug must cost one request, not the server
                    log.exception("error answering %s %s", method, target)
                    response = _failure(500, "internal error (see the server log)")
                keep_alive = _keep_alive(version, headers)
                await self._write(writer, response, keep_alive=keep_alive, head_only=method == "HEAD")
                log.debug("%s %s -> %d", method, target, response.status)
                if not keep_alive:
                    return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _write(
        writer: asyncio.StreamWriter, response: Response, *, keep_alive: bool, head_only: bool = False
    ) -> None:
        reason = HTTPStatus(response.status).phrase
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            "Cache-Control: no-store",
            f"Connection: {'keep-alive' if keep_alive else 'close'}",
        ]
        lines += [f"Warning: 299 - {_quoted(w)}" for w in response.warnings]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not head_only:
            writer.write(response.body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]] | None:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:
        return None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1]:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None
        headers[name.lower()] = value.strip()
    return parts[0], parts[1], parts[2], headers


def _keep_alive(version: str, headers: Mapping[str, str]) -> bool:
    connection = headers.get("connection", "").lower()
    if version == "HTTP/1.0":
        return connection == "keep-alive"
    return connection != "close"


def _quoted(text: str) -> str:
    ascii_text = text.encode("ascii", "replace").decode().replace("\\", "\\\\").replace('"', '\\"')
    return f'"{ascii_text}"'


def server_ssl_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """TLS for the API; with ``client_ca`` every client must present a certificate it signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
