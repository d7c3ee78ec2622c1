"""The consul backend: emit (config entries the consul-k8s CRDs and webhooks accept), ingest (hand-written
and emitted config back to IR, every loss reported), and the round trip judged by ``semantics.decide``.

``webhook_errors`` restates, from reading consul-k8s v2.0.3 and Consul's config-entry validation, the
checks the admission webhook and the Consul server apply beyond the CRD schema (the CRDs carry no CEL
rules: ``test_consul_crds_have_no_cel_rules`` keeps that assumption honest).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.base import AccessMode, Emission, Options, SourceObject
from backends.consul import (
    CONSUL_METHODS,
    DEFAULT_DENY_NAME,
    UNSPLIT_SUBSET,
    ConsulBackend,
    consul_percentages,
    largest_remainder,
    literal_regex,
    smi_path_regex,
    webhook_sum,
)
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
    ir_from_dict,
    ir_to_dict,
)
from smi_bridge.probes import generate_requests
from smi_bridge.regex import compile_header, compile_path, full_match_form
from smi_bridge.semantics import Decision, Request, compile
from tests.backend_helpers import as_source_objects, outcome, read_import_fixture
from tests.conftest import ANCHORS, FIXTURES
from tests.strategies import irs

CONSUL_FIXTURES = FIXTURES / "import" / "consul"
ACCESS_MODES: tuple[AccessMode, ...] = ("enforce", "permissive")
BACKEND = ConsulBackend()


@dataclass(frozen=True)
class EnterpriseOptions(Options):
    """Options with Consul Enterprise namespace mirroring (the flag ``backends.consul`` reads)."""

    consul_namespaces: bool = True


# --- building blocks ---------------------------------------------------------------------------------


def origin(kind: str, ns: str, name: str, path: str = "") -> Origin:
    return Origin(kind, ns, name, "x.smi-spec.io/v1", "input.yaml", 1, None, path)


def http_service(ns: str, name: str, sa: str, *ports: int) -> Service:
    return Service(
        ns,
        name,
        ports=tuple(ServicePort(p, "http") for p in (ports or (80,))),
        selector=(("app", name),),
        service_accounts=(sa,),
        origin=origin("Service", ns, name),
    )


def pod(ns: str, name: str, sa: str) -> Pod:
    return Pod(ns, name, labels=(("app", name),), service_account=sa, origin=origin("Pod", ns, name))


def split(
    ns: str, name: str, root: str, *backends: tuple[str, int], matches: Sequence[HTTPMatch] | None = None
) -> Split:
    o = origin("TrafficSplit", ns, name)
    return Split(
        ns,
        name,
        root,
        tuple(SplitBackend(svc, w, o.child(f"spec.backends[{i}]")) for i, (svc, w) in enumerate(backends)),
        None if matches is None else tuple(matches),
        ("routes",) if matches is not None else (),
        o,
    )


def target(
    ns: str, name: str, dest: Identity, sources: Sequence[Identity], rules: Sequence[AccessRule]
) -> TrafficTarget:
    return TrafficTarget(ns, name, dest, tuple(sources), tuple(rules), origin("TrafficTarget", ns, name))


def http_rule(group: str, *matches: HTTPMatch) -> AccessRule:
    return AccessRule("http", group, tuple(matches))


def tcp_rule(route: str, *ports: int) -> AccessRule:
    return AccessRule("tcp", route, (), tuple(ports))


BETA = HTTPMatch(
    "beta", "/api", ("GET",), (HeaderMatch("x-user", ".*beta.*"),), origin("HTTPRouteGroup", "shop", "routes")
)
METRICS = HTTPMatch("metrics", "/metrics", ("GET",), (), origin("HTTPRouteGroup", "shop", "routes"))


def emit(ir: IR, options: Options | None = None) -> Emission:
    return BACKEND.emit(ir, options or Options())


def by_kind(emission: Emission, kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o for o in emission.objects if o["kind"] == kind
    }


def codes(diagnostics: Iterable[Any]) -> Counter[str]:
    return Counter(d.code for d in diagnostics)


def inventory_of(ir: IR) -> IR:
    return IR(services=ir.services, pods=ir.pods)


def load_fixture(name: str) -> tuple[list[SourceObject], IR]:
    return read_import_fixture(CONSUL_FIXTURES / name)


def find(report: Report | Sequence[Any], code: str, path: str | None = None) -> list[Any]:
    return [d for d in report if d.code == code and (path is None or d.path == path)]


# --- what consul-k8s admits beyond the schema -------------------------------------------------------

_SUBSET_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def _http_errors(http: Mapping[str, Any], where: str, *, permission: bool) -> list[str]:
    errors = []
    paths = [k for k in ("pathExact", "pathPrefix", "pathRegex") if http.get(k)]
    if len(paths) > 1:
        errors.append(f"{where}: more than one path form")
    for k in ("pathExact", "pathPrefix"):
        if http.get(k) and not str(http[k]).startswith("/"):
            errors.append(f"{where}.{k}: must begin with /")
    methods = http.get("methods", [])
    if any(m not in CONSUL_METHODS for m in methods) or len(set(methods)) != len(methods):
        errors.append(f"{where}.methods: invalid or repeated {methods}")
    for j, h in enumerate(http.get("header", [])):
        forms = [k for k in ("exact", "prefix", "suffix", "regex") if h.get(k)] + (
            ["present"] if h.get("present") else []
        )
        if not h.get("name") or len(forms) != 1:
            errors.append(f"{where}.header[{j}]: needs a name and exactly one match form")
    if permission and not (paths or methods or http.get("header")):
        errors.append(f"{where}: permission http must not be empty")
    for k in ("pathRegex",):
        if http.get(k):
            re.compile(http[k])
    return errors


def webhook_errors(objects: Sequence[Mapping[str, Any]], *, enterprise: bool = False) -> list[str]:
    """What the consul-k8s webhook or the Consul server would refuse in ``objects`` (one apply)."""
    errors: list[str] = []
    names: dict[tuple[str, str], str] = {}
    for obj in objects:
        kind, meta, spec = obj["kind"], obj["metadata"], obj["spec"]
        ref = f"{kind} {meta['namespace']}/{meta['name']}"
        key_name = spec["destination"]["name"] if kind == "ServiceIntentions" else meta["name"]
        key = (kind, f"{meta['namespace']}/{key_name}" if enterprise else key_name)
        if key in names:
            errors.append(f"{ref}: name {key_name!r} already used by {names[key]}")
        names[key] = ref
        if kind == "ServiceSplitter":
            weights = [s["weight"] for s in spec["splits"]]
            if any(w != 0 and not 0.01 <= w <= 100 for w in weights):
                errors.append(f"{ref}: weight out of range {weights}")
            if webhook_sum(weights) != 100.0:
                errors.append(f"{ref}: float32 sum {webhook_sum(weights)!r} != 100")
            if sum(round(w * 100) for w in weights) != 10000:
                errors.append(f"{ref}: scaled sum != 10000")
            keys = [(s.get("service", meta["name"]), s.get("serviceSubset", "")) for s in spec["splits"]]
            if len(set(keys)) != len(keys):
                errors.append(f"{ref}: split destination occurs more than once")
            if any(re.fullmatch(r"\d+(\.\d{1,2})?", repr(w)) is None for w in weights):
                errors.append(f"{ref}: weights with more than two decimals {weights}")
        elif kind == "ServiceRouter":
            for i, route in enumerate(spec["routes"]):
                errors += _http_errors(
                    route["match"]["http"], f"{ref} routes[{i}].match.http", permission=False
                )
        elif kind == "ServiceResolver":
            for name in spec.get("subsets", {}):
                if not _SUBSET_NAME.match(name):
                    errors.append(f"{ref}: subset name {name!r}")
        elif kind == "ServiceIntentions":
            sources = spec["sources"]
            if not sources:
                errors.append(f"{ref}: at least one source")
            seen = set()
            wild_dest = spec["destination"]["name"] == "*"
            for i, src in enumerate(sources):
                ident = (src.get("namespace", ""), src["name"])
                if ident in seen:
                    errors.append(f"{ref}: source {ident} more than once")
                seen.add(ident)
                if "namespace" in src and not enterprise:
                    errors.append(f"{ref}: sources[{i}].namespace needs Consul Enterprise")
                has_perms = bool(src.get("permissions"))
                if has_perms == ("action" in src):
                    errors.append(f"{ref}: sources[{i}] needs exactly one of action, permissions")
                if "action" in src and src["action"] not in ("allow", "deny"):
                    errors.append(f"{ref}: sources[{i}].action {src['action']!r}")
                if has_perms and wild_dest:
                    errors.append(f"{ref}: permissions on a wildcard destination")
                for j, perm in enumerate(src.get("permissions", [])):
                    if perm.get("action") not in ("allow", "deny"):
                        errors.append(f"{ref}: sources[{i}].permissions[{j}].action")
                    errors += _http_errors(
                        perm["http"], f"{ref} sources[{i}].permissions[{j}].http", permission=True
                    )
    # L7 config entries need an http protocol on every service of the chain and every L7 destination
    http_services = {
        (o["metadata"]["namespace"] if enterprise else "", o["metadata"]["name"])
        for o in objects
        if o["kind"] == "ServiceDefaults" and o["spec"].get("protocol") == "http"
    }
    for obj in objects:
        ns = obj["metadata"]["namespace"] if enterprise else ""
        needed: list[str] = []
        if obj["kind"] == "ServiceSplitter":
            needed = [obj["metadata"]["name"], *(s["service"] for s in obj["spec"]["splits"])]
        elif obj["kind"] == "ServiceRouter":
            needed = [obj["metadata"]["name"], *(r["destination"]["service"] for r in obj["spec"]["routes"])]
        elif obj["kind"] == "ServiceIntentions" and any(s.get("permissions") for s in obj["spec"]["sources"]):
            needed = [obj["spec"]["destination"]["name"]]
        for name in needed:
            if (ns, name) not in http_services:
                errors.append(f"{obj['kind']} {obj['metadata']['name']}: {name} is not protocol http")
    return errors


def assert_admitted(emission: Emission, crds: CRDIndex, *, enterprise: bool = False) -> None:
    for obj in emission.objects:
        assert crds.has(obj["apiVersion"], obj["kind"]), obj["kind"]
        assert crds.validate(obj) == [], (obj, crds.validate(obj))
        # plain JSON data, nothing else
        yaml.safe_dump(obj)
    assert webhook_errors(emission.objects, enterprise=enterprise) == []


# --- the round-trip oracle ----------------------------------------------------------------------------


def _involved(ir: IR, request: Request, decisions: Sequence[Decision]) -> set[tuple[str, str, str]]:
    """The (kind, namespace, name) of every input object that could have decided ``request``."""
    refs: set[tuple[str, str, str]] = set()
    groups: set[str] = set()
    for s in ir.splits:
        if (s.namespace, s.root) == (request.namespace, request.service):
            refs.add((s.origin.kind, s.origin.namespace, s.origin.name))
            groups.update(s.route_groups)
            groups.update(m.origin.name for m in s.matches or ())
    identities = {i for d in decisions for b in d.backends for i in b.identities}
    for d in decisions:
        for b in d.backends:
            svc = ir.service(request.namespace, b.service)
            if svc is not None:
                identities.update(ir.identities_of(svc))
    for t in ir.targets:
        if t.destination in identities:
            refs.add((t.origin.kind, t.origin.namespace, t.origin.name))
            for r in t.rules:
                groups.add(r.route)
                groups.update(m.origin.name for m in r.matches)
    refs.update(("HTTPRouteGroup", request.namespace, g) for g in groups)
    refs.update(("HTTPRouteGroup", t.namespace, g) for t in ir.targets for g in groups)
    return refs


def unexplained(
    ir: IR, back: IR, emission: Emission, options: Options, requests: Sequence[Request]
) -> list[tuple[Request, Decision, Decision]]:
    """Requests decided differently after emit + ingest whose difference no emit diagnostic names."""
    mode = options.access_mode
    before, after = compile(ir, access_mode=mode), compile(back, access_mode=mode)
    named = {(d.resource.kind, d.resource.namespace, d.resource.name) for d in emission.diagnostics}
    out = []
    for request in requests:
        a, b = before.decide(request), after.decide(request)
        if outcome(a) == outcome(b):
            continue
        if not _involved(ir, request, (a, b)) & named:
            out.append((request, a, b))
    return out


def round_trip(ir: IR, options: Options | None = None) -> tuple[IR, Emission, Report]:
    options = options or Options()
    emission = BACKEND.emit(ir, options)
    back, report = BACKEND.ingest(as_source_objects(emission.objects), inventory_of(ir), options)
    return back, emission, report


def assert_round_trip(ir: IR, options: Options | None = None, *, max_requests: int = 3000) -> IR:
    options = options or Options()
    back, emission, _ = round_trip(ir, options)
    requests = generate_requests(ir, max_requests=max_requests)
    missed = unexplained(ir, back, emission, options, requests)
    assert not missed, "\n".join(f"{r}\n  before: {a}\n  after:  {b}" for r, a, b in missed[:5])
    return back


# --- a rich hand-built IR -----------------------------------------------------------------------------

SHOP = "shop"
WEB, API, GW, DB = (Identity(SHOP, n) for n in ("web", "api", "gw", "db"))


def shop_ir() -> IR:
    routes = RouteGroup(SHOP, "routes", (BETA, METRICS), origin("HTTPRouteGroup", SHOP, "routes"))
    return IR(
        services=(
            http_service(SHOP, "api", "api"),
            http_service(SHOP, "api-v2", "api"),
            http_service(SHOP, "db", "db", 5432),
            http_service(SHOP, "gw", "gw"),
            http_service(SHOP, "web", "web"),
            http_service(SHOP, "web-v1", "web"),
            http_service(SHOP, "web-v2", "web"),
        ),
        pods=(
            pod(SHOP, "api-0", "api"),
            pod(SHOP, "gw-0", "gw"),
            pod(SHOP, "web-0", "web"),
            pod(SHOP, "db-0", "db"),
        ),
        route_groups=(routes,),
        port_routes=(PortRoute(SHOP, "pg", "tcp", (), origin("TCPRoute", SHOP, "pg")),),
        splits=(
            split(SHOP, "api-canary", "api", ("api", 0), ("api-v2", 1), matches=(BETA,)),
            split(SHOP, "web-rollout", "web", ("web-v1", 2), ("web-v2", 1)),
        ),
        targets=(
            target(SHOP, "api-from-gw", API, [GW], [http_rule("routes", BETA, METRICS)]),
            target(SHOP, "db-from-api", DB, [API], [tcp_rule("pg")]),
            target(SHOP, "web-from-api", WEB, [API], [http_rule("routes", METRICS)]),
            target(SHOP, "web-from-gw", WEB, [GW], [tcp_rule("pg")]),
        ),
    )


# === percentages ======================================================================================


def test_naive_two_decimal_vectors_fail_the_webhook_float32_sum() -> None:
    # the research finding this backend exists to fix: exact decimals, but not 100 in float32
    assert webhook_sum([40.76, 54.28, 4.96]) != 100.0
    assert webhook_sum([51.57, 34.06, 14.37]) != 100.0
    assert webhook_sum([33.33, 33.33, 33.34]) == 100.0


@pytest.mark.parametrize("weights", [[4076, 5428, 496], [5157, 3406, 1437], [1, 1, 1], [2, 1], [1, 0, 0, 3]])
def test_known_bad_vectors_are_emitted_in_an_order_the_webhook_accepts(weights: list[int]) -> None:
    result = consul_percentages(weights)
    assert result.accepted
    emitted = [h / 100 for _, h in result.emitted()]
    assert webhook_sum(emitted) == 100.0
    assert sum(result.hundredths) == 10000
    assert result.moved == 0  # reordering was enough: the rounding stays exact largest-remainder
    assert list(result.hundredths) == largest_remainder(weights, 10000)


def test_largest_remainder_rounds_ties_to_the_earlier_entry_and_keeps_zero() -> None:
    assert largest_remainder([1, 1, 1], 10000) == [3334, 3333, 3333]
    assert largest_remainder([0, 1, 2], 10000) == [0, 3333, 6667]
    assert largest_remainder([5, 0], 100) == [100, 0]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.just(0), st.integers(1, 10), st.integers(1, 10**6)), min_size=1, max_size=14))
def test_percentages_always_sum_to_exactly_100_in_float32_in_emitted_order(weights: list[int]) -> None:
    if sum(weights) == 0:
        weights = [*weights, 1]
    result = consul_percentages(weights)
    assert result.accepted
    assert sorted(result.order) == list(range(len(weights)))
    assert webhook_sum(h / 100 for _, h in result.emitted()) == 100.0
    assert sum(result.hundredths) == 10000
    exact = largest_remainder(weights, 10000)
    for w, h, e in zip(weights, result.hundredths, exact, strict=True):
        if w == 0:
            assert h == 0  # zero stays zero
        assert abs(h - e) <= result.moved <= 3  # at most a few hundredths from exact rounding
        if e > 0:
            assert h > 0  # a nudge never empties a backend


# === emit: splits =====================================================================================


def test_split_becomes_splitter_with_http_defaults_for_root_and_every_backend(vendor_crds: CRDIndex) -> None:
    ir = shop_ir()
    emission = emit(ir)
    splitter = by_kind(emission, "ServiceSplitter")[(SHOP, "web")]
    weights = {s["service"]: s["weight"] for s in splitter["spec"]["splits"]}
    assert weights == {"web-v1": 66.67, "web-v2": 33.33}
    defaults = by_kind(emission, "ServiceDefaults")
    for name in ("web", "web-v1", "web-v2", "api", "api-v2"):
        assert defaults[(SHOP, name)]["spec"] == {"protocol": "http"}
    annotations = splitter["metadata"]["annotations"]
    assert annotations["smi-bridge.io/source"] == "TrafficSplit/shop/web-rollout"
    assert annotations["smi-bridge.io/generator"].startswith("smi-bridge-")
    assert splitter["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "smi-bridge"
    assert codes(emission.diagnostics)["SMT302"] == 1  # 2:1 is 66.67/33.33: rounded, and said so
    assert_admitted(emission, vendor_crds)


def test_every_split_and_target_node_is_consumed() -> None:
    ir = shop_ir()
    emission = emit(ir)
    assert set(ir.consumable()) <= emission.consumed


def test_whole_percent_weights_are_written_as_integers() -> None:
    ir = IR(splits=(split(SHOP, "s", "web", ("web-v1", 1), ("web-v2", 3)),))
    splits = by_kind(emit(ir), "ServiceSplitter")[(SHOP, "web")]["spec"]["splits"]
    assert splits == [{"service": "web-v1", "weight": 25}, {"service": "web-v2", "weight": 75}]


def test_all_zero_split_is_refused_with_an_error() -> None:
    s = split(SHOP, "off", "web", ("web-v1", 0), ("web-v2", 0))
    emission = emit(IR(splits=(s,)))
    assert "ServiceSplitter" not in {o["kind"] for o in emission.objects}
    [d] = find(emission.diagnostics, "SMT300")
    assert d.severity is Severity.ERROR and d.resource.name == "off"
    assert s in emission.consumed  # handled: the error is its report, not a generic "not translated"


def test_split_of_a_tcp_only_service_is_refused_rather_than_breaking_it() -> None:
    db = Service(SHOP, "db", ports=(ServicePort(3306, "mysql"),), service_accounts=("db",))
    ir = IR(services=(db,), splits=(split(SHOP, "s", "db", ("db-v1", 4), ("db-v2", 1)),))
    emission = emit(ir)
    assert not {"ServiceSplitter", "ServiceDefaults"} & {o["kind"] for o in emission.objects}
    [d] = find(emission.diagnostics, "SMT316")
    assert d.severity is Severity.ERROR and "3306" in d.message


def test_zero_weight_backend_is_kept_at_zero_percent() -> None:
    ir = IR(splits=(split(SHOP, "s", "web", ("web-v1", 1), ("web-v2", 0)),))
    splits = by_kind(emit(ir), "ServiceSplitter")[(SHOP, "web")]["spec"]["splits"]
    assert {s["service"]: s["weight"] for s in splits} == {"web-v1": 100, "web-v2": 0}


def test_tiny_positive_weight_that_rounds_to_zero_is_reported() -> None:
    ir = IR(splits=(split(SHOP, "s", "web", ("web-v1", 100000), ("web-v2", 1)),))
    emission = emit(ir)
    [d] = find(emission.diagnostics, "SMT301")
    assert "web-v2" in d.message


def test_duplicate_backends_are_merged_because_consul_rejects_repeats() -> None:
    ir = IR(splits=(split(SHOP, "s", "web", ("web-v1", 1), ("web-v2", 1), ("web-v1", 2)),))
    splits = by_kind(emit(ir), "ServiceSplitter")[(SHOP, "web")]["spec"]["splits"]
    assert {s["service"]: s["weight"] for s in splits} == {"web-v1": 75, "web-v2": 25}


def test_second_split_on_the_same_root_has_no_effect_like_in_smi() -> None:
    first = split(SHOP, "a-first", "web", ("web-v1", 1))
    second = split(SHOP, "b-second", "web", ("web-v2", 1))
    emission = emit(IR(splits=(first, second)))
    [splitter] = by_kind(emission, "ServiceSplitter").values()
    assert splitter["spec"]["splits"] == [{"service": "web-v1", "weight": 100}]
    assert second in emission.consumed


def test_matched_split_becomes_router_with_full_match_path_regex() -> None:
    emission = emit(shop_ir())
    router = by_kind(emission, "ServiceRouter")[(SHOP, "api")]
    assert router["spec"]["routes"] == [
        {
            "match": {
                "http": {
                    "pathRegex": "(?:/api).*",
                    "methods": ["GET"],
                    "header": [{"name": "x-user", "regex": ".*beta.*"}],
                }
            },
            "destination": {"service": "api-v2"},
        }
    ]
    assert not find(emission.diagnostics, "SMT305")  # only one positive backend: exact


def test_matched_weighted_split_routes_to_the_heaviest_backend_and_says_so() -> None:
    s = split(SHOP, "ab", "api", ("api-v1", 1), ("api-v2", 3), ("api-v3", 3), matches=(BETA,))
    emission = emit(IR(splits=(s,)))
    [route] = by_kind(emission, "ServiceRouter")[(SHOP, "api")]["spec"]["routes"]
    assert route["destination"] == {"service": "api-v2"}  # heaviest; the first of equal weights
    [d] = find(emission.diagnostics, "SMT305")
    assert "api-v1 1, api-v2 3, api-v3 3" in d.message


def test_backend_that_is_itself_a_split_root_is_reached_through_the_unsplit_subset(
    vendor_crds: CRDIndex,
) -> None:
    # SMI does not chain splits; Consul would, unless the split names a subset of the backend
    ir = IR(
        splits=(
            split(SHOP, "outer", "front", ("web", 1), ("front-v2", 1)),
            split(SHOP, "inner", "web", ("web-v1", 1), ("web-v2", 1)),
        )
    )
    emission = emit(ir)
    outer = by_kind(emission, "ServiceSplitter")[(SHOP, "front")]["spec"]["splits"]
    assert {"service": "web", "serviceSubset": UNSPLIT_SUBSET, "weight": 50} in outer
    resolver = by_kind(emission, "ServiceResolver")[(SHOP, "web")]
    assert resolver["spec"] == {"subsets": {UNSPLIT_SUBSET: {"onlyPassing": False}}}
    assert set(by_kind(emission, "ServiceResolver")) == {(SHOP, "web")}
    assert_admitted(emission, vendor_crds)


def test_matched_route_with_an_invalid_method_is_left_out_and_reported() -> None:
    odd = HTTPMatch("purge", "/cache", ("PURGE",), (), origin("HTTPRouteGroup", SHOP, "routes"))
    s = split(SHOP, "ab", "api", ("api-v2", 1), matches=(odd, BETA))
    emission = emit(IR(splits=(s,)))
    routes = by_kind(emission, "ServiceRouter")[(SHOP, "api")]["spec"]["routes"]
    assert len(routes) == 1
    [d] = find(emission.diagnostics, "SMT306")
    assert "PURGE" in d.message and d.resource.kind == "HTTPRouteGroup"


def test_split_roots_with_one_name_in_two_namespaces_collide_on_consul_ce() -> None:
    a = split("alpha", "s", "web", ("web-v1", 1))
    b = split("beta", "s", "web", ("web-v2", 1))
    emission = emit(IR(splits=(a, b)))
    assert set(by_kind(emission, "ServiceSplitter")) == {("alpha", "web")}
    [d] = find(emission.diagnostics, "SMT309")
    assert d.severity is Severity.ERROR and d.resource.namespace == "beta" and "alpha" in d.message
    enterprise = emit(IR(splits=(a, b)), EnterpriseOptions())
    assert set(by_kind(enterprise, "ServiceSplitter")) == {("alpha", "web"), ("beta", "web")}


def test_backend_missing_a_root_port_is_reported_since_consul_splits_by_service() -> None:
    ir = IR(
        services=(http_service(SHOP, "web", "web", 80, 9090), http_service(SHOP, "web-v1", "web", 80)),
        splits=(split(SHOP, "s", "web", ("web-v1", 1)),),
    )
    [d] = find(emit(ir).diagnostics, "SMT307")
    assert "9090" in d.message


# === emit: intentions =================================================================================


def test_targets_for_one_destination_merge_into_one_intentions(vendor_crds: CRDIndex) -> None:
    emission = emit(shop_ir())
    intentions = by_kind(emission, "ServiceIntentions")
    web = intentions[(SHOP, "web")]
    assert web["spec"]["destination"] == {"name": "web"}
    sources = {s["name"]: s for s in web["spec"]["sources"]}
    assert set(sources) == {"api", "gw", "*"}
    assert sources["gw"]["action"] == "allow"  # TCP rule only: L4
    assert sources["api"]["permissions"] == [
        {"action": "allow", "http": {"pathRegex": "(?:/metrics).*", "methods": ["GET"]}},
        {"action": "deny", "http": {"pathPrefix": "/"}},
    ]
    assert sources["*"]["action"] == "deny"
    assert set(web["metadata"]["annotations"]["smi-bridge.io/source"].split(",")) == {
        "TrafficTarget/shop/web-from-api",
        "TrafficTarget/shop/web-from-gw",
    }
    assert_admitted(emission, vendor_crds)


def test_enforce_mode_adds_a_clearly_named_wildcard_deny_and_permissive_does_not() -> None:
    enforce = by_kind(emit(shop_ir()), "ServiceIntentions")
    deny = enforce[("default", DEFAULT_DENY_NAME)]
    assert deny["spec"]["destination"] == {"name": "*"}
    assert [(s["name"], s["action"]) for s in deny["spec"]["sources"]] == [("*", "deny")]
    permissive = by_kind(emit(shop_ir(), Options(access_mode="permissive")), "ServiceIntentions")
    assert ("default", DEFAULT_DENY_NAME) not in permissive


def test_http_destination_gets_protocol_http_defaults() -> None:
    ir = IR(targets=(target(SHOP, "t", DB, [API], [http_rule("routes", METRICS)]),))
    assert by_kind(emit(ir), "ServiceDefaults")[(SHOP, "db")]["spec"] == {"protocol": "http"}
    l4 = IR(targets=(target(SHOP, "t", DB, [API], [tcp_rule("pg")]),))
    assert (SHOP, "db") not in by_kind(emit(l4), "ServiceDefaults")


def test_tcp_route_ports_are_reported_as_widened() -> None:
    ir = IR(targets=(target(SHOP, "t", DB, [API], [tcp_rule("pg", 5432)]),))
    emission = emit(ir)
    [d] = find(emission.diagnostics, "SMT310")
    assert "5432" in d.message
    [source, _] = by_kind(emission, "ServiceIntentions")[(SHOP, "db")]["spec"]["sources"]
    assert source["action"] == "allow"


def test_http_rules_narrowed_by_tcp_ports_are_reported_as_widened() -> None:
    ir = IR(targets=(target(SHOP, "t", WEB, [API], [http_rule("routes", METRICS), tcp_rule("pg", 8080)]),))
    emission = emit(ir)
    assert find(emission.diagnostics, "SMT310")
    [source, _] = by_kind(emission, "ServiceIntentions")[(SHOP, "web")]["spec"]["sources"]
    assert "permissions" in source


def test_source_namespaces_collapse_on_ce_and_are_kept_with_enterprise_namespaces(
    vendor_crds: CRDIndex,
) -> None:
    other = Identity("other", "api")
    ir = IR(targets=(target(SHOP, "t", WEB, [API, other], [tcp_rule("pg")]),))
    ce = emit(ir)
    [src, _] = by_kind(ce, "ServiceIntentions")[(SHOP, "web")]["spec"]["sources"]
    assert src["name"] == "api" and "namespace" not in src  # one Consul source for both
    [d] = find(ce.diagnostics, "SMT311")
    assert "other/api" in d.message and "shop/api" in d.message
    ent = emit(ir, EnterpriseOptions())
    sources = by_kind(ent, "ServiceIntentions")[(SHOP, "web")]["spec"]["sources"]
    assert [(s["name"], s.get("namespace")) for s in sources] == [
        ("api", "other"),
        ("api", "shop"),
        ("*", "*"),
    ]
    assert not find(ent.diagnostics, "SMT311")
    assert_admitted(ent, vendor_crds, enterprise=True)


def test_destinations_with_one_name_in_two_namespaces_collide_on_consul_ce() -> None:
    a = target("alpha", "t", Identity("alpha", "web"), [API], [tcp_rule("pg")])
    b = target("beta", "t", Identity("beta", "web"), [API], [tcp_rule("pg")])
    emission = emit(IR(targets=(a, b)))
    assert (("beta", "web")) not in by_kind(emission, "ServiceIntentions")
    [d] = find(emission.diagnostics, "SMT309")
    assert d.resource.namespace == "beta"


def test_udp_rules_are_reported_and_grant_nothing() -> None:
    ir = IR(targets=(target(SHOP, "t", DB, [API], [AccessRule("udp", "dns", (), (53,))]),))
    emission = emit(ir)
    assert find(emission.diagnostics, "SMT312")
    sources = by_kind(emission, "ServiceIntentions")[(SHOP, "db")]["spec"]["sources"]
    assert [s["name"] for s in sources] == ["*"]  # still deny-by-default for everyone else


def test_http_rule_without_routes_allows_nothing() -> None:
    ir = IR(targets=(target(SHOP, "t", DB, [API], [http_rule("empty")]),))
    emission = emit(ir)
    assert find(emission.diagnostics, "SMT315")
    sources = by_kind(emission, "ServiceIntentions")[(SHOP, "db")]["spec"]["sources"]
    assert [s["name"] for s in sources] == ["*"]


def test_identity_whose_service_has_another_name_is_reported() -> None:
    ir = IR(
        services=(http_service(SHOP, "frontend", "web"),),
        targets=(target(SHOP, "t", WEB, [API], [tcp_rule("pg")]),),
    )
    [d] = find(emit(ir).diagnostics, "SMT313")
    assert "frontend" in d.message


def test_same_named_service_running_another_service_account_is_reported() -> None:
    ir = IR(
        services=(http_service(SHOP, "web", "frontend-sa"),),
        targets=(target(SHOP, "t", WEB, [API], [tcp_rule("pg")]),),
    )
    [d] = find(emit(ir).diagnostics, "SMT313")
    assert "frontend-sa" in d.message


def test_emission_is_deterministic() -> None:
    assert emit(shop_ir()).objects == emit(shop_ir()).objects
    reordered = replace(shop_ir(), targets=tuple(reversed(shop_ir().targets)))
    assert emit(reordered).objects == emit(shop_ir()).objects


def test_checks_are_declared_in_the_consul_code_ranges() -> None:
    from backends import consul

    emitted = {c.code for c in consul.CHECKS if c.code.startswith("SMT")}
    imported = {c.code for c in consul.CHECKS if c.code.startswith("SMX")}
    assert all(300 <= int(c[3:]) <= 399 for c in emitted | imported)
    assert len(consul.CHECKS) == len({c.code for c in consul.CHECKS})


# === CRDs =============================================================================================


def test_consul_crds_have_no_cel_rules() -> None:
    # crdcheck cannot evaluate CEL; the Consul CRDs have none, so the schema check is complete
    for file in (ANCHORS / "crds" / "consul").glob("*.yaml"):
        assert "x-kubernetes-validations" not in file.read_text(), file


# === regex glue =======================================================================================


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("/a.b", "/a.b"),
        ("/x?y=1", "/x?y=1"),
        ("/(v1)", "/(v1)"),
        ("/a+b[c]", "/a+b[c]"),
        ("/t~#&-", "/t~#&-"),
    ],
)
def test_literal_regex_matches_exactly_its_text(text: str, path: str) -> None:
    rx = literal_regex(text)
    assert compile_header(rx).fullmatch(path)
    assert not compile_header(rx).fullmatch(path + "x")


@pytest.mark.parametrize("smi", ["/api", "/api/v[12]/.*", "a|b", "(?i)/Admin", "/x(y)z"])
def test_full_match_form_reads_back_to_the_same_smi_path_regex(smi: str) -> None:
    assert smi_path_regex(full_match_form(smi)) == smi


@pytest.mark.parametrize(
    ("consul", "matching", "missing"),
    [("/api/v2/.*", "/api/v2/x", "/api/v3"), ("/health", "/health", "/healthz"), ("a|/b", "/b", "/bc")],
)
def test_hand_written_full_match_regex_keeps_its_meaning(consul: str, matching: str, missing: str) -> None:
    smi = smi_path_regex(consul)
    assert compile_path(smi).match(matching)
    assert not compile_path(smi).match(missing)


# === ingest ===========================================================================================


def test_hand_written_canary_reads_as_the_splitter_and_reports_every_feature() -> None:
    objects, inventory = load_fixture("canary-routing.yaml")
    ir, report = BACKEND.ingest(objects, inventory, Options())
    [s] = ir.splits
    assert (s.namespace, s.root, s.matches) == ("shop", "web", None)
    assert [(b.service, b.weight) for b in s.backends] == [("web", 9), ("web-v2", 1)]
    assert s.origin.kind == "ServiceSplitter" and s.origin.line is not None
    assert ir.services == inventory.services and ir.pods == inventory.pods
    expected = {
        ("SMX313", "spec.maxInboundConnections"),
        ("SMX302", "spec.defaultSubset"),
        ("SMX302", "spec.connectTimeout"),
        ("SMX302", "spec.subsets"),
        ("SMX303", "spec.splits[0].serviceSubset"),
        ("SMX303", "spec.splits[1].requestHeaders"),
        ("SMX301", "spec.routes[0].destination.prefixRewrite"),
        ("SMX301", "spec.routes[0].destination.requestTimeout"),
        ("SMX301", "spec.routes[0].destination.numRetries"),
        ("SMX308", "spec.routes[1].match.http.header[0]"),
        ("SMX310", "spec.routes[2].match.http.queryParam"),
        ("SMX309", "spec.routes[3].match.http.header[0].invert"),
        ("SMX315", ""),
    }
    assert expected <= {(d.code, d.path) for d in report}
    assert all(d.file and d.file.endswith("canary-routing.yaml") and d.line for d in report)
    assert report.resources == 4


def test_router_alone_becomes_a_matched_split_with_regex_forms_of_header_and_path_matches() -> None:
    objects, inventory = load_fixture("ab-router.yaml")
    ir, report = BACKEND.ingest(objects, inventory, Options())
    [s] = ir.splits
    assert [(b.service, b.weight) for b in s.backends] == [("api-v2", 1)]
    assert s.matches is not None and [m.name for m in s.matches] == ["route-1", "route-2"]
    regex, headers = s.matches
    assert (regex.path_regex, regex.methods) == ("/api/v2/", ("GET", "POST"))
    assert headers.headers == (HeaderMatch("user-agent", ".*Android"), HeaderMatch("x-tier", "gold.*"))
    [group] = ir.route_groups
    assert s.route_groups == (group.name,) and group.matches == s.matches
    # the earlier route to api itself cannot keep its precedence in SMI
    [shadow] = find(report, "SMX315")
    assert "spec.routes[0]" in shadow.message


def test_hand_written_intentions_read_as_targets_with_every_loss_reported() -> None:
    objects, inventory = load_fixture("intentions.yaml")
    ir, report = BACKEND.ingest(objects, inventory, Options())
    targets = {t.name: t for t in ir.targets}
    billing = Identity("pay", "billing")
    assert all(t.destination == billing for t in targets.values())
    # L4 allow: a TCP rule on every port
    assert targets["billing"].sources == (Identity("pay", "dashboard"),)
    assert targets["billing"].rules[0].kind == "tcp" and targets["billing"].rules[0].ports == ()
    # web is ServiceAccount web in two namespaces (Consul CE ignores namespaces); /admin's deny is
    # disjoint from both allows, so they stay
    web = targets["billing.from-web"]
    assert web.sources == (Identity("shop", "web"), Identity("staging", "web"))
    assert [(m.path_regex, m.methods) for m in web.rules[0].matches] == [
        ("/invoices", ("GET",)),
        ("/healthz$", ()),
    ]
    # reports: the JWT-only allow is left out; the header exact+ignoreCase becomes a regex
    [reports_match] = targets["billing.from-reports"].rules[0].matches
    assert reports_match.headers == (HeaderMatch("x-team", "(?i)finance"),)
    # "*" is expanded to the identities the input knows, minus the sources named exactly
    assert targets["billing.from-wildcard"].sources == (billing,)
    # the second ServiceIntentions for billing is not applied
    assert Identity("pay", "batch") not in {i for t in ir.targets for i in t.sources}
    found = {(d.code, d.path) for d in report}
    assert {
        ("SMX304", "spec.sources[0].permissions[0]"),
        ("SMX306", "spec.sources[1].permissions[1].jwt"),
        ("SMX307", "spec.sources[3].peer"),
        ("SMX304", "spec.sources[4].action"),
        ("SMX305", "spec.sources[5].name"),
        ("SMX317", "spec.sources[0].permissions"),
        ("SMX316", "spec.sources[0].name"),
        ("SMX313", "spec.meshGateway"),
    } <= found
    [conflict] = find(report, "SMX312")
    assert "intentions.yaml:46" in conflict.message and "intentions.yaml:86" in conflict.message
    assert "pay/billing (" in conflict.message.split("so ")[-1]
    [other_mesh] = find(report, "SMX300")
    assert "VirtualService" in other_mesh.message
    assert not find(report, "SMX317", "spec.sources")  # the global "*" -> "*" deny is present


def test_deny_before_an_overlapping_allow_drops_the_allow() -> None:
    obj = {
        "apiVersion": "consul.hashicorp.com/v1alpha1",
        "kind": "ServiceIntentions",
        "metadata": {"name": "web", "namespace": SHOP},
        "spec": {
            "destination": {"name": "web"},
            "sources": [
                {
                    "name": "api",
                    "permissions": [
                        {"action": "deny", "http": {"pathPrefix": "/api/admin"}},
                        {"action": "allow", "http": {"pathPrefix": "/api"}},
                        {"action": "allow", "http": {"pathExact": "/health"}},
                        {"action": "deny", "http": {"pathPrefix": "/"}},
                    ],
                },
                {"name": "*", "action": "deny"},
            ],
        },
    }
    ir, report = BACKEND.ingest(as_source_objects([obj]), IR(), Options())
    [t] = ir.targets
    assert [m.path_regex for m in t.rules[0].matches] == ["/health$"]
    assert find(report, "SMX304", "spec.sources[0].permissions[1]")


def test_wildcard_destination_allow_is_reported_and_permissive_mode_warns_on_global_deny() -> None:
    obj = {
        "apiVersion": "consul.hashicorp.com/v1alpha1",
        "kind": "ServiceIntentions",
        "metadata": {"name": "everything", "namespace": "consul"},
        "spec": {
            "destination": {"name": "*"},
            "sources": [{"name": "*", "action": "deny"}, {"name": "ops", "action": "allow"}],
        },
    }
    ir, report = BACKEND.ingest(as_source_objects([obj]), IR(), Options(access_mode="permissive"))
    assert ir.targets == ()
    paths = {d.path for d in find(report, "SMX305")}
    assert paths == {"spec.sources[1]", ""}


def test_malformed_entries_are_reported_not_raised() -> None:
    bad = [
        {
            "apiVersion": "consul.hashicorp.com/v1alpha1",
            "kind": "ServiceSplitter",
            "metadata": {"namespace": SHOP},
        },
        {
            "apiVersion": "consul.hashicorp.com/v1alpha1",
            "kind": "ServiceSplitter",
            "metadata": {"name": "a", "namespace": SHOP},
            "spec": {"splits": [{"weight": "fifty"}]},
        },
        {
            "apiVersion": "consul.hashicorp.com/v1alpha1",
            "kind": "ServiceRouter",
            "metadata": {"name": "b", "namespace": SHOP},
            "spec": {"routes": [{"match": {"http": {"methods": ["FETCH"]}}}]},
        },
        {
            "apiVersion": "consul.hashicorp.com/v1alpha1",
            "kind": "ServiceIntentions",
            "metadata": {"name": "c", "namespace": SHOP},
            "spec": {
                "destination": {"name": "c"},
                "sources": [
                    {
                        "name": "x",
                        "action": "allow",
                        "permissions": [{"action": "allow", "http": {"pathPrefix": "/"}}],
                    }
                ],
            },
        },
        {
            "apiVersion": "consul.hashicorp.com/v1alpha1",
            "kind": "ServiceIntentions",
            "metadata": {"name": "d", "namespace": SHOP},
            "spec": "nope",
        },
        {
            "apiVersion": "consul.hashicorp.com/v1alpha1",
            "kind": "ProxyDefaults",
            "metadata": {"name": "mine", "namespace": SHOP},
            "spec": {},
        },
        {
            "apiVersion": "consul.hashicorp.com/v1alpha1",
            "kind": "ServiceSplitter",
            "metadata": {"name": "e", "namespace": SHOP},
            "spec": {"splits": [{"weight": 60, "service": "x"}, {"weight": 30, "service": "y"}]},
        },
    ]
    ir, report = BACKEND.ingest(as_source_objects(bad), IR(), Options())
    assert codes(report)["SMX314"] >= 6
    [weights] = find(report, "SMX311")
    assert "90%" in weights.message
    [s] = ir.splits
    assert [(b.service, b.weight) for b in s.backends] == [("x", 2), ("y", 1)]


def test_splitters_that_chain_are_flattened_into_leaf_weights() -> None:
    def splitter(name: str, *splits: tuple[str, float]) -> dict[str, Any]:
        return {
            "apiVersion": "consul.hashicorp.com/v1alpha1",
            "kind": "ServiceSplitter",
            "metadata": {"name": name, "namespace": SHOP},
            "spec": {"splits": [{"service": s, "weight": w} for s, w in splits]},
        }

    objects = [
        splitter("front", ("web", 50), ("front-v2", 50)),
        splitter("web", ("web-v1", 90), ("web-v2", 10)),
    ]
    ir, _ = BACKEND.ingest(as_source_objects(objects), IR(), Options())
    front_split = next(s for s in ir.splits if s.root == "front")
    assert [(b.service, b.weight) for b in front_split.backends] == [
        ("web-v1", 9),
        ("web-v2", 1),
        ("front-v2", 10),
    ]


def test_the_same_object_twice_applies_the_later_one() -> None:
    first = {
        "apiVersion": "consul.hashicorp.com/v1alpha1",
        "kind": "ServiceSplitter",
        "metadata": {"name": "web", "namespace": SHOP},
        "spec": {"splits": [{"service": "web-v1", "weight": 100}]},
    }
    second = {**first, "spec": {"splits": [{"service": "web-v2", "weight": 100}]}}
    ir, report = BACKEND.ingest(as_source_objects([first, second]), IR(), Options())
    assert [b.service for b in ir.splits[0].backends] == ["web-v2"]
    [d] = find(report, "SMX312")
    assert "later" in d.message


# === round trips ======================================================================================


def test_shop_round_trip_decides_every_probe_alike_or_reports_why() -> None:
    back = assert_round_trip(shop_ir())
    assert {(s.root, s.matches is None) for s in back.splits} == {("api", False), ("web", True)}


def test_shop_round_trip_in_permissive_mode_and_with_enterprise_namespaces() -> None:
    assert_round_trip(shop_ir(), Options(access_mode="permissive"))
    assert_round_trip(shop_ir(), EnterpriseOptions())


def test_emitted_config_reads_back_without_a_warning() -> None:
    _, _, report = round_trip(shop_ir())
    assert [d for d in report if d.severity >= Severity.WARNING] == []


def test_round_trip_keeps_exact_weights() -> None:
    ir = IR(splits=(split(SHOP, "s", "web", ("web-v1", 4076), ("web-v2", 5428), ("web-v3", 496)),))
    back, emission, _ = round_trip(ir)
    assert not [d for d in emission.diagnostics if d.code in ("SMT302", "SMT303")]
    [s] = back.splits
    assert {b.service: Fraction(b.weight, s.total_weight) for b in s.backends} == {
        "web-v1": Fraction(4076, 10000),
        "web-v2": Fraction(5428, 10000),
        "web-v3": Fraction(496, 10000),
    }


@pytest.mark.parametrize("name", ["canary-routing.yaml", "ab-router.yaml", "intentions.yaml"])
def test_fixture_ingested_then_emitted_reads_back_the_same(name: str, vendor_crds: CRDIndex) -> None:
    objects, inventory = load_fixture(name)
    ir, _ = BACKEND.ingest(objects, inventory, Options())
    assert_admitted(emit(ir), vendor_crds)
    assert_round_trip(ir)


def assert_normal_form(ir: IR) -> None:
    """What ir.py promises every ingest: sorted collections, normalised names, resolvable references."""
    for coll in (ir.route_groups, ir.port_routes, ir.splits, ir.targets):
        keys = [(n.namespace, n.name) for n in coll]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
    groups = {(g.namespace, g.name): g for g in ir.route_groups}
    routes = {(r.namespace, r.name) for r in ir.port_routes}
    for group in ir.route_groups:
        for m in group.matches:
            assert all(h.name == h.name.lower() for h in m.headers)
            assert all(x == x.upper() for x in m.methods)
    for s in ir.splits:
        assert all(b.weight >= 0 for b in s.backends) and s.total_weight > 0
        for name in s.route_groups:
            assert set(s.matches or ()) <= set(groups[(s.namespace, name)].matches)
    for t in ir.targets:
        for r in t.rules:
            if r.kind == "http":
                assert set(r.matches) <= set(groups[(t.namespace, r.route)].matches)
            else:
                assert (t.namespace, r.route) in routes
    assert ir_from_dict(ir_to_dict(ir)) == ir


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(irs(), st.sampled_from(ACCESS_MODES), st.booleans())
def test_random_irs_emit_admitted_config_that_reads_back_to_the_same_decisions(
    vendor_crds: CRDIndex, ir: IR, mode: AccessMode, enterprise: bool
) -> None:
    options = EnterpriseOptions(access_mode=mode) if enterprise else Options(access_mode=mode)
    back, emission, report = round_trip(ir, options)
    assert_admitted(emission, vendor_crds, enterprise=enterprise)
    # what smi-bridge writes needs no approximation to read back: a warning would be a lost meaning
    assert not [d.message for d in report if d.severity >= Severity.WARNING]
    assert_normal_form(back)
    missed = unexplained(ir, back, emission, options, generate_requests(ir, max_requests=1500))
    assert not missed, "\n".join(f"{r}\n  before: {a}\n  after:  {b}" for r, a, b in missed[:5])
