"""Building the IR: every reference resolved, every unresolved one reported, the rest still built."""

from __future__ import annotations

import textwrap

import pytest

from smi_bridge import ir
from smi_bridge.build import BuildResult, build
from smi_bridge.load import load_bytes
from smi_bridge.parse import parse_documents

SERVICES = """
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.0.0.1
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: grpc, port: 9090}]
---
apiVersion: v1
kind: Service
metadata: {name: web-v1, namespace: shop}
spec:
  selector: {app: web, version: v1}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: grpc, port: 9090}]
---
apiVersion: v1
kind: Service
metadata: {name: web-v2, namespace: shop}
spec:
  selector: {app: web, version: v2}
  ports: [{name: http, port: 80, targetPort: http-alt}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-v1, namespace: shop}
spec:
  template:
    metadata: {labels: {app: web, version: v1}}
    spec: {serviceAccountName: web}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-v2-abc12
  namespace: shop
  labels: {app: web, version: v2}
  ownerReferences: [{kind: ReplicaSet, name: web-v2-7f9c4d8b6}]
spec: {serviceAccountName: web-canary}
status: {podIP: 10.1.0.7}
"""


def built(text: str) -> BuildResult:
    loaded = load_bytes(textwrap.dedent(text).encode(), "in.yaml")
    parsed = parse_documents(loaded.documents)
    return build(parsed.resources)


def split(spec: str, version: str = "v1alpha4", ns: str = "shop", name: str = "s") -> str:
    return f"""
---
apiVersion: split.smi-spec.io/{version}
kind: TrafficSplit
metadata: {{name: {name}, namespace: {ns}}}
spec: {spec}
"""


def codes(result: BuildResult) -> list[str]:
    return sorted(d.code for d in result.diagnostics)


def test_v1alpha1_quantities_become_exact_integer_ratios() -> None:
    r = built(
        split("{service: web, backends: [{service: a, weight: 1}, {service: b, weight: 500m}]}", "v1alpha1")
    )
    assert [b.weight for b in r.ir.splits[0].backends] == [2, 1]
    r = built(
        split(
            "{service: web, backends: [{service: a, weight: 10m}, {service: b, weight: 100m}, "
            "{service: c, weight: 1500m}]}",
            "v1alpha1",
        )
    )
    assert [b.weight for b in r.ir.splits[0].backends] == [1, 10, 150]


@pytest.mark.parametrize("root", ["web", "web.shop", "web.shop.svc", "web.shop.svc.cluster.local"])
def test_root_service_forms_of_the_splits_namespace_are_accepted(root: str) -> None:
    r = built(split(f"{{service: {root}, backends: [{{service: web-v1, weight: 1}}]}}"))
    assert r.ir.splits[0].root == "web"
    assert "SMB032" not in codes(r)


@pytest.mark.parametrize("root", ["web.other", "web.shop.svc.example.com", "web.shop.pod"])
def test_root_service_in_another_namespace_or_domain_is_an_error(root: str) -> None:
    r = built(split(f"{{service: {root}, backends: [{{service: web-v1, weight: 1}}]}}"))
    assert codes(r) == ["SMB032"]
    assert r.ir.splits == ()


def test_services_know_their_serviceaccounts_from_templates_and_pods() -> None:
    r = built(SERVICES)
    web = r.ir.service("shop", "web")
    assert web is not None
    assert web.service_accounts == ("web", "web-canary")
    assert r.ir.service("shop", "web-v2").service_accounts == ("web-canary",)  # type: ignore[union-attr]
    pod = next(p for p in r.ir.pods if not p.template)
    assert pod.workload == "web-v2"


def test_endpoints_come_from_pods_when_no_endpointslice_exists() -> None:
    r = built(SERVICES)
    v2 = r.ir.service("shop", "web-v2")
    assert v2 is not None
    (ep,) = v2.endpoints
    assert (ep.address, ep.pod, ep.service_account) == ("10.1.0.7", "web-v2-abc12", "web-canary")


def test_endpointslices_win_over_pods() -> None:
    r = built(
        SERVICES
        + """
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-v2-xyz
  namespace: shop
  labels: {kubernetes.io/service-name: web-v2}
addressType: IPv4
ports: [{name: http, port: 8081}]
endpoints:
- addresses: [10.1.0.7, 10.1.0.8]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: web-v2-abc12}
"""
    )
    v2 = r.ir.service("shop", "web-v2")
    assert v2 is not None
    assert [e.address for e in v2.endpoints] == ["10.1.0.7", "10.1.0.8"]
    assert v2.target_port(80) == 8081  # the named targetPort resolved through the slice


def test_backend_missing_a_root_port_is_reported_with_inventory() -> None:
    r = built(
        SERVICES
        + split("{service: web, backends: [{service: web-v1, weight: 1}, {service: web-v2, weight: 1}]}")
    )
    (d,) = [d for d in r.diagnostics if d.code == "SMB039"]
    assert "9090" in d.message and "web-v2" in d.message


def test_dangling_backend_and_root_are_reported_only_with_inventory() -> None:
    spec = "{service: nothere, backends: [{service: ghost, weight: 1}]}"
    assert codes(built(split(spec))) == []
    assert codes(built(SERVICES + split(spec))) == ["SMB033", "SMB034"]


