"""The linkerd backend: SMI access as Servers, routes, AuthorizationPolicies and MeshTLSAuthentications;
splits as GAMMA routes or ServiceProfiles; and all of it read back.

The proof is the round trip: ``semantics.compile(ingest(emit(ir)))`` decides every generated probe
like ``semantics.compile(ir)`` (backends, weights and access), except where a warning or error of
the emit report names the split or the TrafficTarget that decides it. Every emitted object
validates against Linkerd's (and Gateway API's) published CRDs, and the admission rules the CRDs
cannot express (non-overlapping Servers, Server parents without port) are checked here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from backends.base import Emission, Options, SourceObject
from backends.linkerd import CHECKS, LinkerdBackend, identity_string, matches_disjoint
from smi_bridge.crdcheck import CRDIndex
from smi_bridge.diagnostics import Report, Severity
from smi_bridge.ir import (
    IR,
    AccessRule,
    HeaderMatch,
    HTTPMatch,
    Identity,
    Origin,
    Pod,
    PortRoute,
    RouteGroup,
    Service,
    ServicePort,
    Split,
    SplitBackend,
    TrafficTarget,
)
from smi_bridge.probes import generate_requests
from smi_bridge.semantics import Request, compile
from tests.backend_helpers import as_source_objects, damaged, outcome, read_import_fixture
from tests.conftest import FIXTURES
from tests.strategies import irs

BACKEND = LinkerdBackend()
LINKERD_FIXTURES = FIXTURES / "import" / "linkerd"
NS = "shop"
WEB, API, DB, ADMIN, STRANGER = (Identity(NS, n) for n in ("web", "api", "db", "admin", "stranger"))
AUDITOR = Identity("compliance", "auditor")


# --- building blocks ------------------------------------------------------------------------------


def origin(kind: str, name: str, path: str = "", ns: str = NS) -> Origin:
    return Origin(kind, ns, name, "access.smi-spec.io/v1alpha3", "input.yaml", 3, None, path)


def service(name: str, sa: str, *ports: ServicePort, app: str | None = None) -> Service:
    return Service(
        NS,
        name,
        ports=ports,
        selector=(("app", app or name),),
        service_accounts=(sa,),
        origin=Origin("Service", NS, name, "v1"),
    )


def pod(name: str, sa: str, **labels: str) -> Pod:
    return Pod(NS, name, tuple(sorted(labels.items())), sa, origin=Origin("Pod", NS, name, "v1"))


READ = HTTPMatch(
    "read", "/api/books", ("GET",), origin=origin("HTTPRouteGroup", "api-routes", "spec.matches[0]")
)
WRITE = HTTPMatch(
    "write", "/api/books", ("POST", "PUT"), origin=origin("HTTPRouteGroup", "api-routes", "spec.matches[1]")
)
ADMIN_ROUTE = HTTPMatch(
    "admin",
    "/admin",
    (),
    (HeaderMatch("x-admin", "yes"),),
    origin("HTTPRouteGroup", "api-routes", "spec.matches[2]"),
)
GROUP = RouteGroup(NS, "api-routes", (READ, WRITE, ADMIN_ROUTE), origin("HTTPRouteGroup", "api-routes"))
DB_PORTS = PortRoute(NS, "db-port", "tcp", (5432,), origin("TCPRoute", "db-port"))


def target(name: str, dest: Identity, sources: Sequence[Identity], *rules: AccessRule) -> TrafficTarget:
    return TrafficTarget(NS, name, dest, tuple(sources), rules, origin("TrafficTarget", name))


def http_rule(*matches: HTTPMatch) -> AccessRule:
    return AccessRule("http", "api-routes", matches, origin=origin("TrafficTarget", "rule", "spec.rules[0]"))


def tcp_rule(*ports: int) -> AccessRule:
    return AccessRule("tcp", "db-port", ports=ports, origin=origin("TrafficTarget", "rule", "spec.rules[1]"))


def shop_ir(*targets: TrafficTarget, splits: Sequence[Split] = ()) -> IR:
    return IR(
        services=(
            service("web", "web", ServicePort(80, "http", 8080)),
            service("api", "api", ServicePort(80, "http", 8080), ServicePort(9090, "http-metrics", 9090)),
            service("api-v2", "api", ServicePort(80, "http", 8080), app="api-v2"),
            service("db", "db", ServicePort(5432, "postgres", 5432)),
        ),
        pods=(
            pod("web-0", "web", app="web"),
            pod("api-0", "api", app="api", team="books"),
            pod("api-v2-0", "api", app="api-v2", team="books"),
            pod("db-0", "db", app="db"),
            pod("admin-0", "admin", app="admin"),
        ),
        route_groups=(GROUP,),
        port_routes=(DB_PORTS,),
        splits=tuple(splits),
        targets=tuple(sorted(targets, key=lambda t: t.name)),
    )


def readers() -> TrafficTarget:
    return target("api-readers", API, [WEB, AUDITOR], http_rule(READ))


def writers() -> TrafficTarget:
    return target("api-writers", API, [ADMIN], http_rule(WRITE, ADMIN_ROUTE))


def db_clients() -> TrafficTarget:
    return target("db-clients", DB, [API], tcp_rule(5432))


def emit(ir: IR, options: Options | None = None) -> Emission:
    return BACKEND.emit(ir, options or Options())


def objects_of(emission: Emission, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in emission.objects if o["kind"] == kind}


def find(report: Report | Sequence[Any], code: str) -> list[Any]:
    return [d for d in report if d.code == code]


def load_fixture(name: str) -> tuple[list[SourceObject], IR]:
    return read_import_fixture(LINKERD_FIXTURES / name)


# --- admission rules the CRDs cannot say ----------------------------------------------------------


def admission_errors(objects: Sequence[Mapping[str, Any]], ir: IR) -> list[str]:
    """Linkerd's webhook and policy-controller rules we can hit, plus the Gateway API CEL ones."""
    errors: list[str] = []
    servers = [o for o in objects if o["kind"] == "Server"]
    for i, a in enumerate(servers):
        for b in servers[i + 1 :]:
            if (
                a["metadata"]["namespace"] != b["metadata"]["namespace"]
                or a["spec"]["port"] != b["spec"]["port"]
            ):
                continue
            sa, sb = a["spec"]["podSelector"]["matchLabels"], b["spec"]["podSelector"]["matchLabels"]
            for p in ir.pods:
                labels = dict(p.labels)
                both = all(labels.get(k) == v for k, v in sa.items()) and all(
                    labels.get(k) == v for k, v in sb.items()
                )
                if p.namespace == a["metadata"]["namespace"] and both:
                    errors.append(
                        f"Servers {a['metadata']['name']} and {b['metadata']['name']} overlap on {p.name}"
                    )
    for o in objects:
        spec = o.get("spec", {})
        if o["kind"] == "HTTPRoute":
            parents = spec["parentRefs"]
            assert len(parents) == 1
            if parents[0]["kind"] == "Server":
                assert o["apiVersion"] == "policy.linkerd.io/v1beta3"
                if "port" in parents[0] or "sectionName" in parents[0]:
                    errors.append("a Server parent must not set port or sectionName")
                if (o["metadata"]["namespace"], parents[0]["name"]) not in {
                    (s["metadata"]["namespace"], s["metadata"]["name"]) for s in servers
                }:
                    errors.append(f"route {o['metadata']['name']} names a missing Server")
            for rule in spec.get("rules", []):
                for m in rule.get("matches", []):
                    names = [h["name"] for h in m.get("headers", [])]
                    if len(names) != len(set(names)):
                        errors.append("duplicate header match name")
                for ref in rule.get("backendRefs", []):
                    if "port" not in ref:
                        errors.append("Service backendRef without port")
        if o["kind"] == "TCPRoute" and len(spec["rules"]) != 1:
            errors.append("one rule per TCPRoute")
        if o["kind"] == "AuthorizationPolicy":
            ref = spec["targetRef"]
            if ref["kind"] not in ("Server", "HTTPRoute") or ref["group"] != "policy.linkerd.io":
                errors.append(f"unexpected target {ref}")
            present = {(x["kind"], x["metadata"]["namespace"], x["metadata"]["name"]) for x in objects}
            if (ref["kind"], o["metadata"]["namespace"], ref["name"]) not in present:
                errors.append(f"policy {o['metadata']['name']} targets a missing {ref['kind']}")
            for auth in spec["requiredAuthenticationRefs"]:
                if ("MeshTLSAuthentication", auth["namespace"], auth["name"]) not in present:
                    errors.append(f"policy {o['metadata']['name']} names a missing authentication")
    return errors


