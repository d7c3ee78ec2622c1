"""Running the controller in-process against a test bed, with timings short enough for tests.

Tests are synchronous; each runs its async body with ``asyncio.run``. Blocking calls to the API
server from inside that body go through ``off(...)`` (a worker thread), so that the controller's
event loop keeps running meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from smi_bridge.controller.kubeapi import Backoff
from smi_bridge.controller.run import Controller, ControllerConfig
from tests.conftest import REPO
from tests.controller.cluster import Cluster, crds, load_yaml_docs

T = TypeVar("T")
Obj = dict[str, Any]

BACKEND_CRDS = {"istio": "istio", "linkerd": "linkerd", "consul": "consul", "gateway-api": "gateway-api"}


def fast_config(backend: str = "istio", **overrides: Any) -> ControllerConfig:
    base: dict[str, Any] = {
        "discovery_interval": 0.25,
        "watch_timeout": (30, 30),
        "backoff": Backoff(base=0.05, cap=0.5),
        "metrics_addr": "127.0.0.1:0",
        "health_addr": "127.0.0.1:0",
        "lease_duration": 2.0,
        "renew_deadline": 1.5,
        "retry_period": 0.2,
    }
    base.update(overrides)
    return ControllerConfig(backend, **base)


async def off(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


@contextlib.asynccontextmanager
async def running(cluster: Cluster, backend: str = "istio", **overrides: Any) -> AsyncIterator[Controller]:
    client = cluster.kube_client(backoff=Backoff(base=0.05, cap=0.5), retries=3)
    ctl = Controller(client, fast_config(backend, **overrides))
    task = asyncio.create_task(ctl.run())
    try:
        yield ctl
    finally:
        ctl.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=20)
        await client.aclose()


async def until(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 20.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def settled(ctl: Controller, timeout: float = 20.0) -> None:
    """Caches synced, a pass done, nothing dirty, events written — three checks in a row."""
    streak = 0
    deadline = time.monotonic() + timeout
    while streak < 3:
        r = ctl.reconciler
        ok = (
            ctl.started
            and r.passes > 0
            and r.converged()
            and not r.wake.is_set()
            and ctl.recorder.pending() == 0
        )
        streak = streak + 1 if ok else 0
        if time.monotonic() > deadline:
            raise AssertionError(
                f"controller did not settle in {timeout}s (dirty ns={r.dirty_ns}, "
                f"outputs={len(r.dirty_outputs)}, full={r.full}, started={ctl.started})"
            )
        await asyncio.sleep(0.05)


def demo_docs() -> list[Obj]:
    return load_yaml_docs([REPO / "fixtures" / "demo" / "bookstore.yaml"])


def docs(text: str) -> list[Obj]:
    return [d for d in yaml.safe_load_all(text) if d]


def install(cluster: Cluster, *groups: str) -> None:
    """Install CRDs straight into the fake (fast) or through the API (real)."""
    wanted = crds(*groups)
    if cluster.fake is not None:
        for doc in wanted:
            if (
                cluster.fake.get_object(
                    "apiextensions.k8s.io/v1", "customresourcedefinitions", None, doc["metadata"]["name"]
                )
                is None
            ):
                cluster.fake.put_object(doc)
    else:
        cluster.install_crds(wanted)


def put(cluster: Cluster, objects: list[Obj]) -> None:
    """Create or replace objects directly in the fake (status included)."""
    assert cluster.fake is not None
    for obj in objects:
        cluster.fake.put_object(obj)


def fixture_path(*parts: str) -> Path:
    return REPO.joinpath("fixtures", *parts)
