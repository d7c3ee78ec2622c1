"""The gateway-api backend: GAMMA routes out of TrafficSplits and back, and the shared ``backends.gamma``.

The proof is the round trip: for hand-built IRs and for ``tests.strategies.irs()``, routing
decided on ``ingest(emit(ir))`` equals routing decided on ``ir`` for every generated probe, except
for splits the emit report names. Every emitted object validates against the Gateway API v1.6.1
standard CRDs, and the CEL rules those CRDs carry (which ``crdcheck`` cannot run) are checked here.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.base import Emission, Options, SourceObject
from backends.gamma import (
    MAX_WEIGHT,
    fit_weights,
    header_full_match,
    header_regex_from_full_match,
    path_full_match,
    path_regex_from_full_match,
    path_regex_from_prefix,
)
from backends.gateway_api import CHECKS, GatewayAPIBackend
from smi_bridge.crdcheck import CRDIndex
from smi_bridge.diagnostics import Report, Severity
from smi_bridge.ir import (
    IR,
    AccessRule,
    HeaderMatch,
    HTTPMatch,
    Identity,
    Origin,
    RouteGroup,
    Service,
    ServicePort,
    Split,
    SplitBackend,
    TrafficTarget,
)
from smi_bridge.probes import generate_requests
from smi_bridge.regex import compile_header, compile_path, sample
from smi_bridge.semantics import Decision, Request, compile
from tests.backend_helpers import as_source_objects, damaged, read_import_fixture
from tests.conftest import FIXTURES
from tests.strategies import irs, path_regexes, simple_patterns

BACKEND = GatewayAPIBackend()
GW_FIXTURES = FIXTURES / "import" / "gateway-api"
NS = "shop"


# --- building blocks ------------------------------------------------------------------------------


def origin(kind: str, name: str, path: str = "", ns: str = NS) -> Origin:
    return Origin(kind, ns, name, "split.smi-spec.io/v1alpha4", "input.yaml", 1, None, path)


def service(name: str, *ports: ServicePort, sa: str = "") -> Service:
    return Service(
        NS,
        name,
        ports=ports,
        selector=(("app", name),),
        service_accounts=(sa,) if sa else (),
        origin=Origin("Service", NS, name, "v1"),
    )


HTTP80 = ServicePort(80, "http", 8080)
GRPC9090 = ServicePort(9090, "http-admin", 9090)
TCP5432 = ServicePort(5432, "postgres", 5432)
UDP53 = ServicePort(53, "dns", 53, protocol="UDP")


def split(
    name: str, root: str, *backends: tuple[str, int], matches: tuple[HTTPMatch, ...] | None = None
) -> Split:
    return Split(
        NS,
        name,
        root,
        tuple(
            SplitBackend(s, w, origin("TrafficSplit", name, f"spec.backends[{i}]"))
            for i, (s, w) in enumerate(backends)
        ),
        matches=matches,
        route_groups=("routes",) if matches else (),
        origin=origin("TrafficSplit", name),
    )


BETA = HTTPMatch(
    "beta",
    r"/api/v[0-9]+",
    ("GET", "POST"),
    (HeaderMatch("x-canary", "yes|always"),),
    origin("HTTPRouteGroup", "routes"),
)
EXACT = HTTPMatch(
    "health", "/healthz$", (), (HeaderMatch("x-env", "prod"),), origin("HTTPRouteGroup", "routes")
)


def shop_ir() -> IR:
    return IR(
        services=(
            service("cart", HTTP80, TCP5432),
            service("cart-v1", HTTP80, TCP5432),
            service("cart-v2", HTTP80, TCP5432),
            service("web", HTTP80, GRPC9090),
            service("web-next", HTTP80),
        ),
        route_groups=(RouteGroup(NS, "routes", (BETA, EXACT), origin("HTTPRouteGroup", "routes")),),
        splits=(
            split("cart", "cart", ("cart-v1", 3), ("cart-v2", 1)),
            split("web-ab", "web", ("web-next", 1), matches=(BETA, EXACT)),
        ),
    )


def emit(ir: IR, options: Options | None = None) -> Emission:
    return BACKEND.emit(ir, options or Options())


def objects_of(emission: Emission, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in emission.objects if o["kind"] == kind}


def codes(diagnostics: Iterable[Any]) -> Counter[str]:
    return Counter(d.code for d in diagnostics)


def load_fixture(name: str) -> tuple[list[SourceObject], IR]:
    return read_import_fixture(GW_FIXTURES / name)


def find(report: Report | Sequence[Any], code: str) -> list[Any]:
    return [d for d in report if d.code == code]


# --- CEL rules of the standard-channel CRDs (crdcheck cannot evaluate CEL) -------------------------

_CEL_PATH = re.compile(r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$")


def cel_errors(obj: Mapping[str, Any]) -> list[str]:
    """The x-kubernetes-validations of HTTPRoute/TCPRoute v1 (standard channel v1.6.1) we can hit."""
    errors: list[str] = []
    spec = obj.get("spec", {})
    parents = spec.get("parentRefs", [])
    for p1 in parents:
        same = [
            p2
            for p2 in parents
            if (p2.get("group"), p2.get("kind"), p2.get("name"), p2.get("namespace"))
            == (p1.get("group"), p1.get("kind"), p1.get("name"), p1.get("namespace"))
        ]
        if len(same) > 1 and (
            any(not p.get("sectionName") for p in same)
            or len({p.get("sectionName") for p in same}) != len(same)
        ):
            errors.append("sectionName must be specified and unique when parentRefs repeat a parent")
    rules = spec.get("rules", [])
    if sum(len(r.get("matches", [])) for r in rules) >= 128:
        errors.append("total number of matches across all rules must be less than 128")
    for rule in rules:
        for ref in rule.get("backendRefs", []):
            if ref.get("group", "") == "" and ref.get("kind", "Service") == "Service" and "port" not in ref:
                errors.append("Must have port for Service reference")
        for m in rule.get("matches", []):
            path = m.get("path")
            if path and path["type"] in ("Exact", "PathPrefix"):
                v = path["value"]
                bad = (
                    not v.startswith("/")
                    or "//" in v
                    or "/./" in v
                    or "/../" in v
                    or "%2f" in v.lower()
                    or "#" in v
                    or v.endswith(("/..", "/."))
                    or not _CEL_PATH.match(v)
                )
                if bad:
                    errors.append(f"invalid {path['type']} path {v!r}")
            names = [h["name"].lower() for h in m.get("headers", [])]
            if len(names) != len(set(names)):
                errors.append("header match names must be unique (list-map key)")
    if obj["kind"] == "TCPRoute" and len(rules) != 1:
        errors.append("TCPRoute v1 allows exactly one rule")
    return errors


def assert_valid(emission: Emission, crds: CRDIndex) -> None:
    for obj in emission.objects:
        assert crds.has(obj["apiVersion"], obj["kind"]), f"no CRD for {obj['apiVersion']} {obj['kind']}"
        problems = crds.validate(obj) + cel_errors(obj)
        assert not problems, f"{obj['kind']} {obj['metadata']['name']}: {problems}\n{obj}"


# --- the round-trip oracle ------------------------------------------------------------------------


def routing(decision: Decision) -> tuple[tuple[str, Fraction], ...]:
    weights: dict[str, int] = {}
    for b in decision.backends:
        weights[b.service] = weights.get(b.service, 0) + b.weight
    total = sum(weights.values())
    return tuple(sorted((s, Fraction(w, total)) for s, w in weights.items()))


def round_trip(ir: IR, options: Options | None = None) -> tuple[IR, Emission, Report]:
    options = options or Options()
    emission = BACKEND.emit(ir, options)
    back, report = BACKEND.ingest(
        as_source_objects(emission.objects), IR(services=ir.services, pods=ir.pods), options
    )
    return back, emission, report


def assert_same_routing(
    ir: IR, options: Options | None = None, *, max_requests: int = 3000
) -> tuple[IR, int]:
    """Routing on ``ingest(emit(ir))`` equals routing on ``ir``, except for splits the report names.

    Access is not compared: Gateway API has none, and emit names every TrafficTarget as lost.
    """
    back, emission, _ = round_trip(ir, options)
    named = {
        (d.resource.namespace, d.resource.name)
        for d in emission.diagnostics
        if d.severity >= Severity.WARNING and d.resource.kind == "TrafficSplit"
    }
    roots = {(s.namespace, s.root) for s in ir.splits if (s.namespace, s.name) in named}
    before, after = compile(ir), compile(back)
    compared = 0
    for request in generate_requests(ir, max_requests=max_requests):
        if (request.namespace, request.service) in roots:
            continue
        a, b = before.decide(request), after.decide(request)
        assert routing(a) == routing(b), (
            f"{request}\n  before: {a}\n  after:  {b}\n  report: {[d.message for d in emission.diagnostics][:8]}"
        )
        compared += 1
    return back, compared


# --- weights --------------------------------------------------------------------------------------


def test_weights_are_divided_by_their_gcd_exactly() -> None:
    assert fit_weights([3000, 1000, 0]) == ([3, 1, 0], True)


def test_weights_above_a_million_are_scaled_with_zero_kept_and_no_backend_cut_off() -> None:
    weights, exact = fit_weights([10**9, 1, 0, 3 * 10**8])
    assert not exact
    assert weights == [MAX_WEIGHT, 1, 0, 300_000]


@given(st.lists(st.integers(0, 10**12), min_size=1, max_size=6).filter(lambda ws: any(ws)))
def test_fitted_weights_stay_in_range_and_keep_zero_and_nonzero_apart(weights: list[int]) -> None:
    fitted, exact = fit_weights(weights)
    assert all(0 <= w <= MAX_WEIGHT for w in fitted)
    assert [w == 0 for w in fitted] == [w == 0 for w in weights]
    g = 0
    for w in weights:
        g = math.gcd(g, w)
    if max(weights) // g <= MAX_WEIGHT:
        assert exact and fitted == [w // g for w in weights]
    else:
        assert max(fitted) == MAX_WEIGHT
        # every share is within one unit of the exact scaled value (largest remainder)
        top = max(weights)
        for w, f in zip(weights, fitted, strict=True):
            if w:
                assert abs(Fraction(w * MAX_WEIGHT, top) - f) <= 1


# --- regex forms ----------------------------------------------------------------------------------


def _find_covers(pattern: str, value: str) -> bool:
    """Linkerd's acceptance test: the leftmost-first match must span the whole value (Python's
    backtracking search finds the same leftmost-first match as Rust's regex crate)."""
    m = re.search(pattern, value, re.ASCII)
    return m is not None and m.start() == 0 and m.end() == len(value)