def assert_valid(emission: Emission, crds: CRDIndex, ir: IR) -> None:
    for obj in emission.objects:
        assert crds.has(obj["apiVersion"], obj["kind"]), f"no CRD for {obj['apiVersion']} {obj['kind']}"
        problems = crds.validate(obj)
        assert not problems, f"{obj['kind']} {obj['metadata']['name']}: {problems}\n{obj}"
    reported = any(d.code == "SMT229" for d in emission.diagnostics)
    errors = admission_errors(emission.objects, ir)
    assert not errors or (reported and all("overlap" in e for e in errors)), errors


# --- the round-trip oracle ------------------------------------------------------------------------


def _brief(diagnostics: Sequence[Any]) -> list[str]:
    return [f"{d.code} {d.message}" for d in diagnostics][:8]


def round_trip(ir: IR, options: Options) -> tuple[IR, Emission, Report]:
    emission = BACKEND.emit(ir, options)
    back, report = BACKEND.ingest(
        as_source_objects(emission.objects), IR(services=ir.services, pods=ir.pods), options
    )
    return back, emission, report


def assert_round_trip(ir: IR, options: Options | None = None, *, max_requests: int = 3000) -> tuple[IR, int]:
    """Decisions on ``ingest(emit(ir))`` equal those on ``ir``, except where the emit report names the
    split (by root) or the TrafficTarget (by destination) that decides a request."""
    options = options or Options()
    back, emission, _ = round_trip(ir, options)
    lossy = [d for d in emission.diagnostics if d.severity >= Severity.WARNING]
    split_roots = {
        (s.namespace, s.root)
        for s in ir.splits
        for d in lossy
        if d.resource.kind == "TrafficSplit"
        and (d.resource.namespace, d.resource.name) == (s.namespace, s.name)
    }
    targets = {(t.namespace, t.name): t for t in ir.targets}
    named = [
        targets[(d.resource.namespace, d.resource.name)] for d in lossy if d.resource.kind == "TrafficTarget"
    ]
    destinations = {t.destination for t in named}
    # a podSelector that also picks other ServiceAccounts' pods affects those ServiceAccounts too
    wide = {
        targets[(d.resource.namespace, d.resource.name)].destination.namespace
        for d in lossy
        if d.code in ("SMT222", "SMT229") and d.resource.kind == "TrafficTarget"
    }
    before = compile(ir, access_mode=options.access_mode)
    after = compile(back, access_mode=options.access_mode)
    compared = 0
    for request in generate_requests(ir, max_requests=max_requests):
        a, b = before.decide(request), after.decide(request)
        identities = {i for d in (a, b) for c in d.backends for i in c.identities}
        if (request.namespace, request.service) in split_roots or identities & destinations:
            continue
        if any(i.namespace in wide for i in identities):
            continue
        assert outcome(a) == outcome(b), f"{request}\n  before: {a}\n  after:  {b}\n  report: {_brief(lossy)}"
        compared += 1
    return back, compared


