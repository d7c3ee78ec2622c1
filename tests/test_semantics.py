"""The reference meaning of SMI: one test per rule of ``smi_bridge.semantics``, then properties."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smi_bridge import semantics
from smi_bridge.ir import (
    IR,
    AccessRule,
    HeaderMatch,
    HTTPMatch,
    Identity,
    RouteGroup,
    Service,
    ServicePort,
    Split,
    SplitBackend,
    TrafficTarget,
    ir_from_dict,
    ir_to_dict,
)
from smi_bridge.probes import generate_requests
from smi_bridge.semantics import Request, compile
from tests.strategies import irs, requests_for

NS = "shop"
CLIENT = Identity(NS, "client")
OTHER = Identity(NS, "other")


def http_service(name: str, *ports: int, sa: str | None = None, target: int | None = None) -> Service:
    return Service(
        namespace=NS,
        name=name,
        ports=tuple(ServicePort(p, name=f"http-{p}", target_port=target) for p in ports or (8080,)),
        service_accounts=(sa,) if sa else (),
    )


def split(
    name: str, root: str, *backends: tuple[str, int], matches: Sequence[HTTPMatch] | None = None
) -> Split:
    return Split(
        namespace=NS,
        name=name,
        root=root,
        backends=tuple(SplitBackend(s, w) for s, w in backends),
        matches=None if matches is None else tuple(matches),
    )


def target(
    name: str,
    dest_sa: str,
    *rules: AccessRule,
    sources: Sequence[Identity] = (CLIENT,),
    dest_ns: str = NS,
) -> TrafficTarget:
    return TrafficTarget(dest_ns, name, Identity(dest_ns, dest_sa), tuple(sources), tuple(rules))


def http_rule(*matches: HTTPMatch, route: str = "routes") -> AccessRule:
    return AccessRule("http", route, matches=tuple(matches))


def tcp_rule(*ports: int) -> AccessRule:
    return AccessRule("tcp", "tcp-route", ports=tuple(ports))


def udp_rule(*ports: int) -> AccessRule:
    return AccessRule("udp", "udp-route", ports=tuple(ports))


def get(service: str, path: str = "/", *, port: int = 8080, method: str = "GET", **kw: object) -> Request:
    return Request(
        source=kw.get("source", CLIENT),  # type: ignore[arg-type]
        namespace=NS,
        service=service,
        port=port,
        protocol="http",
        method=method,
        path=path,
        headers=kw.get("headers", ()),  # type: ignore[arg-type]
    )


def connect(service: str, port: int, protocol: str = "tcp", source: Identity | None = CLIENT) -> Request:
    return Request(source, NS, service, port, protocol)  # type: ignore[arg-type]


def weights(decision: semantics.Decision) -> dict[str, int]:
    return {b.service: b.weight for b in decision.backends}


OPEN = dict(access_mode="permissive")

# --- splits ----------------------------------------------------------------------------------


def test_split_90_10_sends_traffic_to_both_backends_by_weight() -> None:
    ir = IR(
        services=(http_service("web"), http_service("web-v1"), http_service("web-v2")),
        splits=(split("canary", "web", ("web-v1", 90), ("web-v2", 10)),),
    )
    d = compile(ir, access_mode="permissive").decide(get("web"))
    assert d.split == "canary"
    assert weights(d) == {"web-v1": 90, "web-v2": 10}
    assert "shop/canary" in d.reason


def test_zero_weight_backend_gets_no_traffic() -> None:
    ir = IR(splits=(split("s", "web", ("web-v1", 100), ("web-v2", 0)),))
    d = compile(ir, access_mode="permissive").decide(get("web"))
    assert weights(d) == {"web-v1": 100}


def test_all_zero_weights_send_traffic_to_root_unsplit() -> None:
    ir = IR(splits=(split("s", "web", ("web-v1", 0), ("web-v2", 0)),))
    d = compile(ir, access_mode="permissive").decide(get("web"))
    assert d.split is None
    assert [(b.service, b.weight) for b in d.backends] == [("web", 1)]
    assert "zero weights" in d.reason


def test_service_without_split_is_routed_unsplit_to_itself() -> None:
    d = compile(IR(services=(http_service("web"),)), access_mode="permissive").decide(get("web"))
    assert (d.split, d.route) == (None, None)
    assert [(b.service, b.weight) for b in d.backends] == [("web", 1)]


def test_split_in_other_namespace_does_not_apply() -> None:
    other = Split("elsewhere", "s", "web", (SplitBackend("web-v1", 1),))
    d = compile(IR(splits=(other,)), access_mode="permissive").decide(get("web"))
    assert d.split is None


def test_first_split_by_name_applies_when_two_share_a_root() -> None:
    ir = IR(splits=(split("b-second", "web", ("web-v2", 1)), split("a-first", "web", ("web-v1", 1))))
    d = compile(ir, access_mode="permissive").decide(get("web"))
    assert d.split == "a-first"
    assert weights(d) == {"web-v1": 1}


def test_split_matches_send_matching_request_to_backends() -> None:
    canary = HTTPMatch("canary-users", headers=(HeaderMatch("x-canary", "yes"),))
    ir = IR(splits=(split("ab", "web", ("web-v2", 1), matches=[canary]),))
    d = compile(ir, access_mode="permissive").decide(get("web", headers=(("x-canary", "yes"),)))
    assert (d.split, d.route) == ("ab", "canary-users")
    assert weights(d) == {"web-v2": 1}


def test_request_not_matching_split_matches_goes_to_root() -> None:
    canary = HTTPMatch("canary-users", headers=(HeaderMatch("x-canary", "yes"),))
    ir = IR(splits=(split("ab", "web", ("web-v2", 1), matches=[canary]),))
    d = compile(ir, access_mode="permissive").decide(get("web", headers=(("x-canary", "no"),)))
    assert d.split is None
    assert weights(d) == {"web": 1}
    assert "matches no route" in d.reason


def test_tcp_request_never_matches_a_split_with_matches() -> None:
    everything = HTTPMatch("all")
    ir = IR(splits=(split("ab", "web", ("web-v2", 1), matches=[everything]),))
    d = compile(ir, access_mode="permissive").decide(connect("web", 8080))
    assert d.split is None
    assert weights(d) == {"web": 1}


def test_split_without_matches_splits_tcp_too() -> None:
    ir = IR(splits=(split("s", "db", ("db-v2", 1)),))
    d = compile(ir, access_mode="permissive").decide(connect("db", 5432))
    assert d.split == "s"
    assert weights(d) == {"db-v2": 1}


def test_split_with_empty_matches_splits_nothing() -> None:
    ir = IR(splits=(split("s", "web", ("web-v2", 1), matches=[]),))
    assert compile(ir, access_mode="permissive").decide(get("web")).split is None


def test_backend_without_the_root_port_is_excluded_for_that_port() -> None:
    ir = IR(
        services=(
            http_service("web", 8080, 9090),
            http_service("web-v1", 8080, 9090),
            http_service("web-v2", 8080),
        ),
        splits=(split("s", "web", ("web-v1", 50), ("web-v2", 50)),),
    )
    router = compile(ir, access_mode="permissive")
    assert weights(router.decide(get("web", port=8080))) == {"web-v1": 50, "web-v2": 50}
    assert weights(router.decide(get("web", port=9090))) == {"web-v1": 50}


def test_no_backend_with_the_port_sends_request_to_root() -> None:
    ir = IR(
        services=(http_service("web", 9090), http_service("web-v1", 8080)),
        splits=(split("s", "web", ("web-v1", 1)),),
    )
    d = compile(ir, access_mode="permissive").decide(get("web", port=9090))
    assert d.split is None
    assert weights(d) == {"web": 1}
    assert "port 9090" in d.reason


def test_backend_service_unknown_to_the_ir_is_kept() -> None:
    ir = IR(services=(http_service("web", 9090),), splits=(split("s", "web", ("web-v9", 1)),))
    assert weights(compile(ir, access_mode="permissive").decide(get("web", port=9090))) == {"web-v9": 1}


# --- route matching ----------------------------------------------------------------------------


def router_for_route(match: HTTPMatch) -> semantics.Router:
    return compile(IR(splits=(split("s", "web", ("web-v2", 1), matches=[match]),)), access_mode="permissive")


def test_path_regex_is_anchored_at_the_start_only() -> None:
    router = router_for_route(HTTPMatch("api", path_regex="/api"))
    assert router.decide(get("web", "/api/v2")).route == "api"
    assert router.decide(get("web", "/apix")).route == "api"
    assert router.decide(get("web", "/v1/api")).route is None


def test_query_string_is_not_part_of_the_path() -> None:
    router = router_for_route(HTTPMatch("exact", path_regex="/books$"))
    assert router.decide(get("web", "/books?page=2")).route == "exact"


def test_methods_compare_upper_case_and_empty_means_every_method() -> None:
    router = router_for_route(HTTPMatch("writes", methods=("POST", "PUT")))
    assert router.decide(get("web", method="post")).route == "writes"
    assert router.decide(get("web", method="GET")).route is None
    assert router_for_route(HTTPMatch("any")).decide(get("web", method="DELETE")).route == "any"


def test_header_match_needs_the_header_with_a_fully_matching_value() -> None:
    router = router_for_route(HTTPMatch("beta", headers=(HeaderMatch("x-env", "beta|canary"),)))
    assert router.decide(get("web", headers=(("x-env", "canary"),))).route == "beta"
    assert router.decide(get("web", headers=(("x-env", "canary-2"),))).route is None
    assert router.decide(get("web")).route is None


def test_any_value_of_a_repeated_header_may_match() -> None:
    router = router_for_route(HTTPMatch("beta", headers=(HeaderMatch("x-env", "beta"),)))
    assert router.decide(get("web", headers=(("x-env", "prod"), ("x-env", "beta")))).route == "beta"


def test_path_method_and_headers_of_one_route_are_anded() -> None:
    match = HTTPMatch("m", path_regex="/api", methods=("GET",), headers=(HeaderMatch("x-user", "alice"),))
    router = router_for_route(match)
    alice = (("x-user", "alice"),)
    assert router.decide(get("web", "/api", headers=alice)).route == "m"
    assert router.decide(get("web", "/web", headers=alice)).route is None
    assert router.decide(get("web", "/api", method="POST", headers=alice)).route is None
    assert router.decide(get("web", "/api")).route is None


def test_routes_of_a_split_are_ored_and_the_first_match_is_named() -> None:
    ir = IR(
        splits=(
            split(
                "s",
                "web",
                ("web-v2", 1),
                matches=[HTTPMatch("api", path_regex="/api"), HTTPMatch("all-api", path_regex="/")],
            ),
        )
    )
    router = compile(ir, access_mode="permissive")
    assert router.decide(get("web", "/api/x")).route == "api"
    assert router.decide(get("web", "/books")).route == "all-api"


@pytest.mark.parametrize("bad", ["/api(?=/v1)", "/api[", "(a)\\1"])
def test_uncompilable_or_non_re2_regex_never_matches(bad: str) -> None:
    router = router_for_route(HTTPMatch("bad", path_regex=bad))
    assert router.decide(get("web", "/api/v1")).route is None
    header_router = router_for_route(HTTPMatch("bad", headers=(HeaderMatch("x-user", bad),)))
    assert header_router.decide(get("web", headers=(("x-user", "/api/v1"),))).route is None


# --- access ------------------------------------------------------------------------------------

API_ONLY = HTTPMatch("api", path_regex="/api", methods=("GET",))


def test_destination_with_a_traffic_target_is_deny_by_default() -> None:
    ir = IR(services=(http_service("api", sa="api"),), targets=(target("t", "api", http_rule(API_ONLY)),))
    router = compile(ir, access_mode="permissive")
    assert router.decide(get("api", "/api/books")).allowed
    denied = router.decide(get("api", "/admin"))
    assert not denied.allowed
    assert denied.backends[0].reason == (
        "no TrafficTarget allows source shop/client to reach shop/api on GET /admin port 8080"
    )


def test_identity_without_traffic_target_is_denied_in_enforce_mode() -> None:
    d = compile(IR(services=(http_service("api", sa="api"),))).decide(get("api"))
    assert not d.allowed
    assert "enforce" in d.backends[0].reason


def test_permissive_mode_allows_identity_without_traffic_target() -> None:
    d = compile(IR(services=(http_service("api", sa="api"),)), access_mode="permissive").decide(get("api"))
    assert d.allowed
    assert d.backends[0].identities == (Identity(NS, "api"),)


def test_service_without_known_service_account_follows_the_access_mode() -> None:
    ir = IR(services=(http_service("api"),), targets=(target("t", "api", http_rule(API_ONLY)),))
    assert not compile(ir).decide(get("api", "/api")).allowed
    assert compile(ir, access_mode="permissive").decide(get("api", "/api")).allowed


def test_every_service_account_behind_a_service_must_allow() -> None:
    svc = Service(NS, "api", ports=(ServicePort(8080, "http"),), service_accounts=("api", "legacy"))
    legacy_other_route = target("u", "legacy", http_rule(HTTPMatch("other", path_regex="/other")))
    one = IR(services=(svc,), targets=(target("t", "api", http_rule(API_ONLY)), legacy_other_route))
    d = compile(one, access_mode="permissive").decide(get("api", "/api"))
    assert not d.allowed
    assert "shop/legacy" in d.backends[0].reason
    both = IR(
        services=(svc,),
        targets=(target("t", "api", http_rule(API_ONLY)), target("u", "legacy", http_rule(API_ONLY))),
    )
    d = compile(both).decide(get("api", "/api"))
    assert d.allowed
    assert d.backends[0].identities == (Identity(NS, "api"), Identity(NS, "legacy"))


def test_unauthenticated_source_is_denied() -> None:
    ir = IR(
        services=(http_service("api", sa="api"),), targets=(target("t", "api", http_rule(HTTPMatch("all"))),)
    )
    d = compile(ir).decide(get("api", source=None))
    assert not d.allowed
    assert "unauthenticated" in d.backends[0].reason


def test_source_not_listed_in_the_target_is_denied() -> None:
    ir = IR(
        services=(http_service("api", sa="api"),), targets=(target("t", "api", http_rule(HTTPMatch("all"))),)
    )
    assert not compile(ir).decide(get("api", source=OTHER)).allowed


def test_cross_namespace_source_is_allowed_when_listed() -> None:
    monitor = Identity("monitoring", "prometheus")
    ir = IR(
        services=(http_service("api", sa="api"),),
        targets=(
            target("t", "api", http_rule(HTTPMatch("metrics", path_regex="/metrics")), sources=[monitor]),
        ),
    )
    router = compile(ir)
    assert router.decide(get("api", "/metrics", source=monitor)).allowed
    assert not router.decide(get("api", "/metrics", source=Identity(NS, "prometheus"))).allowed


def test_two_targets_on_one_destination_are_ored() -> None:
    ir = IR(
        services=(http_service("api", sa="api"),),
        targets=(
            target("reads", "api", http_rule(HTTPMatch("get", methods=("GET",)))),
            target("writes", "api", http_rule(HTTPMatch("post", methods=("POST",)))),
        ),
    )
    router = compile(ir)
    assert router.decide(get("api", method="GET")).backends[0].reason == "allowed by TrafficTarget shop/reads"
    assert (
        router.decide(get("api", method="POST")).backends[0].reason == "allowed by TrafficTarget shop/writes"
    )
    assert not router.decide(get("api", method="DELETE")).allowed


def test_target_in_another_namespace_still_guards_its_destination() -> None:
    foreign = TrafficTarget("ops", "t", Identity(NS, "api"), (CLIENT,), (http_rule(API_ONLY),))
    router = compile(
        IR(services=(http_service("api", sa="api"),), targets=(foreign,)), access_mode="permissive"
    )
    assert router.decide(get("api", "/api")).allowed
    assert not router.decide(get("api", "/other")).allowed


def test_rule_naming_no_matches_allows_every_route_of_its_group() -> None:
    group = RouteGroup(
        NS, "routes", (HTTPMatch("api", path_regex="/api"), HTTPMatch("metrics", path_regex="/metrics"))
    )
    # the builder resolves "no matches named" to all routes of the group
    ir = IR(
        services=(http_service("api", sa="api"),),
        route_groups=(group,),
        targets=(target("t", "api", http_rule(*group.matches)),),
    )
    router = compile(ir)
    assert router.decide(get("api", "/api")).allowed
    assert router.decide(get("api", "/metrics")).allowed
    assert not router.decide(get("api", "/admin")).allowed


def test_http_rule_without_routes_allows_nothing() -> None:
    ir = IR(services=(http_service("api", sa="api"),), targets=(target("t", "api", http_rule()),))
    assert not compile(ir).decide(get("api")).allowed


def test_target_without_rules_denies() -> None:
    ir = IR(services=(http_service("api", sa="api"),), targets=(target("t", "api"),))
    router = compile(ir)
    assert not router.decide(get("api")).allowed
    assert not router.decide(connect("api", 8080)).allowed


def test_tcp_rule_next_to_http_rules_narrows_http_to_its_ports() -> None:
    ir = IR(
        services=(http_service("api", 8080, 9090, sa="api"),),
        targets=(target("t", "api", tcp_rule(8080), http_rule(API_ONLY)),),
    )
    router = compile(ir)
    assert router.decide(get("api", "/api", port=8080)).allowed
    assert not router.decide(get("api", "/api", port=9090)).allowed
    assert not router.decide(get("api", "/admin", port=8080)).allowed


def test_tcp_rule_next_to_http_rules_does_not_open_raw_tcp() -> None:
    ir = IR(
        services=(http_service("api", sa="api"),),
        targets=(target("t", "api", tcp_rule(8080), http_rule(API_ONLY)),),
    )
    assert not compile(ir).decide(connect("api", 8080)).allowed


def test_tcp_only_target_allows_tcp_and_every_http_request_on_its_ports() -> None:
    ir = IR(
        services=(http_service("api", 8080, 9090, sa="api"),),
        targets=(target("t", "api", tcp_rule(8080)),),
    )
    router = compile(ir)
    assert router.decide(connect("api", 8080)).allowed
    assert router.decide(get("api", "/anything", port=8080, method="DELETE")).allowed
    assert not router.decide(connect("api", 9090)).allowed
    assert not router.decide(get("api", port=9090)).allowed


def test_tcp_rule_without_ports_covers_every_port() -> None:
    ir = IR(services=(http_service("api", 1, 65535, sa="api"),), targets=(target("t", "api", tcp_rule()),))
    router = compile(ir)
    assert router.decide(connect("api", 1)).allowed
    assert router.decide(connect("api", 65535)).allowed


def test_udp_rules_allow_udp_only_on_their_ports() -> None:
    # the spec's L4 example: TCP 8300-8302 and UDP 8301-8302; UDP to 8300 is blocked
    svc = Service(
        NS,
        "consul",
        ports=tuple(ServicePort(p, f"p-{p}") for p in (8300, 8301, 8302)),
        service_accounts=("server",),
    )
    ir = IR(
        services=(svc,), targets=(target("t", "server", tcp_rule(8301, 8302, 8300), udp_rule(8301, 8302)),)
    )
    router = compile(ir)
    assert router.decide(connect("consul", 8301, "udp")).allowed
    assert router.decide(connect("consul", 8302, "udp")).allowed
    assert not router.decide(connect("consul", 8300, "udp")).allowed
    assert router.decide(connect("consul", 8300, "tcp")).allowed


def test_tcp_rule_does_not_allow_udp_and_udp_rule_does_not_allow_tcp() -> None:
    svc = Service(NS, "dns", ports=(ServicePort(53, "dns", protocol="UDP"),), service_accounts=("dns",))
    router = compile(IR(services=(svc,), targets=(target("tcp", "dns", tcp_rule(53)),)))
    assert not router.decide(connect("dns", 53, "udp")).allowed
    router = compile(IR(services=(svc,), targets=(target("udp", "dns", udp_rule(53)),)))
    assert not router.decide(connect("dns", 53, "tcp")).allowed
    assert not router.decide(get("dns", port=53)).allowed


def test_access_checks_the_backend_workload_port() -> None:
    ir = IR(
        services=(http_service("api", 80, sa="api", target=8080),),
        targets=(target("t", "api", tcp_rule(8080)),),
    )
    router = compile(ir)
    assert router.decide(connect("api", 80)).allowed
    assert (
        "port 8080"
        in compile(IR(services=ir.services, targets=(target("t", "api", tcp_rule(80)),)))
        .decide(connect("api", 80))
        .backends[0]
        .reason
    )


def test_access_is_decided_per_split_backend() -> None:
    ir = IR(
        services=(http_service("web"), http_service("web-v1", sa="v1"), http_service("web-v2", sa="v2")),
        splits=(split("s", "web", ("web-v1", 1), ("web-v2", 1)),),
        targets=(target("t", "v1", http_rule(HTTPMatch("all"))),),
    )
    d = compile(ir).decide(get("web"))
    assert [(b.service, b.allowed) for b in d.backends] == [("web-v1", True), ("web-v2", False)]
    assert not d.allowed


def test_decision_without_backends_is_not_allowed() -> None:
    assert not semantics.Decision(None, None, (), "nothing").allowed


def test_unknown_access_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="access mode"):
        compile(IR(), access_mode="open")  # type: ignore[arg-type]


def test_decide_does_not_look_at_routes_of_other_services(monkeypatch: pytest.MonkeyPatch) -> None:
    # cost stays flat as policy on other Services grows: count route evaluations, not time
    calls = 0
    original = semantics._RouteMatcher.matches

    def counting(self: semantics._RouteMatcher, http: semantics._HTTPView) -> bool:
        nonlocal calls
        calls += 1
        return original(self, http)

    monkeypatch.setattr(semantics._RouteMatcher, "matches", counting)

    def evaluations(others: int) -> int:
        nonlocal calls
        services = [http_service("api", sa="api")] + [
            http_service(f"s{i}", sa=f"sa{i}") for i in range(others)
        ]
        splits = [
            split(f"x{i}", f"s{i}", (f"s{i}-v2", 1), matches=[HTTPMatch("m", path_regex="/a")])
            for i in range(others)
        ]
        targets = [target("t", "api", http_rule(API_ONLY))] + [
            target(f"t{i}", f"sa{i}", http_rule(*(HTTPMatch(f"m{j}", path_regex=f"/{j}") for j in range(5))))
            for i in range(others)
        ]
        router = compile(IR(services=tuple(services), splits=tuple(splits), targets=tuple(targets)))
        calls = 0
        router.decide(get("api", "/api"))
        return calls

    assert evaluations(1) == evaluations(300) == 1


# --- properties ---------------------------------------------------------------------------------


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(irs(), st.data())
def test_decide_never_raises_and_keeps_its_invariants(ir: IR, data: st.DataObject) -> None:
    router = compile(ir)
    requests = requests_for(ir)
    for _ in range(10):
        request = data.draw(requests)
        d = router.decide(request)
        assert d.backends, d
        assert all(b.weight > 0 for b in d.backends)
        assert d.reason and "\n" not in d.reason
        if d.split is None:
            assert [b.service for b in d.backends] == [request.service]
            assert d.route is None
        else:
            applied = next(s for s in ir.splits if s.namespace == request.namespace and s.name == d.split)
            assert applied.root == request.service
            assert {b.service for b in d.backends} <= {b.service for b in applied.backends}
        if d.route is not None:
            assert request.protocol == "http"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(irs())
def test_codec_round_trip_keeps_the_ir_and_its_decisions(ir: IR) -> None:
    back = ir_from_dict(ir_to_dict(ir))
    assert back == ir
    before, after = compile(ir), compile(back)
    for request in generate_requests(ir, max_requests=400):
        assert before.decide(request) == after.decide(request)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(irs())
def test_permissive_mode_allows_everything_enforce_mode_allows(ir: IR) -> None:
    enforce, permissive = compile(ir), compile(ir, access_mode="permissive")
    for request in generate_requests(ir, max_requests=400):
        strict, lax = enforce.decide(request), permissive.decide(request)
        assert [b.service for b in strict.backends] == [b.service for b in lax.backends]
        for s, p in zip(strict.backends, lax.backends, strict=True):
            assert p.allowed or not s.allowed


def test_module_docstring_states_the_meaning() -> None:
    doc = semantics.__doc__ or ""
    for phrase in ("first by name", "anchored at the start only", "deny-by-default", "does not open raw TCP"):
        assert phrase in doc


# --- the IR strategies other suites build on --------------------------------------------------

DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(irs())
def test_generated_irs_are_consistent_and_in_normal_form(ir: IR) -> None:
    for coll in (ir.services, ir.pods, ir.route_groups, ir.port_routes, ir.splits, ir.targets):
        keys = [(x.namespace, x.name) for x in coll]
        assert keys == sorted(keys)
        assert len(set(keys)) == len(keys)
        assert all(DNS_LABEL.fullmatch(n) for key in keys for n in key)
    for svc in ir.services:
        selected = [p for p in ir.pods if p.namespace == svc.namespace and p.matches(svc.selector)]
        assert svc.service_accounts == tuple(sorted({p.service_account for p in selected}))
        assert {e.pod for e in svc.endpoints} == {p.name for p in selected if not p.template}
        assert len({p.port for p in svc.ports}) == len(svc.ports)
    for s in ir.splits:
        assert s.total_weight > 0
        assert all(ir.service(s.namespace, name) for name in (s.root, *(b.service for b in s.backends)))
        group_matches = {m for g in ir.route_groups if g.namespace == s.namespace for m in g.matches}
        assert s.matches is None or set(s.matches) <= group_matches
    routes = {(r.namespace, r.name, r.protocol) for r in ir.port_routes}
    groups = {(g.namespace, g.name) for g in ir.route_groups}
    for t in ir.targets:
        assert t.destination.namespace == t.namespace
        assert t.sources
        for rule in t.rules:
            assert (
                (t.namespace, rule.route) in groups
                if rule.kind == "http"
                else (t.namespace, rule.route, rule.kind) in routes
            )
            for m in rule.matches:
                assert all(h.name == h.name.lower() for h in m.headers)
                assert all(x == x.upper() for x in m.methods)
        assert len(set(t.sources)) == len(t.sources)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(irs(max_namespaces=2, udp=False, split_matches=False))
def test_generated_irs_leave_out_what_a_backend_cannot_express(ir: IR) -> None:
    assert len(ir.namespaces()) <= 2
    assert all(r.protocol == "tcp" for r in ir.port_routes)
    assert all(p.protocol != "UDP" for s in ir.services for p in s.ports)
    assert all(s.matches is None for s in ir.splits)


def test_request_on_a_port_the_root_service_lacks_is_not_split() -> None:
    from smi_bridge.ir import IR, Service, ServicePort, Split, SplitBackend
    from smi_bridge.semantics import Request, compile

    ir = IR(
        services=(
            Service("f", "front", ports=(ServicePort(80, "http"),), service_accounts=("sa",)),
            Service(
                "f",
                "api",
                ports=(ServicePort(80, "http"), ServicePort(9090, "http-admin")),
                service_accounts=("sa",),
            ),
        ),
        splits=(Split("f", "s", "front", (SplitBackend("api", 1),)),),
    )
    router = compile(ir, access_mode="permissive")
    on_root_port = router.decide(Request(None, "f", "front", 80))
    assert on_root_port.split == "s" and [b.service for b in on_root_port.backends] == ["api"]
    elsewhere = router.decide(Request(None, "f", "front", 9090))
    assert elsewhere.split is None and [b.service for b in elsewhere.backends] == ["front"]
    assert "has no port 9090" in elsewhere.reason