def _candidates(pattern: str, extra: Iterable[str]) -> list[str]:
    s = sample(pattern)
    out = list(extra) + ([s, s + "x", s + "/tail", s[:-1]] if s is not None else [])
    return [c for c in out if "\n" not in c]


def test_linkerd_find_trap_is_closed_by_anchoring() -> None:
    # a|ab against "ab": RE2 full match says yes, Linkerd's find() stops at "a" and says no
    assert re.fullmatch("a|ab", "ab") and not _find_covers("a|ab", "ab")
    assert _find_covers(header_full_match("a|ab"), "ab")


@settings(max_examples=200, deadline=None)
@given(
    path_regexes(),
    st.lists(st.sampled_from(["/", "/api", "/api/v1", "/x.js", "/books/1", "/metrics/"]), max_size=3),
)
def test_path_full_match_form_means_the_start_anchored_ir_regex(path: str, extra: list[str]) -> None:
    ir_rx = compile_path(path)
    full = path_full_match(path)
    for value in _candidates(path, extra):
        expected = ir_rx.match(value) is not None
        assert (re.fullmatch(full, value, re.ASCII) is not None) == expected, (path, full, value)
        assert _find_covers(full, value) == expected, (path, full, value)
    back = path_regex_from_full_match(full)
    for value in _candidates(path, extra):
        assert (back is None or compile_path(back).match(value) is not None) == (
            ir_rx.match(value) is not None
        )


