"""End to end on the real kube-apiserver 1.20.2 + etcd: the controller as a process, SMI changes made
with kubectl, the applied objects, Events and the Lease read back; two processes for leader election."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import REPO
from tests.controller.cluster import Cluster, crds
from tests.controller.harness import demo_docs, docs

pytestmark = pytest.mark.realapi
Obj = dict[str, Any]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ControllerProcess:
    """``python -m smi_bridge.controller`` against the real tier."""

    def __init__(self, cluster: Cluster, identity: str, namespaces: list[str], lease_ns: str) -> None:
        self.port = _free_port()
        args = [
            sys.executable,
            "-m",
            "smi_bridge.controller",
            "--backend",
            "istio",
            "--kubeconfig",
            str(cluster.kubeconfig()),
            "--leader-elect",
            "--leader-election-namespace",
            lease_ns,
            "--identity",
            identity,
            "--metrics-addr",
            "0",
            "--health-addr",
            f"127.0.0.1:{self.port}",
            "--discovery-interval",
            "2",
            "--lease-duration",
            "4",
            "--renew-deadline",
            "3",
            "--retry-period",
            "0.5",
        ]
        for ns in namespaces:
            args += ["--watch-namespace", ns]
        self.proc = subprocess.Popen(
            args,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )

    def ready(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return self.proc.returncode, out


@pytest.fixture
def bed(real: Cluster) -> Iterator[tuple[Cluster, str, str]]:
    """Two fresh namespaces with the SMI and Istio CRDs installed, and the bookstore inventory in the first."""
    real.install_crds(crds("smi", "istio"))
    app, other = real.namespace("shop"), real.namespace("web")
    for obj in demo_docs():
        if obj["kind"] == "Namespace" or "smi-spec.io" in obj["apiVersion"]:
            continue
        obj["metadata"]["namespace"] = app
        if obj["kind"] == "Service":
            obj["spec"].pop("clusterIP", None)  # the real server allocates from its own range
        real.create(obj)
    yield real, app, other


def _kubectl_apply(c: Cluster, objects: list[Obj], ns: str) -> None:
    """``kubectl apply`` into ``ns``, the demo's own namespace references moved there too."""
    moved = json.loads(
        json.dumps(objects).replace('"namespace": "bookstore"', json.dumps({"namespace": ns})[1:-1])
    )
    for o in moved:
        o["metadata"]["namespace"] = ns
    c.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(moved))


