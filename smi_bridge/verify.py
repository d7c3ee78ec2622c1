"""Scenarios: SMI policy proven on the wire through the real smi-proxy, on loopback.

``run(paths)`` reads scenario files (format: ``fixtures/scenarios/README.md``), and for each one:
builds the IR from its manifests (SMI objects plus the inventory as ordinary Kubernetes objects),
translates it to a ProxyConfig (``smi_bridge.translate.emit(ir, "proxy", ...)``), starts one echo
upstream per pod address and port, starts ``smi-proxy --identity source-address`` as a process,
sends every request group from its source pod's address (pods live on 127.0.10.x, cluster IPs on
127.0.1.x) and prints ``PASS``/``FAIL`` per group with the distribution it observed. It returns
the exit code: 0 when every group passed, 1 otherwise.

``demo(path)`` is the end of ``make demo``: the same test bed for a directory of manifests, 1,000
requests from every client pod to every split root (and every HTTP Service when there is no
split), then the split it observed and how many requests were denied.

The test bed pieces (``EchoFleet``, ``HTTPClient``, ``tcp_exchange``, ``ProxyProcess``) are also
what the proxy's own tests drive it with. Nothing here imports the proxy: it runs as a process.
Output is plain text, one line per group, written to the stream given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import httptools
import yaml

# --- echo upstreams --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EchoSpec:
    """One echo server: the pod it stands for and where it listens."""

    pod: str
    host: str
    port: int
    http: bool = True


@dataclass(frozen=True)
class Seen:
    pod: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]


class _HTTPEcho(asyncio.Protocol):
    def __init__(self, fleet: EchoFleet, pod: str) -> None:
        self.fleet = fleet
        self.pod = pod
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.streaming = False
        self.keep_alive = True
        self.status = 200
        self.delay = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.fleet._connections.setdefault(self.pod, set()).add(self.transport)
        self.fleet.note_open()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.fleet._connections.get(self.pod, set()).discard(self.transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(
                    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
                self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.streaming = False
        self.status = 200
        self.delay = 0.0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        lname = name.lower()
        if lname == b"x-echo-status":
            self.status = int(value)
        elif lname == b"x-echo-delay":
            self.delay = float(value)

    def _head(self, extra: bytes) -> bytes:
        method = self.parser.get_method().decode()
        path = self.url.decode("latin-1")
        self.fleet.seen.append(
            Seen(
                self.pod,
                method,
                path,
                tuple((n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in self.headers),
            )
        )
        return b"HTTP/1.1 %d Echo\r\nx-pod: %b\r\nx-echo-method: %b\r\nx-echo-path: %b\r\n%b" % (
            self.status,
            self.pod.encode(),
            method.encode(),
            self.url,
            extra,
        )

    def on_headers_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        lengths = [v for n, v in self.headers if n.lower() == b"content-length"]
        chunked = any(n.lower() == b"transfer-encoding" for n, _ in self.headers)
        if (lengths and lengths[0].strip() != b"0") or chunked:
            # Echo the body back as it arrives: proves the proxy streams both ways.
            self.streaming = True
            self._write(self._head(b"transfer-encoding: chunked\r\n\r\n"))

    def on_body(self, body: bytes) -> None:
        if self.streaming:
            self._write(b"%x\r\n%b\r\n" % (len(body), body))

    def on_message_complete(self) -> None:
        if self.streaming:
            self._write(b"0\r\n\r\n")
            if not self.keep_alive and self.transport is not None:
                self.transport.close()
            return
        body = self.pod.encode() + b"\n"
        head = self._head(b"content-length: %d\r\n" % len(body))
        close = b"" if self.keep_alive else b"connection: close\r\n"
        response = head + close + b"\r\n" + (b"" if self.parser.get_method() == b"HEAD" else body)
        if self.delay > 0:
            asyncio.get_running_loop().call_later(self.delay, self._send_later, response, self.keep_alive)
        else:
            self._write(response)
            if not self.keep_alive and self.transport is not None:
                self.transport.close()

    def _send_later(self, response: bytes, keep_alive: bool) -> None:
        self._write(response)
        if not keep_alive and self.transport is not None:
            self.transport.close()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class _TCPEcho(asyncio.Protocol):
    def __init__(self, fleet: EchoFleet, pod: str) -> None:
        self.fleet = fleet
        self.pod = pod
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.fleet._connections.setdefault(self.pod, set()).add(self.transport)
        self.fleet.seen.append(Seen(self.pod, "TCP", "", ()))
        self.transport.write(self.pod.encode() + b"\n")

    def data_received(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.fleet._connections.get(self.pod, set()).discard(self.transport)


class EchoFleet:
    """Echo servers on a background event loop; use as a context manager."""

    def __init__(self, specs: Iterable[EchoSpec]) -> None:
        self.specs = list(specs)
        self.seen: list[Seen] = []
        self.peak_connections = 0  # the most connections open at once, over all pods
        self._servers: dict[str, list[asyncio.Server]] = {}
        self._connections: dict[str, set[asyncio.Transport]] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="echo-fleet", daemon=True)

    def __enter__(self) -> EchoFleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()
        self._call(self._bind_all(self.specs))

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        for pod in list(self._servers):
            self._call(self._close(pod))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def kill(self, pod: str) -> None:
        """Close the pod's listeners and reset its connections, like a crashed process."""
        self._call(self._close(pod))

    def revive(self, pod: str) -> None:
        self._call(self._bind_all([s for s in self.specs if s.pod == pod]))

    def note_open(self) -> None:
        self.peak_connections = max(self.peak_connections, sum(len(c) for c in self._connections.values()))

    def pods_seen(self) -> list[str]:
        return [s.pod for s in list(self.seen)]

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _bind_all(self, specs: Sequence[EchoSpec]) -> None:
        loop = asyncio.get_running_loop()
        for spec in specs:
            factory = (
                (lambda pod=spec.pod: _HTTPEcho(self, pod))
                if spec.http
                else (lambda pod=spec.pod: _TCPEcho(self, pod))
            )
            server = await loop.create_server(factory, spec.host, spec.port, reuse_address=True, backlog=2048)
            self._servers.setdefault(spec.pod, []).append(server)

    async def _close(self, pod: str) -> None:
        for server in self._servers.pop(pod, []):
            server.close()
        for transport in list(self._connections.pop(pod, set())):
            transport.abort()
        await asyncio.sleep(0)