# --- access: emit ---------------------------------------------------------------------------------


def test_destination_gets_one_deny_server_per_workload_port_selected_by_common_labels() -> None:
    out = emit(shop_ir(readers()))
    servers = objects_of(out, "Server")
    assert set(servers) == {"api-8080", "api-9090"}
    assert servers["api-8080"]["apiVersion"] == "policy.linkerd.io/v1beta3"
    assert servers["api-8080"]["spec"] == {
        "podSelector": {"matchLabels": {"team": "books"}},
        "port": 8080,
        "accessPolicy": "deny",
    }


def test_all_sources_of_one_target_share_one_mesh_tls_authentication_with_linkerd_identities() -> None:
    options = Options(trust_domain="corp.example", linkerd_control_plane_ns="linkerd-cp")
    out = emit(shop_ir(readers()), options)
    (mtls,) = objects_of(out, "MeshTLSAuthentication").values()
    assert mtls["metadata"]["name"] == "api-readers"
    assert mtls["spec"]["identities"] == [
        "auditor.compliance.serviceaccount.identity.linkerd-cp.corp.example",
        "web.shop.serviceaccount.identity.linkerd-cp.corp.example",
    ]
    for policy in objects_of(out, "AuthorizationPolicy").values():
        # requiredAuthenticationRefs are ANDed: exactly one, holding every source
        assert policy["spec"]["requiredAuthenticationRefs"] == [
            {
                "group": "policy.linkerd.io",
                "kind": "MeshTLSAuthentication",
                "name": "api-readers",
                "namespace": NS,
            }
        ]


