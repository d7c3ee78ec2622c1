"""The Helm chart: rendered (tests/controller/helmrender.py), then held to Pod Security "restricted",
to least privilege, and to what the controller actually calls; dry-run on the real API server."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.controller.cluster import Cluster
from tests.controller.harness import demo_docs, docs, install, off, put, running, settled
from tests.controller.helmrender import TemplateError, render_objects
from tests.controller.test_controller_reconcile import CROSS

CHART = REPO / "deploy" / "helm" / "smi-bridge"
Obj = dict[str, Any]
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
TARGET_GROUPS = {
    "istio": {"networking.istio.io", "security.istio.io"},
    "linkerd": {"policy.linkerd.io", "linkerd.io", "gateway.networking.k8s.io"},
    "consul": {"consul.hashicorp.com"},
    "gateway-api": {"gateway.networking.k8s.io"},
}
SMI_GROUPS = {"split.smi-spec.io", "access.smi-spec.io", "specs.smi-spec.io"}


def _kinds(objects: list[Obj]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def restricted_violations(pod_spec: Obj) -> list[str]:
    """The Pod Security Standard "restricted" checks (v1.30) that apply to a pod spec."""
    out: list[str] = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(flag):
            out.append(flag)
    psc = pod_spec.get("securityContext") or {}
    allowed_volumes = {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
    for v in pod_spec.get("volumes") or []:
        kinds = set(v) - {"name"}
        if not kinds <= allowed_volumes:
            out.append(f"volume {v['name']}: {kinds - allowed_volumes}")
    if (psc.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        containers_ok = all(
            ((c.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
            in ("RuntimeDefault", "Localhost")
            for c in pod_spec.get("containers") or []
        )
        if not containers_ok:
            out.append("seccompProfile")
    for c in (pod_spec.get("containers") or []) + (pod_spec.get("initContainers") or []):
        sc = c.get("securityContext") or {}
        name = c.get("name")
        if sc.get("privileged"):
            out.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{name}: capabilities.drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{name}: capabilities.add")
        if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
            out.append(f"{name}: runAsNonRoot")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            out.append(f"{name}: runAsUser 0")
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                out.append(f"{name}: hostPort")
        if sc.get("procMount") not in (None, "Default"):
            out.append(f"{name}: procMount")
    if psc.get("sysctls"):
        out.append("sysctls")
    return out


@pytest.mark.parametrize(
    "values",
    [
        {},
        {
            "backend": "linkerd",
            "watchNamespaces": ["shop", "web"],
            "metrics": {"serviceMonitor": {"enabled": True}},
        },
        {
            "backend": "consul",
            "leaderElection": {"enabled": False},
            "replicaCount": 1,
            "podDisruptionBudget": {"enabled": False},
        },
        {"backend": "gateway-api", "serviceAccount": {"create": False, "name": "existing"}},
    ],
    ids=["defaults", "linkerd-namespaced-servicemonitor", "consul-single", "gateway-api-own-sa"],
)
def test_the_chart_renders_valid_restricted_objects(values: Obj) -> None:
    objects = render_objects(CHART, values=values)
    for obj in objects:
        assert obj.get("apiVersion") and obj.get("kind") and obj["metadata"].get("name"), obj
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", obj["metadata"]["name"])
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert restricted_violations(pod) == []
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["requests"] and container["resources"]["limits"]
    args = container["args"]
    assert args[0] == "controller" and f"--backend={values.get('backend', 'istio')}" in args
    assert "--log-level=info" in args
    assert {p["name"] for p in container["ports"]} == {"metrics", "health"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert (
        deployment["spec"]["selector"]["matchLabels"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    has_sm = "ServiceMonitor" in _kinds(objects)
    assert has_sm == bool(values.get("metrics", {}).get("serviceMonitor", {}).get("enabled"))
    namespaces = values.get("watchNamespaces") or []
    assert [a for a in args if a.startswith("--watch-namespace=")] == [
        f"--watch-namespace={n}" for n in namespaces
    ]
    leader = values.get("leaderElection", {}).get("enabled", True)
    assert ("--leader-elect" in args) == leader
    lease_rules = [
        r for o in objects if o["kind"] == "Role" for r in o["rules"] if r["resources"] == ["leases"]
    ]
    assert bool(lease_rules) == leader
    assert ("ServiceAccount" in _kinds(objects)) == values.get("serviceAccount", {}).get("create", True)


@pytest.mark.parametrize("backend", ["istio", "linkerd", "consul", "gateway-api"])
@pytest.mark.parametrize("namespaces", [[], ["a", "b"]])
def test_rbac_is_least_privilege(backend: str, namespaces: list[str]) -> None:
    objects = render_objects(CHART, values={"backend": backend, "watchNamespaces": namespaces})
    roles = [o for o in objects if o["kind"] in ("ClusterRole", "Role")]
    cluster_roles = [o for o in roles if o["kind"] == "ClusterRole"]
    assert bool(cluster_roles) == (not namespaces)
    if namespaces:
        scoped = sorted(
            o["metadata"]["namespace"] for o in roles if not o["metadata"]["name"].endswith("leader-election")
        )
        assert scoped == namespaces
    for role in roles:
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], rule
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])
            assert not {"secrets", "configmaps", "roles", "rolebindings", "clusterroles"} & set(
                rule["resources"]
            )
            writes = WRITE_VERBS & set(rule["verbs"])
            if not writes:
                continue
            groups = set(rule["apiGroups"])
            if groups <= TARGET_GROUPS[backend]:
                continue
            if groups <= SMI_GROUPS:
                assert writes == {"patch"}, rule  # the cleanup finalizer only
            elif rule["resources"] == ["events"]:
                assert writes == {"create", "patch"}
            elif rule["resources"] == ["leases"]:
                assert role["metadata"]["name"].endswith("leader-election")
                assert writes == {"create"} or (
                    writes == {"update"} and rule.get("resourceNames") == [f"smi-bridge-{backend}"]
                )
            else:
                pytest.fail(f"unexpected write access: {rule}")
    written_groups = {
        g for r in roles for rule in r["rules"] if WRITE_VERBS & set(rule["verbs"]) for g in rule["apiGroups"]
    }
    for other, groups in TARGET_GROUPS.items():
        if other != backend:
            assert not (groups - TARGET_GROUPS[backend]) & written_groups


def test_an_unknown_backend_fails_to_render() -> None:
    with pytest.raises(TemplateError, match="backend must be one of"):
        render_objects(CHART, values={"backend": "kuma"})


def _attributes(
    method: str, path: str, query: dict[str, str], status: int
) -> list[tuple[str, str, str, str | None, str | None]]:
    """(verb, group, resource, namespace, name) the request needs, as the API server's RBAC sees it."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) > 3:
        group, rest = parts[1], parts[3:]
    else:
        return []  # discovery, /version: non-resource URLs every authenticated user may read
    if not rest:
        return []  # /api/v1 itself: discovery
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource, name = rest[0], (rest[1] if len(rest) > 1 else None)
    if method == "GET":
        verb = "get" if name else ("watch" if query.get("watch") in ("true", "1") else "list")
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
    out = [(verb, group, resource, namespace, name)]
    if method == "PATCH" and status == 201:
        out.append(("create", group, resource, namespace, name))  # apply that creates
    return out