def test_all_zero_weights_self_backend_and_duplicates_are_reported() -> None:
    r = built(split("{service: web, backends: [{service: web, weight: 0}, {service: web, weight: 0}]}"))
    assert codes(r) == ["SMB035", "SMB037", "SMB037", "SMB045"]


def test_two_splits_on_one_root_keep_the_first_by_name() -> None:
    r = built(
        split("{service: web, backends: [{service: a, weight: 1}]}", name="b-second")
        + split("{service: web, backends: [{service: b, weight: 1}]}", name="a-first")
    )
    (d,) = r.diagnostics
    assert d.code == "SMB036" and d.resource.name == "b-second" and "a-first applies" in d.message


def test_split_matches_resolve_to_the_route_groups_routes() -> None:
    r = built(
        """
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: ab, namespace: shop}
spec: {matches: [{name: ff, headers: [{User-Agent: ".*Firefox.*"}], methods: ["*"]}]}
"""
        + split(
            "{service: web, matches: [{kind: HTTPRouteGroup, name: ab}], backends: [{service: a, weight: 1}]}"
        )
    )
    (s,) = r.ir.splits
    assert s.matches is not None
    (m,) = s.matches
    assert m.headers == (ir.HeaderMatch("user-agent", ".*Firefox.*"),)
    assert m.methods == ()  # "*" means every method
    assert s.route_groups == ("ab",)


def test_split_with_dangling_match_reference_matches_nothing() -> None:
    r = built(
        split(
            "{service: web, matches: [{kind: HTTPRouteGroup, name: nope}], backends: [{service: a, weight: 1}]}"
        )
    )
    assert codes(r) == ["SMB030"]
    assert r.ir.splits[0].matches == ()


TARGET_V1 = """
---
apiVersion: specs.smi-spec.io/v1alpha1
kind: HTTPRouteGroup
metadata: {name: routes, namespace: shop}
matches:
- {name: metrics, pathRegex: /metrics, methods: [GET]}
- {name: all, pathRegex: ".*", methods: ["*"]}
---
apiVersion: access.smi-spec.io/v1alpha1
kind: TrafficTarget
metadata: {name: t, namespace: shop}
destination: {kind: ServiceAccount, name: web, port: 8080}
specs:
- {kind: HTTPRouteGroup, name: routes, matches: [metrics, missing]}
sources:
- {kind: ServiceAccount, name: prometheus, namespace: monitoring}
- {kind: ServiceAccount, name: local}
"""


def test_access_v1alpha1_port_becomes_a_tcp_rule_and_namespaces_default_to_the_target() -> None:
    r = built(TARGET_V1)
    (t,) = r.ir.targets
    assert t.destination == ir.Identity("shop", "web")
    assert t.sources == (ir.Identity("monitoring", "prometheus"), ir.Identity("shop", "local"))
    http, tcp = t.rules
    assert (http.kind, [m.name for m in http.matches]) == ("http", ["metrics"])
    assert (tcp.kind, tcp.ports) == ("tcp", (8080,))
    assert codes(r) == ["SMB031", "SMB041"]


def test_rule_whose_match_names_all_dangle_is_dropped_not_widened() -> None:
    r = built(TARGET_V1.replace("[metrics, missing]", "[missing]"))
    (t,) = r.ir.targets
    assert [rule.kind for rule in t.rules] == ["tcp"]


def test_rules_without_matches_mean_every_route_of_the_group() -> None:
    r = built(TARGET_V1.replace(", matches: [metrics, missing]", ""))
    assert [m.name for m in r.ir.targets[0].rules[0].matches] == ["metrics", "all"]


def test_mixed_tcp_and_http_rules_and_destination_namespace_are_noted() -> None:
    r = built("""
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: port, namespace: shop}
spec: {matches: {ports: [8080]}}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: routes, namespace: shop}
spec: {matches: [{name: a, pathRegex: /a}]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: t, namespace: shop}
spec:
  destination: {kind: ServiceAccount, name: web, namespace: other}
  rules: [{kind: TCPRoute, name: port, matches: [x]}, {kind: HTTPRouteGroup, name: routes}]
  sources: [{kind: ServiceAccount, name: c}]
""")
    assert codes(r) == ["SMB038", "SMB042", "SMB043"]
    t = r.ir.targets[0]
    assert [(x.kind, x.ports) for x in t.rules] == [("tcp", (8080,)), ("http", ())]


def test_ir_collections_are_sorted_and_round_trip_through_the_dict_codec() -> None:
    r = built(SERVICES + TARGET_V1 + split("{service: web, backends: [{service: web-v1, weight: 3}]}"))
    assert list(r.ir.services) == sorted(r.ir.services, key=lambda s: (s.namespace, s.name))
    assert ir.ir_from_dict(ir.ir_to_dict(r.ir)) == r.ir


def test_httproutegroup_v1alpha2_routes_with_headers_are_built() -> None:
    r = built("""
---
apiVersion: specs.smi-spec.io/v1alpha2
kind: HTTPRouteGroup
metadata: {name: g, namespace: shop}
matches:
- name: ff
  headers:
  - user-agent: ".*Firefox.*"
""")
    (g,) = r.ir.route_groups
    assert g.matches[0].headers == (ir.HeaderMatch("user-agent", ".*Firefox.*"),)
    assert g.matches[0].origin.path == "matches[0]"