@settings(max_examples=200, deadline=None)
@given(simple_patterns())
def test_header_full_match_form_agrees_under_full_match_and_find(pattern: str) -> None:
    rx = compile_header(pattern)
    full = header_full_match(pattern)
    for value in _candidates(pattern, ["", "a", "ab", "yes", "0"]):
        expected = rx.fullmatch(value) is not None
        assert (re.fullmatch(full, value, re.ASCII) is not None) == expected
        assert _find_covers(full, value) == expected
        back = header_regex_from_full_match(full)
        assert (compile_header(back).fullmatch(value) is not None) == expected


def test_path_prefix_is_read_as_a_path_segment_prefix() -> None:
    rx = compile_path(path_regex_from_prefix("/foo/") or "")
    assert [bool(rx.match(p)) for p in ("/foo", "/foo/", "/foo/bar", "/foobar")] == [True, True, True, False]
    assert path_regex_from_prefix("/") is None


# --- emit -----------------------------------------------------------------------------------------


def test_unconditional_split_becomes_one_route_per_root_port_with_service_parent() -> None:
    out = emit(shop_ir())
    http = objects_of(out, "HTTPRoute")
    tcp = objects_of(out, "TCPRoute")
    # web-next has no port 9090, so the A/B split needs a route on port 80 only
    assert set(http) == {"cart-80", "web-ab"} and set(tcp) == {"cart-5432"}
    cart = http["cart-80"]
    assert cart["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert cart["spec"]["parentRefs"] == [{"group": "", "kind": "Service", "name": "cart", "port": 80}]
    assert cart["spec"]["rules"] == [
        {
            "backendRefs": [
                {"group": "", "kind": "Service", "name": "cart-v1", "port": 80, "weight": 3},
                {"group": "", "kind": "Service", "name": "cart-v2", "port": 80, "weight": 1},
            ]
        }
    ]
    assert tcp["cart-5432"]["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert len(tcp["cart-5432"]["spec"]["rules"]) == 1
    ann = cart["metadata"]["annotations"]
    assert ann["smi-bridge.io/source"] == "TrafficSplit/shop/cart"
    assert ann["smi-bridge.io/generator"].startswith("smi-bridge-")


def test_matched_split_gets_the_weighted_rule_first_and_a_catch_all_to_the_root() -> None:
    out = emit(shop_ir())
    rules = objects_of(out, "HTTPRoute")["web-ab"]["spec"]["rules"]
    assert len(rules) == 2
    weighted, catch_all = rules
    assert catch_all == {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [{"group": "", "kind": "Service", "name": "web", "port": 80}],
    }
    assert weighted["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "web-next", "port": 80, "weight": 1}
    ]
    beta = {"path": {"type": "RegularExpression", "value": "^/api/v[0-9]+.*$"}}
    canary = [{"name": "x-canary", "type": "RegularExpression", "value": "^(?:yes|always)$"}]
    assert weighted["matches"] == [
        {**beta, "headers": canary, "method": "GET"},
        {**beta, "headers": canary, "method": "POST"},
        {
            "path": {"type": "Exact", "value": "/healthz"},
            "headers": [{"name": "x-env", "type": "Exact", "value": "prod"}],
        },
    ]


def test_port_not_marked_http_gets_no_route_for_a_matched_split() -> None:
    ir = shop_ir()
    ir = IR(services=ir.services, splits=(split("cart-ab", "cart", ("cart-v2", 1), matches=(BETA,)),))
    out = emit(ir)
    assert set(objects_of(out, "HTTPRoute")) == {"cart-ab"} and not objects_of(out, "TCPRoute")
    assert find(out.diagnostics, "SMT406")[0].severity == Severity.WARNING


def test_split_whose_route_matches_everything_splits_http_only_and_reads_back_so() -> None:
    everything = HTTPMatch("all", None, origin=origin("HTTPRouteGroup", "routes"))
    ir = IR(
        services=shop_ir().services, splits=(split("cart", "cart", ("cart-v2", 1), matches=(everything,)),)
    )
    out = emit(ir)
    # every HTTP request is split (no catch-all needed); the semantics keeps TCP on the root
    assert objects_of(out, "HTTPRoute")["cart"]["spec"]["rules"] == [
        {"backendRefs": [{"group": "", "kind": "Service", "name": "cart-v2", "port": 80, "weight": 1}]}
    ]
    assert not objects_of(out, "TCPRoute")
    back, _ = assert_same_routing(ir)
    assert back.splits[0].matches is not None and back.splits[0].matches[0].path_regex is None


def test_rust_unicode_classes_are_spelled_as_ascii_ones() -> None:
    digits = HTTPMatch(
        "id", r"/authors/\d+\.json$", (), (HeaderMatch("x-id", r"[\w-]+"),), origin("HTTPRouteGroup", "r")
    )
    ir = IR(services=shop_ir().services, splits=(split("web", "web", ("web-next", 1), matches=(digits,)),))
    (m,) = objects_of(emit(ir), "HTTPRoute")["web"]["spec"]["rules"][0]["matches"]
    assert m["path"] == {"type": "RegularExpression", "value": "^/authors/[0-9]+\\.json$"}
    assert m["headers"] == [{"name": "x-id", "type": "RegularExpression", "value": "^[0-9A-Za-z_-]+$"}]


def test_udp_root_port_is_reported_and_not_split() -> None:
    ir = IR(
        services=(service("dns", UDP53, HTTP80), service("dns-v2", UDP53, HTTP80)),
        splits=(split("dns", "dns", ("dns-v2", 1)),),
    )
    out = emit(ir)
    assert set(objects_of(out, "HTTPRoute")) == {"dns"}
    assert "53/UDP" in find(out.diagnostics, "SMT403")[0].message


def test_all_zero_split_is_refused_with_an_error_and_still_consumed() -> None:
    ir = IR(services=shop_ir().services, splits=(split("cart", "cart", ("cart-v1", 0), ("cart-v2", 0)),))
    out = emit(ir)
    assert not out.objects
    assert find(out.diagnostics, "SMT401")[0].severity == Severity.ERROR
    assert ir.splits[0] in out.consumed


def test_zero_weight_backend_is_kept_at_weight_zero_and_gets_no_traffic() -> None:
    ir = IR(services=shop_ir().services, splits=(split("cart", "cart", ("cart-v1", 1), ("cart-v2", 0)),))
    refs = objects_of(emit(ir), "HTTPRoute")["cart-80"]["spec"]["rules"][0]["backendRefs"]
    assert [(r["name"], r["weight"]) for r in refs] == [("cart-v1", 1), ("cart-v2", 0)]
    assert_same_routing(ir)


def test_weights_beyond_gateway_api_range_are_scaled_and_reported() -> None:
    ir = IR(
        services=shop_ir().services, splits=(split("cart", "cart", ("cart-v1", 3_000_001), ("cart-v2", 1)),)
    )
    out = emit(ir)
    refs = objects_of(out, "HTTPRoute")["cart-80"]["spec"]["rules"][0]["backendRefs"]
    assert [r["weight"] for r in refs] == [MAX_WEIGHT, 1]
    assert find(out.diagnostics, "SMT402")


def test_second_split_on_the_same_root_is_reported_and_not_emitted() -> None:
    ir = IR(
        services=shop_ir().services,
        splits=(split("a-first", "cart", ("cart-v1", 1)), split("b-second", "cart", ("cart-v2", 1))),
    )
    out = emit(ir)
    assert {o["metadata"]["annotations"]["smi-bridge.io/source"] for o in out.objects} == {
        "TrafficSplit/shop/a-first"
    }
    assert find(out.diagnostics, "SMT408")[0].resource.name == "b-second"
    assert set(ir.consumable()) <= out.consumed


def test_backend_without_the_root_port_is_left_out_of_that_ports_route() -> None:
    ir = IR(
        services=(
            service("web", HTTP80, GRPC9090),
            service("web-v2", HTTP80),
            service("web-v3", HTTP80, GRPC9090),
        ),
        splits=(split("web", "web", ("web-v2", 1), ("web-v3", 1)),),
    )
    out = emit(ir)
    admin = objects_of(out, "HTTPRoute")["web-9090"]["spec"]["rules"][0]["backendRefs"]
    assert [r["name"] for r in admin] == ["web-v3"]
    assert find(out.diagnostics, "SMT407")[0].severity == Severity.INFO
    assert_same_routing(ir)


def test_root_missing_from_the_input_is_an_error_not_a_guess() -> None:
    ir = IR(splits=(split("cart", "cart", ("cart-v1", 1)),))
    out = emit(ir)
    assert not out.objects and find(out.diagnostics, "SMT400")[0].severity == Severity.ERROR


def test_method_outside_the_enum_is_reported_and_not_matched() -> None:
    purge = HTTPMatch("purge", "/cache", ("PURGE",), origin=origin("HTTPRouteGroup", "routes"))
    ir = IR(
        services=shop_ir().services, splits=(split("web", "web", ("web-next", 1), matches=(purge, BETA)),)
    )
    out = emit(ir)
    matches = objects_of(out, "HTTPRoute")["web"]["spec"]["rules"][0]["matches"]
    assert all(m.get("method") != "PURGE" for m in matches) and len(matches) == 2
    assert "PURGE" in find(out.diagnostics, "SMT404")[0].message


def test_traffic_target_is_consumed_and_reported_once_as_not_expressible() -> None:
    rule = AccessRule(
        "http", "routes", (BETA,), origin=origin("TrafficTarget", "api-readers", "spec.rules[0]")
    )
    target = TrafficTarget(
        NS,
        "api-readers",
        Identity(NS, "api"),
        (Identity(NS, "web"),),
        (rule, AccessRule("tcp", "db", ports=(5432,))),
        origin=origin("TrafficTarget", "api-readers"),
    )
    out = emit(IR(services=shop_ir().services, targets=(target,)))
    lost = find(out.diagnostics, "SMT411")
    assert len(lost) == 1 and lost[0].resource.name == "api-readers" and lost[0].severity == Severity.WARNING
    assert {target, *target.rules} <= out.consumed
    assert find(out.diagnostics, "SMT412") and not find(
        emit(IR(targets=(target,)), Options(access_mode="permissive")).diagnostics, "SMT412"
    )


def test_many_matches_are_packed_within_the_crd_limits(vendor_crds: CRDIndex) -> None:
    many = tuple(
        HTTPMatch(f"m{i}", f"/p{i}", ("GET", "POST", "PUT"), origin=origin("HTTPRouteGroup", "routes"))
        for i in range(70)
    )
    ir = IR(services=shop_ir().services, splits=(split("web", "web", ("web-next", 1), matches=many),))
    out = emit(ir)
    routes = objects_of(out, "HTTPRoute")
    assert (
        sum(
            len(r["matches"])
            for o in routes.values()
            for r in o["spec"]["rules"]
            if r["backendRefs"][0]["name"] == "web-next"
        )
        == 210
    )
    assert_valid(out, vendor_crds)
    assert_same_routing(ir, max_requests=1500)


def test_every_check_has_a_code_in_the_gateway_api_ranges() -> None:
    assert len({c.code for c in CHECKS}) == len(CHECKS)
    for c in CHECKS:
        assert re.fullmatch(r"SM[TX]4\d\d", c.code), c.code


def test_hand_built_ir_validates_and_routes_the_same_after_the_round_trip(vendor_crds: CRDIndex) -> None:
    ir = shop_ir()
    out = emit(ir)
    assert_valid(out, vendor_crds)
    assert set(ir.consumable()) <= out.consumed
    back, compared = assert_same_routing(ir)
    assert compared > 100
    assert not round_trip(ir)[2].diagnostics  # our own output reads back without a finding
    assert [s.name for s in back.splits] == ["cart", "web-ab"]


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(ir=irs())
def test_generated_irs_validate_and_route_the_same_after_the_round_trip(
    ir: IR, vendor_crds: CRDIndex
) -> None:
    out = emit(ir)
    assert_valid(out, vendor_crds)
    assert set(ir.consumable()) <= out.consumed
    assert_same_routing(ir, max_requests=1500)


# --- ingest ---------------------------------------------------------------------------------------


def test_hand_written_canary_keeps_the_weighted_rule_and_reports_the_shadowed_one() -> None:
    objects, inventory = load_fixture("canary.yaml")
    ir, report = BACKEND.ingest(objects, inventory, Options())
    splits = {s.name: s for s in ir.splits}
    assert [(b.service, b.weight) for b in splits["checkout-canary"].backends] == [
        ("checkout-stable", 90),
        ("checkout-canary", 10),
    ]
    assert [(b.service, b.weight) for b in splits["orders-db"].backends] == [
        ("orders-db-primary", 3),
        ("orders-db-replica", 1),
    ]
    shadowed = find(report, "SMX407")
    assert len(shadowed) == 1 and shadowed[0].path == "spec.rules[0]" and shadowed[0].line is not None
    assert ir.services == inventory.services and ir.pods == inventory.pods


def test_ab_route_with_catch_all_reads_back_as_a_matched_split() -> None:
    objects, inventory = load_fixture("ab-test.yaml")
    ir, report = BACKEND.ingest(objects, inventory, Options())
    (ab,) = ir.splits
    assert ab.root == "search" and [(b.service, b.weight) for b in ab.backends] == [("search-next", 1)]
    assert ab.matches is not None
    assert [(m.path_regex, m.methods, m.headers) for m in ab.matches] == [
        ("/suggest$", ("GET",), ()),
        ("/v2/query/[0-9]+", ("GET", "POST"), ()),
        (None, (), (HeaderMatch("x-experiment", "b|both"),)),
    ]
    assert ab.route_groups == (ab.name,) and ir.route_groups[0].matches == ab.matches
    assert not [d for d in report if d.severity >= Severity.WARNING]
    decide = compile(ir, access_mode="permissive").decide
    assert decide(Request(None, "web", "search", 8080, path="/suggest")).backends[0].service == "search-next"
    assert decide(Request(None, "web", "search", 8080, path="/suggest/more")).backends[0].service == "search"
    assert (
        decide(Request(None, "web", "search", 8080, method="PUT", path="/v2/query/7")).backends[0].service
        == "search"
    )
    both = Request(None, "web", "search", 8080, path="/", headers=(("x-experiment", "both"),))
    assert decide(both).backends[0].service == "search-next"


def test_everything_smi_cannot_hold_is_reported_with_its_field_path() -> None:
    objects, inventory = load_fixture("unsupported.yaml")
    ir, report = BACKEND.ingest(objects, inventory, Options())
    paths = {(d.code, d.resource.name, d.path) for d in report}
    assert ("SMX401", "catalog", "spec.parentRefs[0]") in paths  # Gateway parent
    assert ("SMX403", "catalog", "spec.rules[0].filters") in paths
    assert ("SMX403", "catalog", "spec.rules[0].timeouts") in paths
    assert ("SMX403", "catalog", "spec.hostnames") in paths
    assert ("SMX403", "catalog", "spec.rules[0].matches[0].queryParams") in paths
    assert ("SMX404", "catalog", "spec.rules[0].backendRefs[1]") in paths  # other namespace
    assert ("SMX405", "catalog", "spec.rules[0].matches[0].path") in paths  # PathPrefix
    assert ("SMX402", "catalog-for-frontend", "spec.parentRefs[0]") in paths  # consumer route
    assert {d.resource.kind for d in find(report, "SMX411")} == {"GRPCRoute", "ReferenceGrant"}
    assert [d.resource.kind for d in find(report, "SMX400")] == ["ServiceMonitor"]
    (catalog,) = ir.splits
    assert [(b.service, b.weight) for b in catalog.backends] == [("catalog-v2", 1)]
    assert catalog.matches is not None and catalog.matches[0].path_regex == "/items(?:/|$)"
    assert all(d.file and d.file.endswith("unsupported.yaml") and d.line for d in report)


def test_two_routes_on_one_service_port_keep_the_older_and_name_both() -> None:
    objects, inventory = load_fixture("conflict.yaml")
    ir, report = BACKEND.ingest(objects, inventory, Options())
    (kept,) = ir.splits
    assert kept.name == "profile-rollout-v2"
    (conflict,) = find(report, "SMX408")
    assert conflict.resource.name == "profile-rollout-v3" and "profile-rollout-v2" in conflict.message
    assert "conflict.yaml:" in conflict.message


def test_route_without_catch_all_is_reported_because_gamma_rejects_unmatched_requests() -> None:
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "beta-only", "namespace": NS},
        "spec": {
            "parentRefs": [{"group": "", "kind": "Service", "name": "web", "port": 80}],
            "rules": [
                {
                    "matches": [{"path": {"type": "Exact", "value": "/beta"}}],
                    "backendRefs": [{"name": "web-next", "port": 80}],
                }
            ],
        },
    }
    ir, report = BACKEND.ingest(as_source_objects([route]), IR(services=shop_ir().services), Options())
    assert find(report, "SMX406") and ir.splits[0].matches is not None