def _allowed(
    objects: list[Obj], attr: tuple[str, str, str, str | None, str | None], sa: tuple[str, str]
) -> bool:
    verb, group, resource, namespace, name = attr
    roles = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
        for o in objects
        if o["kind"] in ("Role", "ClusterRole")
    }
    for b in objects:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(
            s["kind"] == "ServiceAccount" and (s["namespace"], s["name"]) == sa for s in b["subjects"]
        ):
            continue
        if b["kind"] == "RoleBinding" and b["metadata"]["namespace"] != namespace:
            continue
        ref = b["roleRef"]
        role = roles.get(
            (ref["kind"], b["metadata"].get("namespace") if ref["kind"] == "Role" else None, ref["name"])
        )
        for rule in (role or {}).get("rules", []):
            if group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]:
                names = rule.get("resourceNames")
                if names is None or name in names:
                    return True
    return False


@pytest.mark.parametrize("namespaced", [False, True], ids=["cluster-wide", "watch-namespaces"])
def test_every_call_the_controller_makes_is_allowed_by_the_chart_rbac(
    fake: Cluster, namespaced: bool
) -> None:
    """Least privilege must still be enough: replay the controller's request log through the rendered RBAC."""
    install(fake, "smi", "istio")
    put(fake, demo_docs() + docs(CROSS))
    assert fake.fake is not None
    namespaces = ["bookstore", "policy", "web"] if namespaced else []
    objects = render_objects(CHART, values={"watchNamespaces": namespaces}, namespace="default")
    sa = ("default", "smi-bridge")

    async def body() -> None:
        extra = {"namespaces": tuple(namespaces)} if namespaced else {}
        async with running(
            fake, leader_elect=True, identity="rbac", lease_name="smi-bridge-istio", **extra
        ) as ctl:
            await settled(ctl)
            await off(
                fake.fake.delete_object, "access.smi-spec.io/v1alpha3", "TrafficTarget", "policy", "to-web"
            )
            await settled(ctl)

    asyncio.run(body())
    denied = set()
    for r in fake.fake.requests:
        for attr in _attributes(r.method, r.path, dict(r.query), r.status):
            if not _allowed(objects, attr, sa):
                denied.add(attr)
    assert sorted(denied, key=str) == []


@pytest.mark.realapi
def test_the_rendered_manifests_pass_a_server_side_dry_run_on_the_real_api_server(real: Cluster) -> None:
    ns = real.namespace("chart")
    objects = render_objects(
        CHART, namespace=ns, api_versions=("v1", "apps/v1", "policy/v1beta1", "rbac.authorization.k8s.io/v1")
    )
    text = yaml.safe_dump_all(objects)
    out = real.kubectl("apply", "--dry-run=server", "-f", "-", stdin=text)
    assert out.stdout.count("(server dry run)") == len(objects)


def test_the_dockerfile_runs_smi_bridge_as_non_root() -> None:
    text = (REPO / "deploy" / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] == "65532"
    assert re.search(r'^ENTRYPOINT \["smi-bridge"\]', text, re.M)
    assert all(
        ":" in line.split()[1] and "latest" not in line for line in re.findall(r"^FROM .*", text, re.M)
    )
    deployment = next(o for o in render_objects(CHART) if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "controller"
    assert Path(CHART / "values.yaml").exists()