def test_http_rules_become_a_route_per_server_with_a_route_level_policy() -> None:
    out = emit(shop_ir(readers()))
    routes = objects_of(out, "HTTPRoute")
    assert set(routes) == {"api-readers-8080", "api-readers-9090"}
    route = routes["api-readers-8080"]
    assert route["apiVersion"] == "policy.linkerd.io/v1beta3"
    assert route["spec"] == {
        "parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": "api-8080"}],
        "rules": [
            {"matches": [{"path": {"type": "RegularExpression", "value": "^/api/books.*$"}, "method": "GET"}]}
        ],
    }
    policy = objects_of(out, "AuthorizationPolicy")["api-readers-8080"]
    assert policy["spec"]["targetRef"] == {
        "group": "policy.linkerd.io",
        "kind": "HTTPRoute",
        "name": "api-readers-8080",
    }
    assert find(out.diagnostics, "SMT228")


def test_tcp_only_target_authorizes_the_servers_of_its_ports() -> None:
    out = emit(shop_ir(db_clients()))
    (policy,) = objects_of(out, "AuthorizationPolicy").values()
    assert policy["spec"]["targetRef"] == {"group": "policy.linkerd.io", "kind": "Server", "name": "db-5432"}
    assert not objects_of(out, "HTTPRoute")


def test_tcp_rule_next_to_http_rules_narrows_the_servers_the_routes_sit_on() -> None:
    t = target("api-metrics", API, [WEB], http_rule(READ), AccessRule("tcp", "metrics-port", ports=(9090,)))
    out = emit(shop_ir(t))
    assert set(objects_of(out, "HTTPRoute")) == {"api-metrics-9090"}
    assert_round_trip(shop_ir(t))


def test_server_with_server_level_and_route_policies_gets_a_catch_all_route() -> None:
    l4 = target("api-ops", API, [ADMIN], tcp_rule())
    out = emit(shop_ir(readers(), l4))
    routes = objects_of(out, "HTTPRoute")
    assert routes["api-8080-catch-all"]["spec"]["rules"] == [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}
    ]
    assert {p["spec"]["targetRef"]["kind"] for p in objects_of(out, "AuthorizationPolicy").values()} == {
        "Server",
        "HTTPRoute",
    }
    assert_round_trip(shop_ir(readers(), l4))


def test_overlapping_routes_with_different_sources_are_reported_and_disjoint_ones_are_not() -> None:
    assert not find(emit(shop_ir(readers(), writers())).diagnostics, "SMT225")  # GET vs POST/PUT, /admin
    everything = target("api-all", API, [ADMIN], http_rule(HTTPMatch("all", None)))
    overlap = find(emit(shop_ir(readers(), everything)).diagnostics, "SMT225")
    assert overlap and "api-readers" in overlap[0].message


def test_disjointness_is_only_claimed_when_no_request_can_match_both() -> None:
    assert matches_disjoint(HTTPMatch("a", "/a$"), HTTPMatch("b", "/b$"))
    assert matches_disjoint(HTTPMatch("a", "/api/"), HTTPMatch("b", "/admin"))
    assert matches_disjoint(HTTPMatch("a", None, ("GET",)), HTTPMatch("b", None, ("POST",)))
    assert not matches_disjoint(HTTPMatch("a", "/api"), HTTPMatch("b", "/api/v1"))
    assert not matches_disjoint(HTTPMatch("a", "/a[0-9]"), HTTPMatch("b", "/a1"))


