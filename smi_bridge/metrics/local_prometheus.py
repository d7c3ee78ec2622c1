"""A throwaway Prometheus on 127.0.0.1, and a server for recorded exposition text to feed it.

The test suite, the benchmark and ``make demo`` run Debian's ``prometheus`` binary as a child
process (never the system service): its own temporary storage, a one-second scrape interval and
``honor_labels`` (so recorded ``namespace``/``pod`` labels stay what the mesh's own relabelling
made them). ``ExpositionServer`` serves Prometheus text documents at fixed paths and lets a caller
swap them between scrapes: counters that move between two recorded snapshots are how the
istio, linkerd and consul queries are checked with real PromQL evaluation.

``wait_for_scrape(since)`` is the synchronisation point every exact-count check needs: it returns
once every target has been scraped by a scrape that *started* after ``since`` (``timestamp(up)``
is the scrape's start time), i.e. once Prometheus holds what was published before ``since``.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx
import yaml


class LocalPrometheusError(RuntimeError):
    """The local Prometheus could not be started or did not scrape in time."""


@dataclass(frozen=True)
class ScrapeTarget:
    job: str
    address: str  # host:port
    path: str = "/metrics"


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # Prometheus hangs up when a scrape times out; that is its business, not a crash of ours.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class ExpositionServer:
    """Serves text exposition documents (``publish(path, text)``) on 127.0.0.1, from a thread."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        documents: dict[str, bytes] = {}
        lock = threading.Lock()
        self._documents, self._lock = documents, lock

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    body = documents.get(self.path.split("?", 1)[0])
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # scrapes every second would flood the test output

        self._server = _QuietServer((host, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="exposition", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def publish(self, path: str, text: str) -> None:
        with self._lock:
            self._documents[path] = text.encode()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ExpositionServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prometheus_binary() -> str | None:
    """The ``prometheus`` executable (``SMI_BRIDGE_PROMETHEUS`` overrides), or None."""
    return os.environ.get("SMI_BRIDGE_PROMETHEUS") or shutil.which("prometheus")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LocalPrometheus:
    """``with LocalPrometheus([ScrapeTarget(...)]) as prom: prom.url ...``"""

    def __init__(
        self,
        targets: Sequence[ScrapeTarget],
        *,
        scrape_interval_s: float = 1.0,
        binary: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.targets = list(targets)
        self.scrape_interval_s = scrape_interval_s
        self.binary = binary or prometheus_binary()
        self.host = host
        self.port = 0
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._http = httpx.Client(timeout=5.0, verify=False)  # plain HTTP on loopback

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def config(self) -> str:
        interval = f"{round(self.scrape_interval_s * 1000)}ms"
        jobs = [
            {
                "job_name": t.job,
                "honor_labels": True,
                "metrics_path": t.path,
                "static_configs": [{"targets": [t.address]}],
            }
            for t in self.targets
        ]
        doc = {
            "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": "1m"},
            "scrape_configs": jobs,
        }
        return yaml.safe_dump(doc, sort_keys=False)

    def start(self, timeout_s: float = 30.0) -> None:
        if not self.binary:
            raise LocalPrometheusError(
                "the prometheus binary was not found (Debian: apt-get install prometheus; "
                "or set SMI_BRIDGE_PROMETHEUS)"
            )
        self._dir = tempfile.TemporaryDirectory(prefix="smi-bridge-prometheus-")
        work = Path(self._dir.name)
        (work / "prometheus.yml").write_text(self.config())
        for _attempt in range(3):  # the free port can be taken between probing and binding
            self.port = _free_port(self.host)
            log = (work / "prometheus.log").open("wb")
            self._proc = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={work / 'prometheus.yml'}",
                    f"--storage.tsdb.path={work / 'data'}",
                    f"--web.listen-address={self.host}:{self.port}",
                    "--storage.tsdb.retention.time=1d",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            log.close()
            if self._await_ready(timeout_s):
                return
            self._terminate()
            if "address already in use" not in self.log_tail():
                break
        raise LocalPrometheusError(f"prometheus did not become ready:\n{self.log_tail()}")

    def _await_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            try:
                if self._http.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        return False

    def log_tail(self, lines: int = 20) -> str:
        if self._dir is None:
            return ""
        path = Path(self._dir.name) / "prometheus.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def query_value(self, expr: str, at: float | None = None) -> float | None:
        """A scalar-ish helper: the single value of ``expr`` (None when the vector is empty)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        body = self._http.get(f"{self.url}/api/v1/query", params=params).json()
        result = body.get("data", {}).get("result", [])
        if not result:
            return None
        return float(result[0]["value"][1])

    def wait_for_scrape(self, since: float, timeout_s: float = 20.0) -> float:
        """Block until every target was scraped by a scrape started after ``since``; that start time.

        Returns the latest such start among the targets, so a query evaluated at or after the
        returned instant sees everything that was published before ``since``.
        """
        deadline = time.monotonic() + timeout_s
        jobs = [t.job for t in self.targets]
        while time.monotonic() < deadline:
            oldest = self.query_value("min(timestamp(up))")
            count = self.query_value("count(up)")
            if oldest is not None and count == len(jobs) and oldest >= since:
                down = self.query_value("count(up == 0)")
                if down:
                    raise LocalPrometheusError(f"a scrape target is down: {self.down_targets()}")
                newest = self.query_value("max(timestamp(up))")
                return newest if newest is not None else oldest
            time.sleep(0.1)
        raise LocalPrometheusError(
            f"no complete scrape after {since:.3f} within {timeout_s}s ({self.down_targets()})"
        )

    def down_targets(self) -> str:
        body = self._http.get(f"{self.url}/api/v1/targets").json()
        active: Iterable[dict[str, object]] = body.get("data", {}).get("activeTargets", [])
        bad = [f"{t.get('scrapeUrl')}: {t.get('lastError')}" for t in active if t.get("health") != "up"]
        return "; ".join(bad) or "all targets up"

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def stop(self) -> None:
        self._terminate()
        self._http.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> LocalPrometheus:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
