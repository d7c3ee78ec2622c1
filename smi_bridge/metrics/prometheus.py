"""A small async client for Prometheus' instant-query API, with errors that say what went wrong.

Exception tree::

    PrometheusError                 (base; carries the Prometheus URL)
    ├── PrometheusUnavailable       nothing useful came back: connection refused, timeout, 503,
    │                               a proxy's HTML error page -> the server answers 503, query exits 3
    └── QueryFailed                 Prometheus answered and refused the query (400/422 + its error)

Every call has a deadline (``Timeouts``: connect and whole-request), so a Prometheus that accepts
the connection and never answers costs at most ``Timeouts.request`` seconds, never a hang. The
query's own ``timeout`` parameter is set just below that so Prometheus gives up first and says so.
Queries are POSTed as a form: they are long (see ``queries``) and would overflow URL limits.

The calls are async (the server and the CLI gather a scope's queries concurrently), but the HTTP
work is httpx's *sync* client in a small thread pool. httpx's async client serialises concurrent
requests on anyio locks in its connection pool (encode/httpx#3215); for the six concurrent
queries of one answer we measured it about three times slower than the same requests from
threads. A thread blocked on a silent Prometheus is released by the request deadline.
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx


class PrometheusError(Exception):
    def __init__(self, url: str, message: str) -> None:
        super().__init__(message)
        self.url = url
        self.message = message

    def __str__(self) -> str:
        return self.message


class PrometheusUnavailable(PrometheusError):
    """Prometheus could not be reached or did not answer in time."""


class QueryFailed(PrometheusError):
    """Prometheus refused a query (a bug in our PromQL, or a Prometheus too old for it)."""

    def __init__(self, url: str, message: str, expr: str, error_type: str = "") -> None:
        super().__init__(url, message)
        self.expr = expr
        self.error_type = error_type


@dataclass(frozen=True)
class Timeouts:
    connect: float = 2.0
    request: float = 10.0  # the whole exchange, per query


DEFAULT_TIMEOUTS = Timeouts()


@dataclass(frozen=True)
class Sample:
    labels: Mapping[str, str]
    value: float

    @property
    def finite(self) -> bool:
        return math.isfinite(self.value)


class PrometheusClient:
    """``await client.query(expr, at)`` -> the instant vector at ``at`` (Unix seconds)."""

    def __init__(
        self,
        url: str,
        *,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 32,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Prometheus URL {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self.timeouts = timeouts
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeouts.request, connect=timeouts.connect),
            # Building a verifying TLS context costs ~0.1 s; a plain-HTTP Prometheus needs none.
            verify=self.url.startswith("https://"),
            transport=transport,
            headers=dict(headers or {}),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self._threads = ThreadPoolExecutor(max_workers=max_connections, thread_name_prefix="prometheus")

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        # Requests still in flight end by their own deadline; nothing new is started.
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    async def query(self, expr: str, at: float) -> list[Sample]:
        """The instant vector of ``expr`` evaluated at ``at``."""
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(self._threads, self._post, expr, at)
        return self._vector(response, expr)

    def _post(self, expr: str, at: float) -> httpx.Response:
        # Prometheus aborts the evaluation itself a little before our deadline, with a clear error.
        server_timeout_ms = max(round(self.timeouts.request * 900), 100)
        form = {"query": expr, "time": f"{at:.3f}", "timeout": f"{server_timeout_ms}ms"}
        try:
            return self._client.post(f"{self.url}/api/v1/query", data=form)
        except httpx.TimeoutException:
            raise PrometheusUnavailable(
                self.url, f"Prometheus at {self.url} did not answer within {self.timeouts.request:g}s"
            ) from None
        except httpx.HTTPError as exc:
            raise PrometheusUnavailable(
                self.url, f"Prometheus at {self.url} is unreachable: {_reason(exc)}"
            ) from None

    async def ready(self) -> bool:
        """Whether Prometheus says it is ready to serve queries (``/-/ready``)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._ready)

    def _ready(self) -> bool:
        try:
            return self._client.get(f"{self.url}/-/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def _vector(self, response: httpx.Response, expr: str) -> list[Sample]:
        body = _json(response)
        status = response.status_code
        if body is None or not isinstance(body, dict):
            if status >= 500 or status in (401, 403, 404):
                raise PrometheusUnavailable(
                    self.url, f"{self.url} answered HTTP {status} without a Prometheus API response"
                )
            raise QueryFailed(self.url, f"{self.url} answered HTTP {status} with an unreadable body", expr)
        if body.get("status") != "success":
            error_type = str(body.get("errorType", ""))
            error = str(body.get("error", "unknown error"))
            if status == 503 or error_type in ("timeout", "canceled", "unavailable"):
                raise PrometheusUnavailable(self.url, f"Prometheus at {self.url} could not answer: {error}")
            raise QueryFailed(
                self.url, f"Prometheus refused the query ({error_type or status}): {error}", expr, error_type
            )
        data = body.get("data") or {}
        if data.get("resultType") != "vector":
            raise QueryFailed(self.url, f"expected an instant vector, got {data.get('resultType')!r}", expr)
        samples: list[Sample] = []
        for row in data.get("result") or ():
            labels = {str(k): str(v) for k, v in (row.get("metric") or {}).items()}
            _, text = row.get("value", (0, "NaN"))
            samples.append(Sample(labels, _float(text)))
        return samples


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _float(text: object) -> float:
    try:
        return float(str(text))  # Prometheus writes "NaN", "+Inf", "-Inf" as strings too
    except ValueError:
        return math.nan


def _reason(exc: httpx.HTTPError) -> str:
    """The operating system's reason behind an httpx error ("All connection attempts failed" is not one)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return f"cannot resolve the host ({seen.strerror})"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__