def test_destination_without_pods_is_an_error_and_gets_no_server() -> None:
    ghost = target("ghost", Identity(NS, "ghost"), [WEB], tcp_rule())
    out = emit(shop_ir(ghost))
    assert not out.objects
    (error,) = find(out.diagnostics, "SMT220")
    assert error.severity == Severity.ERROR and error.resource.name == "ghost"
    assert {ghost, *ghost.rules} <= out.consumed


def test_selector_that_also_picks_another_service_accounts_pods_is_reported() -> None:
    ir = shop_ir(readers())
    ir = IR(
        services=ir.services,
        pods=(*ir.pods, pod("api-debug", "debugger", app="debug", team="books")),
        route_groups=ir.route_groups,
        targets=ir.targets,
    )
    (wide,) = find(emit(ir).diagnostics, "SMT222")
    assert "debugger" in wide.message


def test_enforce_mode_names_workloads_without_targets_and_permissive_mode_does_not() -> None:
    notes = find(emit(shop_ir(readers())).diagnostics, "SMT226")
    assert notes and all(n.severity == Severity.INFO for n in notes)
    assert "config.linkerd.io/default-inbound-policy: deny" in notes[0].message
    assert "admin, db, web" in notes[0].message
    assert not find(emit(shop_ir(readers()), Options(access_mode="permissive")).diagnostics, "SMT226")


def test_udp_rules_are_reported_because_linkerd_does_not_proxy_udp() -> None:
    dns = target("dns", DB, [WEB], AccessRule("udp", "dns", ports=(53,)))
    assert find(emit(shop_ir(dns)).diagnostics, "SMT224")


def test_every_check_has_a_code_in_the_linkerd_ranges() -> None:
    assert len({c.code for c in CHECKS}) == len(CHECKS)
    for c in CHECKS:
        assert re.fullmatch(r"SM[TX]2\d\d", c.code), c.code


def test_identity_strings_carry_the_control_plane_namespace() -> None:
    assert identity_string(WEB, Options()) == "web.shop.serviceaccount.identity.linkerd.cluster.local"


# --- splits ---------------------------------------------------------------------------------------


def api_split(matches: tuple[HTTPMatch, ...] | None = None) -> Split:
    return Split(
        NS,
        "api-canary",
        "api",
        (SplitBackend("api", 500, origin("TrafficSplit", "api-canary")), SplitBackend("api-v2", 500)),
        matches=matches,
        origin=origin("TrafficSplit", "api-canary"),
    )


def test_split_defaults_to_gamma_routes_with_tcp_routes_at_linkerds_version() -> None:
    ir = shop_ir(
        splits=[
            api_split(),
            Split(NS, "db", "db", (SplitBackend("db", 1),), origin=origin("TrafficSplit", "db")),
        ]
    )
    out = emit(ir)
    routes = objects_of(out, "HTTPRoute")
    http = routes["api-canary-80"]
    assert http["apiVersion"] == "gateway.networking.k8s.io/v1"
    # api-v2 has no port 9090: there the split holds the root alone
    assert [r["name"] for r in routes["api-canary-9090"]["spec"]["rules"][0]["backendRefs"]] == ["api"]
    assert http["spec"]["rules"][0]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "api", "port": 80, "weight": 1},
        {"group": "", "kind": "Service", "name": "api-v2", "port": 80, "weight": 1},
    ]
    assert objects_of(out, "TCPRoute")["db"]["apiVersion"] == "gateway.networking.k8s.io/v1alpha2"


def test_service_profile_mode_writes_dst_overrides_like_linkerd_smi() -> None:
    out = emit(shop_ir(splits=[api_split()]), Options(linkerd_split="serviceprofile"))
    (profile,) = objects_of(out, "ServiceProfile").values()
    assert profile["metadata"] == {
        **profile["metadata"],
        "name": "api.shop.svc.cluster.local",
        "namespace": NS,
    }
    assert profile["spec"] == {
        "dstOverrides": [
            {"authority": "api.shop.svc.cluster.local", "weight": 500},
            {"authority": "api-v2.shop.svc.cluster.local", "weight": 500},
        ]
    }


def test_service_profile_refuses_a_split_with_matches() -> None:
    out = emit(shop_ir(splits=[api_split((READ,))]), Options(linkerd_split="serviceprofile"))
    assert not objects_of(out, "ServiceProfile")
    assert find(out.diagnostics, "SMT227")[0].severity == Severity.ERROR


