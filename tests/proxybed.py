"""What the smi-proxy test modules share: the manifests of their ``shop`` namespace built from
parts, a loopback bed for such manifests, requests through the proxy and its own metrics.

Each module passes its own loopback ranges (``cluster`` for Service cluster IPs, ``pods`` for pod
IPs, both prefixes ending in a dot) so that modules may run in parallel. Nothing here imports
``smi_bridge.verify`` at import time: a module may still skip itself when that is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from prometheus_client.core import Metric
    from prometheus_client.samples import Sample

    from smi_bridge.verify import HTTPClient, LoopbackBed, Response

# --- manifests ---------------------------------------------------------------------------------------

Port = tuple[str, int] | tuple[str, int, int]  # name, port[, targetPort]
HTTP_8080: tuple[Port, ...] = (("http", 8080, 8080),)

# The ReplicaSets that own the checkout pods where a module gives them owners.
CHECKOUT_REPLICASETS = {"v1": "checkout-v1-7f9c8d6b5", "v2": "checkout-v2-5d4c3b2a1"}
WEB_REPLICASET = "web-6b7c8d9f4"


def _flow(items: Mapping[str, object]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in items.items()) + "}"


def documents(*docs: str) -> str:
    """One YAML stream of ``docs``."""
    return "\n---\n".join(docs) + "\n"


def service(
    name: str, cluster_ip: str, selector: Mapping[str, str], ports: Iterable[Port] = HTTP_8080
) -> str:
    listed = [_flow(dict(zip(("name", "port", "targetPort"), port, strict=False))) for port in ports]
    return f"""apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: shop}}
spec:
  clusterIP: {cluster_ip}
  selector: {_flow(selector)}
  ports: [{", ".join(listed)}]"""


def pod(name: str, ip: str, labels: Mapping[str, str], *, replicaset: str | None = None) -> str:
    """A running pod of ServiceAccount ``labels["app"]``; owned by ``replicaset`` when given (its
    workload is then the ReplicaSet's Deployment, else the pod's own name)."""
    owner = ""
    if replicaset:
        reference = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": replicaset, "uid": replicaset}
        owner = f"\n  ownerReferences: [{_flow(reference)}]"
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: shop
  labels: {_flow(labels)}{owner}
spec: {{serviceAccountName: {labels["app"]}, containers: [{{name: c, image: c}}]}}
status: {{podIP: {ip}}}"""


def traffic_split(name: str, weights: Mapping[str, int], *, api: str = "v1alpha4") -> str:
    """A TrafficSplit of the ``checkout`` Service over the backends in ``weights``."""
    backends = "".join(f"\n  - {{service: {backend}, weight: {w}}}" for backend, w in weights.items())
    return f"""apiVersion: split.smi-spec.io/{api}
kind: TrafficSplit
metadata: {{name: {name}, namespace: shop}}
spec:
  service: checkout
  backends:{backends}"""


def http_route_group(name: str, *matches: str) -> str:
    """An HTTPRouteGroup; each of ``matches`` is one match as a YAML flow mapping."""
    listed = "".join(f"\n  - {match}" for match in matches)
    return f"""apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {{name: {name}, namespace: shop}}
spec:
  matches:{listed}"""


def tcp_route(name: str, port: int) -> str:
    return f"""apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {{name: {name}, namespace: shop}}
spec:
  matches: {{ports: [{port}]}}"""


def traffic_target(name: str, destination: str, rule: Mapping[str, str], *, source: str = "web") -> str:
    """A TrafficTarget from ServiceAccount ``source`` to ``destination`` under the one ``rule``."""
    return f"""apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {{name: {name}, namespace: shop}}
spec:
  destination: {{kind: ServiceAccount, name: {destination}, namespace: shop}}
  sources: [{{kind: ServiceAccount, name: {source}, namespace: shop}}]
  rules: [{_flow(rule)}]"""


# Every path with any method, as one named match ``all`` (the ``pathRegex`` spelled out or left
# out: the modules use both).
EVERYTHING = http_route_group("everything", '{name: all, pathRegex: ".*", methods: ["*"]}')
ANY_METHOD = http_route_group("everything", '{name: all, methods: ["*"]}')


