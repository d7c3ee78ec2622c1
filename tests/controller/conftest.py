"""Fixtures for the controller's two test beds: the project's fake API server and the real kube-apiserver.

The real tier (``realapi.sh``: kube-apiserver 1.20.2 built from Debian's source package, etcd 3.4) is
started once per session. When its cached binaries are missing they are built here (about four
minutes); only if that build fails are the real-tier tests skipped, and the session then ends with a
banner saying so.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from smi_bridge.controller.testing.fakeapi import FakeKubeAPI
from tests.controller.cluster import Cluster

HERE = Path(__file__).resolve().parent
REALAPI = HERE / "realapi.sh"
_REAL_SKIP: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "realapi: needs the real kube-apiserver + etcd tier (tests/controller/realapi.sh)"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _REAL_SKIP:
        terminalreporter.write_sep("!", "REAL KUBE-APISERVER TIER DID NOT RUN", red=True, bold=True)
        terminalreporter.write_line(_REAL_SKIP[0], red=True)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Cluster]:
    """A fresh fake API server (modern: EndpointSlice v1) per test."""
    api = FakeKubeAPI().start()
    cluster = Cluster("fake", api.url, fake=api, workdir=tmp_path)
    try:
        yield cluster
    finally:
        cluster.close()
        api.stop()


@pytest.fixture
def fake_120(tmp_path: Path) -> Iterator[Cluster]:
    """A fake that serves what kube-apiserver 1.20 serves where it matters (EndpointSlice v1beta1 only),
    for the fake-versus-real contract."""
    api = FakeKubeAPI(endpointslice_versions=("v1beta1",)).start()
    cluster = Cluster("fake", api.url, fake=api, workdir=tmp_path)
    try:
        yield cluster
    finally:
        cluster.close()
        api.stop()


def _build_real() -> str | None:
    """None when the binaries are there (built now if needed); else why not."""
    if subprocess.run([str(REALAPI), "check"], capture_output=True).returncode == 0:
        return None
    if os.environ.get("SMI_BRIDGE_NO_REAL_BUILD"):
        return "cached kube-apiserver binaries missing and SMI_BRIDGE_NO_REAL_BUILD is set"
    out = subprocess.run([str(REALAPI), "build"], capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        return f"cached kube-apiserver binaries missing and the build failed: {out.stderr.strip()[-600:]}"
    return None


@pytest.fixture(scope="session")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The real kube-apiserver tier, one server per session (a namespace per test)."""
    why = _build_real()
    if why is not None:
        message = f"REAL-TIER SKIPPED: {why} (see tests/controller/realapi.sh)"
        _REAL_SKIP.append(message)
        pytest.skip(message)
    state = tmp_path_factory.mktemp("realapi")
    out = subprocess.run([str(REALAPI), "start", str(state)], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        subprocess.run([str(REALAPI), "stop", str(state)], capture_output=True)
        pytest.fail(f"the real kube-apiserver did not start: {out.stderr.strip()[-1500:]}")
    env = dict(line.split("=", 1) for line in (state / "env").read_text().splitlines() if "=" in line)
    cluster = Cluster(
        "real",
        env["KUBE_HOST"],
        token=env["KUBE_TOKEN"],
        ca_file=env["KUBE_CA"],
        workdir=state,
        etcd_url=env["ETCD_URL"],
    )
    try:
        yield cluster
    finally:
        cluster.close()
        subprocess.run([str(REALAPI), "stop", str(state)], capture_output=True, timeout=60)