@pytest.mark.parametrize("style", ["httproute", "serviceprofile"])
def test_hand_built_ir_validates_and_decides_the_same_after_the_round_trip(
    style: str, vendor_crds: CRDIndex
) -> None:
    ir = shop_ir(readers(), writers(), db_clients(), splits=[api_split()])
    options = Options(linkerd_split=style)  # type: ignore[arg-type]
    out = emit(ir, options)
    assert_valid(out, vendor_crds, ir)
    assert set(ir.consumable()) <= out.consumed
    back, compared = assert_round_trip(ir, options)
    assert compared > 300
    assert not round_trip(ir, options)[2].diagnostics  # our own output reads back without a finding
    assert {t.name for t in back.targets} == {"api-readers", "api-writers", "db-clients"}


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(ir=irs())
def test_generated_irs_validate_and_decide_the_same_in_enforce_mode(ir: IR, vendor_crds: CRDIndex) -> None:
    out = emit(ir)
    assert_valid(out, vendor_crds, ir)
    assert set(ir.consumable()) <= out.consumed
    assert_round_trip(ir, max_requests=1500)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(ir=irs())
def test_generated_irs_decide_the_same_in_permissive_mode_with_service_profiles(ir: IR) -> None:
    assert_round_trip(
        ir, Options(access_mode="permissive", linkerd_split="serviceprofile"), max_requests=1500
    )


# --- ingest ---------------------------------------------------------------------------------------


def test_per_route_policy_reads_back_as_traffic_targets_per_authentication() -> None:
    objects, inventory = load_fixture("library-policy.yaml")
    ir, report = BACKEND.ingest(objects, inventory, Options())
    targets = {t.name: t for t in ir.targets}
    assert set(targets) == {"library-readers", "library-writers", "books-from-frontend"}
    readers_t = targets["library-readers"]
    assert readers_t.destination == Identity("library", "authors")
    assert readers_t.sources == (Identity("library", "books"), Identity("library", "frontend"))
    (rule,) = readers_t.rules
    assert rule.kind == "http" and [(m.path_regex, m.methods) for m in rule.matches] == [
        (r"/authors\.json$", ("GET",)),
        (r"/authors/\d+\.json$", ("GET",)),
    ]
    # the three requiredAuthenticationRefs are ANDed: readers ∩ (any address) ∩ frontend
    assert targets["books-from-frontend"].sources == (Identity("library", "frontend"),)
    assert find(report, "SMX223") and find(report, "SMX205") and find(report, "SMX203")
    decide = compile(ir).decide
    get = Request(Identity("library", "books"), "library", "authors", 7001, path="/authors/12.json")
    assert decide(get).allowed
    assert not decide(
        Request(Identity("library", "books"), "library", "authors", 7001, "http", "POST", "/authors")
    ).allowed
    assert decide(
        Request(Identity("library", "frontend"), "library", "authors", 7001, "http", "POST", "/authors/1")
    ).allowed


def test_legacy_server_authorization_is_read_and_unauthenticated_clients_reported() -> None:
    objects, inventory = load_fixture("legacy-server-authorization.yaml")
    ir, report = BACKEND.ingest(objects, inventory, Options())
    (t,) = ir.targets
    assert t.destination == Identity("bank", "ledger")
    assert t.sources == (Identity("bank", "teller"), Identity("compliance", "auditor"))
    assert t.rules[0].kind == "tcp" and t.rules[0].ports == ()  # both of the ledger's Servers
    assert {d.code for d in report if d.severity >= Severity.WARNING} == {"SMX223", "SMX224"}


def test_service_profiles_become_splits_and_win_over_httproutes() -> None:
    objects, inventory = load_fixture("service-profile.yaml")
    ir, report = BACKEND.ingest(objects, inventory, Options())
    splits = {s.root: s for s in ir.splits}
    assert [(b.service, b.weight) for b in splits["backend-svc"].backends] == [
        ("backend-svc", 1),
        ("failing-svc", 0),
    ]
    # 1 : 250m exactly, the port suffix on the authority ignored, the other namespace dropped
    assert [(b.service, b.weight) for b in splits["emoji"].backends] == [("emoji", 4), ("emoji-v2", 1)]
    (conflict,) = find(report, "SMX231")
    assert "emoji-gamma" in conflict.message and "service-profile.yaml:" in conflict.message
    assert {d.path for d in find(report, "SMX230")} == {"spec.routes", "spec.retryBudget"}
    assert find(report, "SMX232")[0].path == "spec.dstOverrides[2]"