def checkout_services(cluster: str) -> list[str]:
    """``checkout`` (the split root) on ``{cluster}1`` and its backends ``checkout-v1`` and
    ``checkout-v2`` on ``.2`` and ``.3``, all HTTP on 8080."""
    root = service("checkout", f"{cluster}1", {"app": "checkout"})
    versions = (("v1", 2), ("v2", 3))
    return [root] + [
        service(f"checkout-{v}", f"{cluster}{i}", {"app": "checkout", "version": v}) for v, i in versions
    ]


def checkout_pods(
    pods: str, names: Iterable[str] = ("checkout-v1-0", "checkout-v2-0"), *, owned: bool
) -> list[str]:
    """One pod of each checkout version, on ``{pods}1`` and ``{pods}2``; ``owned`` gives them
    their ReplicaSets (``CHECKOUT_REPLICASETS``)."""
    return [
        pod(
            name,
            f"{pods}{i}",
            {"app": "checkout", "version": v},
            replicaset=CHECKOUT_REPLICASETS[v] if owned else None,
        )
        for i, (v, name) in enumerate(zip(("v1", "v2"), names, strict=True), 1)
    ]


def web_to(destination: str, routes: str = "everything", **rule: str) -> str:
    """``web-to-{destination}``: web may reach ``destination`` on the HTTPRouteGroup ``routes``."""
    return traffic_target(
        f"web-to-{destination}", destination, {"kind": "HTTPRouteGroup", "name": routes, **rule}
    )


def canary_shop(
    cluster: str,
    pods: str,
    *,
    checkout: Iterable[str] = ("checkout-v1-0", "checkout-v2-0"),
    web: str = "web-0",
) -> list[str]:
    """``checkout-canary``: checkout split 90/10 between checkout-v1 and checkout-v2 (pods named
    ``checkout``), and the caller ``web`` (on ``{pods}10``) allowed every route to checkout; every
    pod is owned by its ReplicaSet."""
    return [
        *checkout_services(cluster),
        *checkout_pods(pods, checkout, owned=True),
        pod(web, f"{pods}10", {"app": "web"}, replicaset=WEB_REPLICASET),
        traffic_split("checkout-canary", {"checkout-v1": 90, "checkout-v2": 10}),
        EVERYTHING,
        web_to("checkout", matches="[all]"),
    ]


# --- the bed and what runs on it --------------------------------------------------------------------------


def loopback_bed(manifests: str, directory: Path, **options: Any) -> LoopbackBed:
    """A ``LoopbackBed`` (not started: use it in a ``with``) for the IR of ``manifests``."""
    from smi_bridge.verify import LoopbackBed, ir_from_manifests

    return LoopbackBed(ir_from_manifests(manifests), directory, **options)


def fetch(client: HTTPClient, count: int = 1, **request: Any) -> list[Response]:
    """``count`` requests (``HTTPClient.request`` arguments) one after another on ``client``,
    which is closed after them."""

    async def go() -> list[Response]:
        try:
            return [await client.request(**request) for _ in range(count)]
        finally:
            await client.aclose()

    return asyncio.run(go())


def read_reply(
    host: str,
    port: int,
    read: Callable[[asyncio.StreamReader], Awaitable[bytes]],
    timeout: float,
    **connection: Any,
) -> bytes:
    """Connect (``connection``: ``asyncio.open_connection`` options), send nothing and return what
    ``read`` reads within ``timeout`` seconds; the connection is closed after."""

    async def go() -> bytes:
        reader, writer = await asyncio.open_connection(host, port, **connection)
        try:
            return await asyncio.wait_for(read(reader), timeout)
        finally:
            writer.close()
            await writer.wait_closed()

    return asyncio.run(go())


def metric_families(bed: LoopbackBed) -> dict[str, Metric]:
    """The families of the proxy's own admin ``/metrics``, by name (counters without ``_total``)."""
    status, text = bed.proxy.admin("/metrics")
    assert status == 200, text
    return {family.name: family for family in text_string_to_metric_families(text)}


def metric_samples(bed: LoopbackBed, name: str) -> list[Sample]:
    """The samples of the family ``name`` of the proxy's own metrics; none when it is missing."""
    family = metric_families(bed).get(name)
    return family.samples if family is not None else []