def _get(c: Cluster, kind: str, ns: str, name: str) -> Obj | None:
    out = c.kubectl("get", kind, name, "-n", ns, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else None


def _set_weights(c: Cluster, namespace: str, v1: int, v2: int) -> None:
    """Change bookstore-canary's weights with kubectl, as a user would."""
    backends = [{"service": "bookstore-v1", "weight": v1}, {"service": "bookstore-v2", "weight": v2}]
    c.kubectl(
        "patch",
        "trafficsplits.split.smi-spec.io",
        "bookstore-canary",
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        json.dumps({"spec": {"backends": backends}}),
    )


def _weights(c: Cluster, ns: str) -> list[int]:
    vs = _get(c, "virtualservices.networking.istio.io", ns, "bookstore-canary")
    return [r["weight"] for r in (vs or {}).get("spec", {}).get("http", [{}])[0].get("route", [])]


def test_controller_process_on_the_real_api_server(bed: tuple[Cluster, str, str]) -> None:
    c, app, other = bed
    smi = [o for o in demo_docs() if "smi-spec.io" in o["apiVersion"]]
    proc = ControllerProcess(c, "solo", [app, other], app)
    try:
        c.wait_for(proc.ready, timeout=60, what="controller /readyz")
        _kubectl_apply(c, smi, app)
        c.wait_for(lambda: _weights(c, app) == [90, 10], timeout=30, what="VirtualService applied")
        want = [
            "authorizationpolicy.security.istio.io/bookbuyer-to-bookstore",
            "authorizationpolicy.security.istio.io/smi-bridge-deny-by-default",
        ]
        c.wait_for(
            lambda: (
                sorted(
                    c.kubectl(
                        "get", "authorizationpolicies.security.istio.io", "-n", app, "-o", "name"
                    ).stdout.split()
                )
                == want
            ),
            timeout=30,
            what="AuthorizationPolicies",
        )
        vs = c.get("networking.istio.io/v1", "VirtualService", app, "bookstore-canary")
        assert vs is not None
        assert [(m["manager"], m["operation"]) for m in vs["metadata"]["managedFields"]] == [
            ("smi-bridge", "Apply")
        ]
        assert vs["metadata"]["ownerReferences"][0]["kind"] == "TrafficSplit"
        # a weight change made with kubectl
        _set_weights(c, app, 30, 70)
        c.wait_for(lambda: _weights(c, app) == [30, 70], timeout=30, what="new weights")
        # Events, as the real server stored them (events.k8s.io, MicroTime accepted)
        events = json.loads(c.kubectl("get", "events.events.k8s.io", "-n", app, "-o", "json").stdout)["items"]
        reasons = {e["reason"] for e in events}
        assert {"LossyTranslation", "Applied"} <= reasons
        assert all(e["reportingController"] == "smi-bridge" for e in events if e["reason"] in reasons)
        lease = _get(c, "leases.coordination.k8s.io", app, "smi-bridge-istio")
        assert lease is not None and lease["spec"]["holderIdentity"] == "solo"
        # a cross-namespace TrafficTarget: output in the other namespace, a finalizer, cleanup on delete
        cross = docs(f"""
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {{name: to-other}}
spec:
  destination: {{kind: ServiceAccount, name: web, namespace: {other}}}
  rules:
  - {{kind: HTTPRouteGroup, name: bookstore-routes}}
  sources:
  - {{kind: ServiceAccount, name: bookbuyer, namespace: {app}}}
""")
        for obj in docs(f"""
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {other}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: web-1, namespace: {other}, labels: {{app: web}}}}
spec: {{serviceAccountName: web, containers: [{{name: c, image: web, ports: [{{containerPort: 8080}}]}}]}}
status: {{podIP: 10.1.0.5}}
"""):
            c.create(obj)
        _kubectl_apply(c, cross, app)
        c.wait_for(
            lambda: (
                (_get(c, "traffictargets.access.smi-spec.io", app, "to-other") or {})
                .get("metadata", {})
                .get("finalizers")
                == ["smi-bridge.io/cleanup"]
            ),
            timeout=30,
            what="finalizer",
        )
        c.wait_for(
            lambda: _get(c, "authorizationpolicies.security.istio.io", other, f"{app}-to-other"),
            timeout=30,
            what="cross-namespace AuthorizationPolicy",
        )
        c.kubectl("delete", "traffictargets.access.smi-spec.io", "to-other", "-n", app, "--wait=false")
        c.wait_for(
            lambda: _get(c, "traffictargets.access.smi-spec.io", app, "to-other") is None,
            timeout=30,
            what="TrafficTarget gone after cleanup",
        )
        assert _get(c, "authorizationpolicies.security.istio.io", other, f"{app}-to-other") is None
        # deleting the split prunes its VirtualService (no garbage collector on this tier: we do it)
        c.kubectl("delete", "trafficsplits.split.smi-spec.io", "bookstore-canary", "-n", app)
        c.wait_for(
            lambda: _get(c, "virtualservices.networking.istio.io", app, "bookstore-canary") is None,
            timeout=30,
            what="VirtualService pruned",
        )
    finally:
        code, output = proc.stop()
    assert code == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    lease = _get(c, "leases.coordination.k8s.io", app, "smi-bridge-istio")
    assert lease is not None and not lease["spec"].get("holderIdentity")


def test_two_controller_processes_elect_one_leader_and_fail_over(bed: tuple[Cluster, str, str]) -> None:
    c, app, _other = bed
    smi = [o for o in demo_docs() if "smi-spec.io" in o["apiVersion"]]
    _kubectl_apply(c, smi, app)
    first = ControllerProcess(c, "first", [app], app)
    c.wait_for(first.ready, timeout=60, what="first ready")
    second = ControllerProcess(c, "second", [app], app)
    try:
        c.wait_for(second.ready, timeout=60, what="second ready (leader known)")
        c.wait_for(lambda: _weights(c, app) == [90, 10], timeout=30, what="VirtualService applied")
        lease = _get(c, "leases.coordination.k8s.io", app, "smi-bridge-istio")
        assert lease is not None and lease["spec"]["holderIdentity"] == "first"
        vs = _get(c, "virtualservices.networking.istio.io", app, "bookstore-canary")
        code, output = first.stop()
        assert code == 0, output[-3000:]
        c.wait_for(
            lambda: (
                (_get(c, "leases.coordination.k8s.io", app, "smi-bridge-istio") or {})
                .get("spec", {})
                .get("holderIdentity")
                == "second"
            ),
            timeout=30,
            what="second takes the lease",
        )
        # the unchanged VirtualService was not rewritten by the new leader
        assert _get(c, "virtualservices.networking.istio.io", app, "bookstore-canary") == vs
        _set_weights(c, app, 1, 1)
        c.wait_for(lambda: _weights(c, app) == [50, 50], timeout=30, what="the new leader reconciles")
        transitions = (_get(c, "leases.coordination.k8s.io", app, "smi-bridge-istio") or {})["spec"][
            "leaseTransitions"
        ]
        assert transitions >= 1
    finally:
        first.stop()
        code, output = second.stop()
    assert code == 0, output[-3000:]