def test_service_profile_and_policy_kinds_are_listed_as_unknown_not_dropped_silently() -> None:
    sp = {
        "apiVersion": "linkerd.io/v1alpha2",
        "kind": "ServiceProfile",
        "metadata": {"name": "x", "namespace": NS},
    }
    _, report = BACKEND.ingest(as_source_objects([sp]), IR(), Options())
    assert [d.code for d in report] == ["SMX400"]


# --- malformed input -----------------------------------------------------------------------------

GW_OBJECTS = [
    o
    for name in ("canary.yaml", "ab-test.yaml", "unsupported.yaml", "conflict.yaml")
    for o in load_fixture(name)[0]
]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(objects=damaged(GW_OBJECTS))
def test_malformed_objects_give_diagnostics_never_a_traceback(objects: list[SourceObject]) -> None:
    ir, report = BACKEND.ingest(objects, IR(services=shop_ir().services), Options())
    assert all(isinstance(d.code, str) and d.code.startswith("SMX4") for d in report)
    assert list(ir.splits) == sorted(ir.splits, key=lambda s: (s.namespace, s.name))


def test_a_malformed_route_is_named_with_its_place() -> None:
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "broken", "namespace": NS},
        "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "web"}], "rules": "all of them"},
    }
    _, report = BACKEND.ingest(as_source_objects([route]), IR(), Options())
    (d,) = report.diagnostics
    assert d.code == "SMX412" and d.severity == Severity.ERROR and d.resource.name == "broken" and d.line == 1