def test_hazards_are_each_reported_with_object_and_field() -> None:
    objects, inventory = load_fixture("hazards.yaml")
    ir, report = BACKEND.ingest(objects, inventory, Options())
    got = {(d.code, d.resource.name, d.path) for d in report}
    for expected in [
        ("SMX221", "metrics-http", "spec.accessPolicy"),
        ("SMX222", "vm-exporter", "spec.externalWorkloadSelector"),
        ("SMX225", "dashboards", "spec.identities[0]"),
        ("SMX226", "dashboards", "spec.identities[2]"),
        ("SMX225", "everyone-meshed", "spec.identities[0]"),
        ("SMX227", "obs-meshed", "spec.targetRef"),
        ("SMX228", "metrics-grpc", "spec.targetRef"),
        ("SMX229", "metrics-missing-authn", "spec.requiredAuthenticationRefs[0]"),
        ("SMX237", "metrics-limit", ""),
        ("SMX237", "internet", ""),
    ]:
        assert expected in got, expected
    dashboards = next(t for t in ir.targets if t.name == "dashboards")
    assert dashboards.sources == (Identity("dashboards", "grafana"), Identity("obs", "scraper"))
    assert all(d.file and d.line for d in report)


def test_foreign_trust_domain_identities_are_read_with_the_right_options() -> None:
    mtls = {
        "apiVersion": "policy.linkerd.io/v1alpha1",
        "kind": "MeshTLSAuthentication",
        "metadata": {"name": "prod", "namespace": "obs"},
        "spec": {"identities": ["prometheus.monitoring.serviceaccount.identity.linkerd.prod.example.com"]},
    }
    objects, inventory = load_fixture("hazards.yaml")
    options = Options(trust_domain="prod.example.com")
    _, report = BACKEND.ingest([*objects, *as_source_objects([mtls])], inventory, options)
    assert not [d for d in find(report, "SMX226") if d.resource.name == "prod"]


def test_unknown_kinds_are_listed_once_each_and_passed_over() -> None:
    objs = [
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": NS}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": NS}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": NS}},
    ]
    _, report = BACKEND.ingest(as_source_objects(objs), IR(), Options())
    assert [(d.code, d.resource.kind) for d in report] == [("SMX200", "Widget"), ("SMX200", "ConfigMap")]


# --- malformed input -----------------------------------------------------------------------------

LINKERD_FILES = (
    "library-policy.yaml",
    "legacy-server-authorization.yaml",
    "service-profile.yaml",
    "hazards.yaml",
)
LINKERD_OBJECTS = [o for name in LINKERD_FILES for o in load_fixture(name)[0]]
LINKERD_INVENTORY = IR(
    services=tuple(s for name in LINKERD_FILES for s in load_fixture(name)[1].services),
    pods=tuple(p for name in LINKERD_FILES for p in load_fixture(name)[1].pods),
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(objects=damaged(LINKERD_OBJECTS))
def test_malformed_objects_give_diagnostics_never_a_traceback(objects: list[SourceObject]) -> None:
    ir, report = BACKEND.ingest(objects, LINKERD_INVENTORY, Options())
    assert all(d.code.startswith("SMX2") for d in report)
    assert list(ir.targets) == sorted(ir.targets, key=lambda t: (t.namespace, t.name))


def test_a_malformed_policy_is_named_with_its_place() -> None:
    policy = {
        "apiVersion": "policy.linkerd.io/v1alpha1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "broken", "namespace": NS},
        "spec": {"targetRef": "Server/api", "requiredAuthenticationRefs": []},
    }
    _, report = BACKEND.ingest(as_source_objects([policy]), IR(), Options())
    (d,) = report.diagnostics
    assert d.code == "SMX238" and d.severity == Severity.ERROR and d.resource.name == "broken" and d.line == 1