# --- client -------------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


class ConnectionClosed(Exception):
    """The server closed the connection before a whole response arrived."""


class _ResponseParser:
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.done = False
        self._body: list[bytes] = []

    def on_message_begin(self) -> None:
        self.response = Response(0)
        self._body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.response is not None
        self.response.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        assert self.response is not None
        self.response.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        assert self.response is not None
        if self.response.status >= 200:
            self.response.body = b"".join(self._body)
            self.done = True


class HTTPClient:
    """One keep-alive connection at a time to ``host:port``, from ``source`` (an IP to bind)."""

    def __init__(
        self, host: str, port: int, *, source: str | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.source = source
        self.tls = tls
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(
                self.host,
                self.port,
                local_addr=(self.source, 0) if self.source else None,
                ssl=self.tls,
                server_hostname="" if self.tls else None,
            )
        return self._reader, self._writer

    async def request(
        self,
        method: str = "GET",
        path: str = "/",
        headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        host: str | None = None,
    ) -> Response:
        items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        names = {n.lower() for n, _ in items}
        lines = [f"{method} {path} HTTP/1.1", *(f"{n}: {v}" for n, v in items)]
        if "host" not in names:
            lines.append(f"host: {host or self.host}")
        if body and "content-length" not in names and "transfer-encoding" not in names:
            lines.append(f"content-length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        return await self.send_raw(raw)

    async def send_raw(self, raw: bytes, *, head_request: bool = False) -> Response:
        """Send ``raw`` bytes as they are and read one response (reconnecting if needed)."""
        for attempt in range(2):
            reader, writer = await self._open()
            writer.write(raw)
            try:
                response = await self._read(reader, head_request)
            except ConnectionClosed:
                await self.aclose()
                # A reused keep-alive connection may have been closed by the server as we wrote.
                if attempt == 1:
                    raise
                continue
            if response.headers.get("connection", "").lower() == "close":
                await self.aclose()
            return response
        raise ConnectionClosed

    async def _read(self, reader: asyncio.StreamReader, head_request: bool) -> Response:
        parser = _ResponseParser()
        while not parser.done:
            try:
                data = await reader.read(65536)
            except (ConnectionResetError, BrokenPipeError) as exc:
                raise ConnectionClosed from exc
            if not data:
                raise ConnectionClosed
            parser.parser.feed_data(data)
            if head_request and parser.response is not None and parser.response.status:
                parser.done = True
        assert parser.response is not None
        return parser.response

    def close(self) -> None:
        """Start closing (for use where nothing can be awaited); prefer ``aclose``."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        self._reader = None
        self._writer = None

    async def aclose(self) -> None:
        writer = self._writer
        self.close()
        if writer is not None:
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def tcp_exchange(
    host: str, port: int, *, source: str | None = None, payload: bytes = b"ping\n", timeout: float = 5.0
) -> tuple[bool, str]:
    """Connect, read the echo's first line (its pod), send ``payload`` and read it back.

    ``(True, pod)`` when data flowed; ``(False, "")`` when the proxy closed the connection before
    any byte came back (a denied connection).
    """
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, local_addr=(source, 0) if source else None), timeout
    )
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            return False, ""
        writer.write(payload)
        await writer.drain()
        echoed = await asyncio.wait_for(reader.readexactly(len(payload)), timeout)
        return echoed == payload, line.decode().strip()
    except (ConnectionResetError, asyncio.IncompleteReadError):
        return False, ""
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


# --- the proxy as a process ----------------------------------------------------------------------


class ProxyStartError(RuntimeError):
    """smi-proxy exited or did not become ready; the message ends with its log."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class ProxyProcess:
    """``smi-proxy`` started as a child process on loopback, with its admin listener."""

    def __init__(
        self,
        config: Path,
        *,
        identity: str = "source-address",
        args: Sequence[str] = (),
        log: Path | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        self.config = config
        self.identity = identity
        self.args = list(args)
        self.admin_port = free_port()
        self.log = log or config.with_suffix(".log")
        self.command = list(command) if command else [sys.executable, "-m", "proxy.main"]
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def __enter__(self) -> ProxyProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 20.0, *, wait_ready: bool = True) -> None:
        """Start and wait for ``/readyz`` (or only ``/healthz`` when ``wait_ready`` is False)."""
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            [
                *self.command,
                "--config",
                str(self.config),
                "--identity",
                self.identity,
                "--admin",
                f"127.0.0.1:{self.admin_port}",
                *self.args,
            ],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ProxyStartError(f"smi-proxy exited with {self.process.returncode}:\n{self.log_text()}")
            status, _ = self.admin("/readyz" if wait_ready else "/healthz")
            if status == 200:
                return
            time.sleep(0.05)
        self.stop()
        raise ProxyStartError(f"smi-proxy was not ready after {timeout:.0f}s:\n{self.log_text()}")

    def admin(self, path: str) -> tuple[int, str]:
        """``(status, body)`` of a GET on the admin listener; status 0 when it is unreachable."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, ""

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return self.process.returncode

    def log_text(self, tail: int = 40) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-tail:])


# --- scenarios ----------------------------------------------------------------------------------------

SCENARIO_API = "verify.smi-bridge.io/v1alpha1"
SCENARIO_KIND = "Scenario"
UNAUTHENTICATED = "unauthenticated"
# A loopback address no scenario pod uses: requests "from nobody" come from here.
UNAUTHENTICATED_ADDRESS = "127.0.250.250"


class ScenarioError(ValueError):
    """A scenario file that cannot be run; ``problems`` are ``file:line: message`` lines."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Expectation:
    statuses: frozenset[int] | None = None
    allowed: bool | None = None
    backends: Mapping[str, float] | None = None
    pods: Mapping[str, float] | None = None
    tolerance: float = 0.0


@dataclass(frozen=True)
class RequestGroup:
    name: str
    source: str  # "ns/pod" or UNAUTHENTICATED
    namespace: str
    service: str
    port: int
    protocol: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    count: int
    expect: Expectation
    where: str  # file:line of the group, for messages


@dataclass
class Scenario:
    name: str
    file: str
    description: str
    access_mode: str
    trust_domain: str
    groups: list[RequestGroup]
    documents: list[Any]  # smi_bridge.load.Document of the manifests (not the Scenario)


@dataclass
class GroupResult:
    group: RequestGroup
    passed: bool
    summary: str
    failures: list[str] = field(default_factory=list)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read one scenario file; raises ``ScenarioError`` naming file and line of what is wrong."""
    from smi_bridge.load import load

    loaded = load([path])
    problems = [f"{d.location()}: {d.message}" for d in loaded.diagnostics if d.severity.name == "ERROR"]
    scenario_docs = [
        d for d in loaded.documents if isinstance(d.obj, dict) and d.obj.get("kind") == SCENARIO_KIND
    ]
    manifests = [d for d in loaded.documents if d not in scenario_docs]
    if len(scenario_docs) != 1:
        problems.append(
            f"{path}: expected exactly one document of kind {SCENARIO_KIND}, found {len(scenario_docs)}"
        )
    if problems:
        raise ScenarioError(problems)
    doc = scenario_docs[0]
    obj = doc.obj

    def at(*p: str | int) -> str:
        file, line, _ = doc.location(p)
        return f"{file}:{line}"

    if obj.get("apiVersion") != SCENARIO_API:
        problems.append(f"{at('apiVersion')}: apiVersion must be {SCENARIO_API}")
    name = str((obj.get("metadata") or {}).get("name") or Path(path).stem)
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise ScenarioError([*problems, f"{at()}: Scenario {name}: spec is missing"])
    groups_raw = spec.get("groups")
    if not isinstance(groups_raw, list) or not groups_raw:
        problems.append(f"{at('spec')}: Scenario {name}: spec.groups must be a non-empty list")
        groups_raw = []
    groups = []
    for i, g in enumerate(groups_raw):
        try:
            groups.append(_group(g, at("spec", "groups", i), f"spec.groups[{i}]"))
        except ScenarioError as exc:
            problems.extend(exc.problems)
    access_mode = spec.get("accessMode", "enforce")
    if access_mode not in ("enforce", "permissive"):
        problems.append(f"{at('spec', 'accessMode')}: accessMode must be enforce or permissive")
    if problems:
        raise ScenarioError(problems)
    return Scenario(
        name=name,
        file=str(path),
        description=str(spec.get("description", "")),
        access_mode=access_mode,
        trust_domain=str(spec.get("trustDomain", "cluster.local")),
        groups=groups,
        documents=manifests,
    )


_GROUP_KEYS = {"name", "from", "to", "protocol", "method", "path", "headers", "body", "count", "expect"}
_EXPECT_KEYS = {"status", "allowed", "backends", "pods", "tolerance"}


def _group(g: Any, where: str, path: str) -> RequestGroup:
    problems: list[str] = []
    if not isinstance(g, dict):
        raise ScenarioError([f"{where}: {path} must be a mapping"])
    unknown = sorted(set(g) - _GROUP_KEYS)
    if unknown:
        problems.append(f"{where}: {path}: unknown field(s) {', '.join(unknown)}")
    name = str(g.get("name") or path)
    source = str(g.get("from", ""))
    if source != UNAUTHENTICATED and source.count("/") != 1:
        problems.append(f"{where}: {path} ({name}): from must be 'namespace/pod' or '{UNAUTHENTICATED}'")
    to = str(g.get("to", ""))
    host, _, port_text = to.rpartition(":")
    service, _, namespace = host.partition(".")
    if not service or not namespace or "." in namespace or not port_text.isdigit():
        problems.append(f"{where}: {path} ({name}): to must be 'service.namespace:port', not {to!r}")
    protocol = str(g.get("protocol", "http")).lower()
    if protocol not in ("http", "tcp"):
        problems.append(f"{where}: {path} ({name}): protocol must be http or tcp")
    count = g.get("count", 1)
    if not isinstance(count, int) or count < 1:
        problems.append(f"{where}: {path} ({name}): count must be a positive integer")
        count = 1
    headers_raw = g.get("headers") or {}
    if not isinstance(headers_raw, dict):
        problems.append(f"{where}: {path} ({name}): headers must be a mapping")
        headers_raw = {}
    expect_raw = g.get("expect")
    if not isinstance(expect_raw, dict) or not expect_raw:
        problems.append(f"{where}: {path} ({name}): expect must say what to expect")
        expect_raw = {}
    unknown = sorted(set(expect_raw) - _EXPECT_KEYS)
    if unknown:
        problems.append(f"{where}: {path}.expect ({name}): unknown field(s) {', '.join(unknown)}")
    status = expect_raw.get("status")
    statuses = None
    if status is not None:
        values = status if isinstance(status, list) else [status]
        if not all(isinstance(v, int) for v in values):
            problems.append(f"{where}: {path}.expect.status ({name}): a status code or a list of them")
        else:
            statuses = frozenset(values)
    shares: dict[str, Mapping[str, float] | None] = {}
    for key in ("backends", "pods"):
        raw = expect_raw.get(key)
        if raw is not None and not (
            isinstance(raw, dict) and all(isinstance(v, int | float) and v >= 0 for v in raw.values())
        ):
            problems.append(f"{where}: {path}.expect.{key} ({name}): a mapping of name to percentage")
            raw = None
        shares[key] = {str(k): float(v) for k, v in raw.items()} if raw else None
    allowed = expect_raw.get("allowed")
    if allowed is not None and not isinstance(allowed, bool):
        problems.append(f"{where}: {path}.expect.allowed ({name}): true or false")
    tolerance = expect_raw.get("tolerance", 0)
    if problems:
        raise ScenarioError(problems)
    return RequestGroup(
        name=name,
        source=source,
        namespace=namespace,
        service=service,
        port=int(port_text),
        protocol=protocol,
        method=str(g.get("method", "GET")),
        path=str(g.get("path", "/")),
        headers=tuple((str(k), str(v)) for k, v in headers_raw.items()),
        body=str(g.get("body", "")).encode(),
        count=count,
        expect=Expectation(statuses, allowed, shares["backends"], shares["pods"], float(tolerance)),
        where=where,
    )


# --- the test bed for one IR ------------------------------------------------------------------------------


def echo_specs(ir: Any) -> list[EchoSpec]:
    """One echo per pod address and port that some Service sends traffic to."""
    pods = {(p.namespace, p.ip): p.name for p in ir.pods if p.ip and not p.template}
    found: dict[tuple[str, int], EchoSpec] = {}
    for svc in ir.services:
        for ep in svc.endpoints:
            pod = ep.pod or pods.get((svc.namespace, ep.address), ep.address)
            named = {p.name: p.port for p in ep.ports}
            for sp in svc.ports:
                if sp.protocol.upper() != "TCP":
                    continue
                target = sp.target_port
                if target is None or target == "":
                    port: int | None = sp.port
                elif isinstance(target, int):
                    port = target
                else:
                    port = named.get(target)
                if port is None:
                    continue
                key = (ep.address, port)
                if key not in found or (sp.is_http and not found[key].http):
                    found[key] = EchoSpec(pod, ep.address, port, sp.is_http)
    return sorted(found.values(), key=lambda s: (s.host, s.port))


def _pod_ip(ir: Any, source: str) -> str | None:
    if source == UNAUTHENTICATED:
        return UNAUTHENTICATED_ADDRESS
    namespace, _, name = source.partition("/")
    for pod in ir.pods:
        if pod.namespace == namespace and pod.name == name and pod.ip:
            return str(pod.ip)
    return None


def write_proxy_config(
    ir: Any, directory: Path, access_mode: str, trust_domain: str
) -> tuple[Path, list[str]]:
    """Translate ``ir`` to the proxy target into ``directory/proxy.yaml``; returns notes (warnings)."""
    from backends.base import Options
    from smi_bridge.translate import emit

    options = Options(trust_domain=trust_domain, access_mode=access_mode)  # type: ignore[arg-type]
    out = emit(ir, "proxy", options)
    notes = [f"{d.severity}[{d.code}] {d.message}" for d in out.diagnostics if d.severity.name != "INFO"]
    path = directory / "proxy.yaml"
    path.write_text(yaml.safe_dump_all(out.objects, sort_keys=False), encoding="utf-8")
    return path, notes


# --- running groups ------------------------------------------------------------------------------------------


@dataclass
class Observed:
    statuses: Counter[int] = field(default_factory=Counter)
    pods: Counter[str] = field(default_factory=Counter)
    connected: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)


async def _send_group(ir: Any, group: RequestGroup) -> Observed:
    observed = Observed()
    svc = ir.service(group.namespace, group.service)
    source = _pod_ip(ir, group.source)
    if svc is None or not svc.cluster_ip:
        observed.errors.append(f"Service {group.namespace}/{group.service} has no clusterIP in the inventory")
        return observed
    if source is None:
        observed.errors.append(f"source pod {group.source} has no IP (status.podIP) in the inventory")
        return observed
    if group.protocol == "tcp":
        for _ in range(group.count):
            try:
                ok, pod = await tcp_exchange(svc.cluster_ip, group.port, source=source)
            except (OSError, TimeoutError) as exc:
                observed.errors.append(f"connect: {exc}")
                continue
            if ok:
                observed.connected += 1
                observed.pods[pod] += 1
            else:
                observed.refused += 1
        return observed
    client = HTTPClient(svc.cluster_ip, group.port, source=source)
    try:
        for _ in range(group.count):
            try:
                response = await client.request(
                    group.method,
                    group.path,
                    group.headers,
                    group.body,
                    host=f"{group.service}.{group.namespace}:{group.port}",
                )
            except (OSError, ConnectionClosed) as exc:
                observed.errors.append(f"request failed: {exc!r}")
                await client.aclose()
                continue
            observed.statuses[response.status] += 1
            pod = response.header("x-pod")
            if pod:
                observed.pods[pod] += 1
    finally:
        await client.aclose()
    return observed


def _backend_of(ir: Any, namespace: str, services: Iterable[str]) -> dict[str, str]:
    """pod name -> the one listed Service whose endpoints include it."""
    owner: dict[str, str] = {}
    for name in services:
        svc = ir.service(namespace, name)
        if svc is None:
            continue
        for ep in svc.endpoints:
            if ep.pod:
                owner.setdefault(ep.pod, name)
    return owner


def _shares(counts: Mapping[str, int], total: int) -> dict[str, float]:
    return {k: 100.0 * v / total for k, v in counts.items()} if total else {}


def _judge(ir: Any, group: RequestGroup, observed: Observed) -> GroupResult:
    expect = group.expect
    failures = list(observed.errors)
    parts: list[str] = []
    if group.protocol == "tcp":
        parts.append(f"connected {observed.connected}, closed before any byte {observed.refused}")
        if expect.allowed is True and observed.refused:
            failures.append(f"{observed.refused} connections were closed, expected all to connect")
        if expect.allowed is False and observed.connected:
            failures.append(f"{observed.connected} connections got through, expected all to be closed")
        answered = observed.connected
    else:
        parts.append("status " + ", ".join(f"{s} x{n}" for s, n in sorted(observed.statuses.items())))
        if expect.statuses is not None:
            bad = {s: n for s, n in observed.statuses.items() if s not in expect.statuses}
            if bad:
                want = "/".join(str(s) for s in sorted(expect.statuses))
                failures.append(
                    f"expected status {want}, got " + ", ".join(f"{s} x{n}" for s, n in bad.items())
                )
        if expect.allowed is True:
            denied = observed.statuses.get(403, 0)
            if denied:
                failures.append(f"{denied} requests were denied (403), expected all allowed")
        if expect.allowed is False:
            passed = sum(n for s, n in observed.statuses.items() if s != 403)
            if passed:
                failures.append(f"{passed} requests were not denied, expected 403 for all")
        answered = sum(observed.pods.values())
    if expect.backends is not None:
        owner = _backend_of(ir, group.namespace, expect.backends)
        counts: Counter[str] = Counter()
        for pod, n in observed.pods.items():
            counts[owner.get(pod, f"<pod {pod}>")] += n
        failures += _compare("backend", counts, answered, expect.backends, expect.tolerance)
        parts.append(_distribution(counts, answered))
    if expect.pods is not None:
        failures += _compare("pod", observed.pods, answered, expect.pods, expect.tolerance)
        parts.append(_distribution(observed.pods, answered))
    elif expect.backends is None and observed.pods:
        parts.append("pods " + _distribution(observed.pods, answered))
    if not observed.statuses and not observed.connected and not observed.refused and not failures:
        failures.append("no request completed")
    return GroupResult(group, not failures, "; ".join(p for p in parts if p), failures)


def _compare(
    what: str, counts: Mapping[str, int], total: int, want: Mapping[str, float], tolerance: float
) -> list[str]:
    if total == 0:
        return [f"no answered request to measure the {what} distribution on"]
    shares = _shares(counts, total)
    failures = []
    for name in sorted(set(want) | set(shares)):
        expected = want.get(name, 0.0)
        got = shares.get(name, 0.0)
        if abs(got - expected) > tolerance + 1e-9:
            failures.append(
                f"{what} {name}: {got:.1f}% observed, {expected:g}% expected (tolerance {tolerance:g})"
            )
    return failures


def _distribution(counts: Mapping[str, int], total: int) -> str:
    if not total:
        return ""
    return ", ".join(f"{k} {v} ({100.0 * v / total:.1f}%)" for k, v in sorted(counts.items()))


# --- the runner -------------------------------------------------------------------------------------------------


def config_digest(config_object: Mapping[str, Any]) -> str:
    """The digest smi-proxy reports for a ProxyConfig (``/config``, ``smi_proxy_config_info``):
    sha256 of the canonical JSON (sorted keys, no spaces) of its ``spec``."""
    canonical = json.dumps(config_object["spec"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def ir_from_manifests(text: str, file: str = "<manifests>") -> Any:
    """The IR of SMI manifests plus inventory given as YAML text; ``ScenarioError`` on errors."""
    from smi_bridge.build import build
    from smi_bridge.load import load_bytes
    from smi_bridge.parse import parse_documents

    loaded = load_bytes(text.encode("utf-8"), file)
    parsed = parse_documents(loaded.documents)
    built = build(parsed.resources)
    errors = [
        d
        for d in (*loaded.diagnostics, *parsed.diagnostics, *built.diagnostics)
        if d.severity.name == "ERROR"
    ]
    if errors:
        raise ScenarioError([f"{d.file}:{d.line}: [{d.code}] {d.message}" for d in errors])
    return built.ir


class LoopbackBed:
    """Echo upstreams for an IR's pods plus smi-proxy serving its translation, on loopback.

    ``reconfigure(ir)`` swaps in another IR: new echo upstreams, and the proxy reloads its
    config (SIGHUP) instead of restarting; it returns once the proxy reports the new digest.
    """

    def __init__(
        self,
        ir: Any,
        directory: Path,
        *,
        access_mode: str = "enforce",
        trust_domain: str = "cluster.local",
        identity: str = "source-address",
        proxy_args: Sequence[str] = (),
        proxy_command: Sequence[str] | None = None,
    ) -> None:
        self.ir = ir
        self.directory = directory
        self.access_mode = access_mode
        self.trust_domain = trust_domain
        self.notes: list[str] = []
        self.config = directory / "proxy.yaml"
        self.fleet = EchoFleet(echo_specs(ir))
        self.write_config(ir)
        self.proxy = ProxyProcess(
            self.config,
            identity=identity,
            args=["--watch-interval", "0", *proxy_args],
            command=proxy_command,
            log=directory / "proxy.log",
        )

    def __enter__(self) -> LoopbackBed:
        self.fleet.start()
        try:
            self.proxy.start()
        except BaseException:
            self.fleet.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.proxy.stop()
        finally:
            self.fleet.stop()

    def write_config(self, ir: Any) -> str:
        """Write the proxy config for ``ir`` (no reload); returns its digest."""
        path, self.notes = write_proxy_config(ir, self.directory, self.access_mode, self.trust_domain)
        obj = yaml.safe_load(path.read_text(encoding="utf-8"))
        return config_digest(obj)

    def reconfigure(self, ir: Any, timeout: float = 15.0) -> None:
        """Serve ``ir`` instead: new echo upstreams if its pods differ, then a config reload."""
        specs = echo_specs(ir)
        if specs != self.fleet.specs:
            self.fleet.stop()
            self.fleet = EchoFleet(specs)
            self.fleet.start()
        self.ir = ir
        digest = self.write_config(ir)
        self.proxy.signal(signal.SIGHUP)
        self.wait_for_digest(digest, timeout)

    def wait_for_digest(self, digest: str, timeout: float = 15.0) -> None:
        """Return once the proxy serves the config with ``digest`` and is ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = self.proxy.admin("/config")
            if status == 200 and json.loads(body).get("digest") == digest:
                ready, _ = self.proxy.admin("/readyz")
                if ready == 200:
                    return
            time.sleep(0.02)
        raise ProxyStartError(
            f"smi-proxy did not take the new config in {timeout:.0f}s:\n{self.proxy.log_text()}"
        )


def run_scenario(
    scenario: Scenario,
    bed: LoopbackBed | None,
    out: IO[str],
    directory: Path,
    proxy_command: Sequence[str] | None = None,
) -> tuple[bool, LoopbackBed | None]:
    """Run one scenario (on ``bed`` when given, else on a new one); True when every group passed."""
    from smi_bridge.build import build
    from smi_bridge.parse import parse_documents

    parsed = parse_documents(scenario.documents)
    built = build(parsed.resources)
    errors = [d for d in (*parsed.diagnostics, *built.diagnostics) if d.severity.name == "ERROR"]
    if errors:
        for d in errors:
            out.write(f"  ERROR {d.file}:{d.line}: [{d.code}] {d.message}\n")
        return False, bed
    ir = built.ir
    if bed is None or bed.access_mode != scenario.access_mode or bed.trust_domain != scenario.trust_domain:
        if bed is not None:
            bed.__exit__(None, None, None)
        bed = LoopbackBed(
            ir,
            directory,
            access_mode=scenario.access_mode,
            trust_domain=scenario.trust_domain,
            proxy_command=proxy_command,
        ).__enter__()
    else:
        bed.reconfigure(ir)
    for note in bed.notes:
        out.write(f"  note  {note}\n")
    ok = True
    for group in scenario.groups:
        observed = asyncio.run(_send_group(ir, group))
        result = _judge(ir, group, observed)
        ok = ok and result.passed
        _print_result(out, result)
    if not ok:
        out.write("  smi-proxy log (last lines):\n")
        for line in bed.proxy.log_text(15).splitlines():
            out.write(f"    {line}\n")
    return ok, bed


def _print_result(out: IO[str], result: GroupResult) -> None:
    g = result.group
    what = f"{g.count} x {g.protocol.upper() if g.protocol == 'tcp' else g.method + ' ' + g.path}"
    head = f"  {'PASS' if result.passed else 'FAIL'}  {g.name}: {what} from {g.source} to {g.service}.{g.namespace}:{g.port}"
    out.write(f"{head}: {result.summary}\n")
    for failure in result.failures:
        out.write(f"        {failure}\n")


def scenario_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(
                x for x in p.iterdir() if x.suffix in (".yaml", ".yml") and not x.name.startswith(".")
            )
        else:
            files.append(p)
    return files


def run(
    paths: Sequence[str | os.PathLike[str]],
    *,
    out: IO[str] | None = None,
    proxy_command: Sequence[str] | None = None,
) -> int:
    """Run every scenario file (directories: their ``*.yaml``); 0 when all pass, 1 otherwise.

    One smi-proxy serves all scenarios: each one after the first is swapped in by a config
    reload. A scenario file that cannot be read is reported (file and line) and counts as failed;
    no scenario at all is exit code 2.
    """
    stream = out if out is not None else sys.stdout
    files = scenario_files(paths)
    if not files:
        stream.write("no scenario files given\n")
        return 2
    passed = failed = 0
    bed: LoopbackBed | None = None
    with tempfile.TemporaryDirectory(prefix="smi-verify-") as tmp:
        try:
            for file in files:
                try:
                    scenario = load_scenario(file)
                except ScenarioError as exc:
                    stream.write(f"scenario {file}: cannot be run\n")
                    for problem in exc.problems:
                        stream.write(f"  {problem}\n")
                    failed += 1
                    continue
                stream.write(f"scenario {scenario.name} ({file})\n")
                try:
                    ok, bed = run_scenario(scenario, bed, stream, Path(tmp), proxy_command)
                except (ProxyStartError, OSError) as exc:
                    stream.write(f"  ERROR {exc}\n")
                    ok = False
                    if bed is not None:
                        bed.__exit__(None, None, None)
                    bed = None
                passed += ok
                failed += not ok
                stream.flush()
        finally:
            if bed is not None:
                bed.__exit__(None, None, None)
    stream.write(f"{passed + failed} scenarios: {passed} passed, {failed} failed\n")
    return 0 if failed == 0 else 1


# --- the demo ------------------------------------------------------------------------------------------------------


def _demo_requests(ir: Any) -> list[tuple[str, Any, int, str, str]]:
    """``(source ip, service, port, method, path)`` combinations that exercise the demo's policy."""
    from smi_bridge.regex import sample

    endpoint_pods = {(s.namespace, ep.pod) for s in ir.services for ep in s.endpoints if ep.pod}
    clients = [p for p in ir.pods if p.ip and not p.template and (p.namespace, p.name) not in endpoint_pods]
    roots = {(s.namespace, s.root) for s in ir.splits}
    destinations = [s for s in ir.services if s.cluster_ip and ((s.namespace, s.name) in roots or not roots)]
    routes: list[tuple[str, str]] = [("GET", "/")]
    for group in ir.route_groups:
        for m in group.matches:
            path = sample(m.path_regex) if m.path_regex else "/"
            routes.append((m.methods[0] if m.methods else "GET", path or "/"))
    combos = []
    for client in clients:
        for svc in destinations:
            for sp in svc.ports:
                if sp.is_http:
                    combos += [
                        (client.ip, svc, sp.port, method, path) for method, path in dict.fromkeys(routes)
                    ]
    return combos


def demo(path: str | os.PathLike[str], *, out: IO[str] | None = None, requests: int = 1000) -> int:
    """Translate ``path`` to the proxy, run smi-proxy on it, send ``requests`` requests, print
    the split observed per root Service and the number denied. 0 on success, 1 on failure."""
    from smi_bridge.translate import front

    stream = out if out is not None else sys.stdout
    pipe = front([path])
    errors = [d for d in pipe.diagnostics() if d.severity.name == "ERROR"]
    if errors:
        for d in errors:
            stream.write(f"{d.file}:{d.line}: [{d.code}] {d.message}\n")
        return 1
    ir = pipe.ir
    combos = _demo_requests(ir)
    if not combos:
        stream.write("the demo has no client pod with an IP and no HTTP Service with a clusterIP to call\n")
        return 1
    from smi_bridge.metrics.demo import demo_split_metrics

    with tempfile.TemporaryDirectory(prefix="smi-demo-") as tmp, LoopbackBed(ir, Path(tmp)) as bed:
        began = time.time()
        observed = asyncio.run(_demo_send(combos, requests))
        _, metrics = bed.proxy.admin("/metrics")
        # TrafficMetrics of the demo's splits, from a real Prometheus scraping this proxy.
        metrics_code, traffic_metrics = demo_split_metrics(
            ir, f"127.0.0.1:{bed.proxy.admin_port}", since=began
        )
    stream.write(f"smi-proxy demo: {requests} requests from {len({c[0] for c in combos})} client pods\n")
    denied = 0
    for (ns, name, port), counts in sorted(observed.items()):
        denied += counts.pop("<denied>", 0)
        other = counts.pop("<other>", 0)
        owner = _backend_of(
            ir, ns, [b.service for s in ir.splits if (s.namespace, s.root) == (ns, name) for b in s.backends]
        )
        by_backend: Counter[str] = Counter()
        for pod, n in counts.items():
            by_backend[owner.get(pod, pod)] += n
        total = sum(by_backend.values())
        stream.write(f"  {ns}/{name}:{port}  {_distribution(by_backend, total) or 'nothing allowed'}\n")
        if other:
            stream.write(f"    {other} other answers (not 2xx, not 403)\n")
    stream.write(f"  denied by access policy (403): {denied}\n")
    if denied:
        stream.write(
            "  (a backend is picked before access is checked: denied requests take their turn in the split)\n"
        )
    denied_metric = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("smi_proxy_requests_total{") and 'denied="true"' in line
    )
    stream.write(f'  smi_proxy_requests_total{{denied="true"}}: {denied_metric:g}\n')
    stream.write(traffic_metrics)
    return metrics_code


async def _demo_send(
    combos: list[tuple[str, Any, int, str, str]], requests: int
) -> dict[tuple[str, str, int], Counter[str]]:
    clients: dict[tuple[str, str, int], HTTPClient] = {}
    observed: dict[tuple[str, str, int], Counter[str]] = {}
    try:
        for i in range(requests):
            source, svc, port, method, path = combos[i % len(combos)]
            key = (source, svc.cluster_ip, port)
            client = clients.get(key)
            if client is None:
                client = clients[key] = HTTPClient(svc.cluster_ip, port, source=source)
            response = await client.request(method, path, host=f"{svc.name}.{svc.namespace}")
            counts = observed.setdefault((svc.namespace, svc.name, port), Counter())
            if response.status == 403:
                counts["<denied>"] += 1
            elif 200 <= response.status < 300 and response.header("x-pod"):
                counts[response.header("x-pod")] += 1
            else:
                counts["<other>"] += 1
    finally:
        for client in clients.values():
            await client.aclose()
    return observed


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m smi_bridge.verify SCENARIO...`` or ``python -m smi_bridge.verify --demo DIR``."""
    p = argparse.ArgumentParser(prog="python -m smi_bridge.verify", description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="*", help="scenario files or directories")
    p.add_argument("--demo", metavar="PATH", help="run the demo on these manifests instead")
    p.add_argument("--requests", type=int, default=1000, help="requests the demo sends (default 1000)")
    args = p.parse_args(argv)
    if args.demo:
        return demo(args.demo, requests=args.requests)
    return run(args.paths)


if __name__ == "__main__":
    sys.exit(main())
