"""The istio backend: what it emits, what it reads back, and that the two mean the same.

The round trip is the proof: for every IR (hand-built, the translation fixtures, and random ones
from ``tests.strategies.irs``), ``semantics.compile(ingest(emit(ir)))`` must decide every generated
request like ``semantics.compile(ir)``, except where emit's own lossy report names the difference.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import get_backend
from backends.base import Emission, Options, SourceObject
from backends.istio import (
    CHECKS,
    DENY_BY_DEFAULT_NAME,
    IstioBackend,
    largest_remainder,
    re2_escape,
)
from smi_bridge import probes, semantics
from smi_bridge.build import build_inventory
from smi_bridge.crdcheck import CRDIndex
from smi_bridge.diagnostics import Diagnostic, Report, Severity
from smi_bridge.ir import (
    IR,
    AccessRule,
    HeaderMatch,
    HTTPMatch,
    Identity,
    Origin,
    Pod,
    RouteGroup,
    Service,
    ServicePort,
    Split,
    SplitBackend,
    TrafficTarget,
)
from smi_bridge.load import load
from smi_bridge.parse import parse_documents
from smi_bridge.semantics import Decision, Request
from tests.conftest import FIXTURES
from tests.strategies import irs
from tests.translate_cases import Case, cases

BACKEND = IstioBackend()
IMPORTS = FIXTURES / "import" / "istio"
TRANSLATE_CASES = cases()
NS = "shop"
HTTP = ServicePort(80, "http", 8080)


# --- building IRs -----------------------------------------------------------------------------------


def origin(kind: str, name: str, path: str = "") -> Origin:
    return Origin(kind, NS, name, "test/v1", "input.yaml", 1, None, path)


def service(name: str, *ports: ServicePort, sa: str | None = None) -> Service:
    return Service(
        NS,
        name,
        ports=ports or (HTTP,),
        selector=(("app", name),),
        service_accounts=(sa or name,),
        origin=origin("Service", name),
    )


def pod(name: str, sa: str, **labels: str) -> Pod:
    return Pod(NS, name, tuple(sorted(labels.items())), sa, template=True, workload=name)


def split(
    name: str, root: str, *backends: tuple[str, int], matches: Sequence[HTTPMatch] | None = None
) -> Split:
    return Split(
        NS,
        name,
        root,
        tuple(
            SplitBackend(s, w, origin("TrafficSplit", name, f"spec.backends[{i}]"))
            for i, (s, w) in enumerate(backends)
        ),
        matches=None if matches is None else tuple(matches),
        route_groups=() if matches is None else ("routes",),
        origin=origin("TrafficSplit", name),
    )


def target(name: str, dest: str, sources: Sequence[str], *rules: AccessRule) -> TrafficTarget:
    return TrafficTarget(
        NS,
        name,
        Identity(NS, dest),
        tuple(Identity(NS, s) for s in sources),
        rules,
        origin("TrafficTarget", name),
    )


def http_rule(*matches: HTTPMatch) -> AccessRule:
    return AccessRule("http", "routes", matches, origin=origin("TrafficTarget", "t", "spec.rules[0]"))


def tcp_rule(*ports: int) -> AccessRule:
    return AccessRule("tcp", "ports", (), ports, origin=origin("TrafficTarget", "t", "spec.rules[1]"))


def shop(
    *, splits: Sequence[Split] = (), targets: Sequence[TrafficTarget] = (), extra: Sequence[Service] = ()
) -> IR:
    """web (root) with web-v1/web-v2 behind it, and a client; every workload has its own labels."""
    services = [service("client"), service("web"), service("web-v1"), service("web-v2"), *extra]
    pods = [
        pod("client", "client", app="client"),
        pod("web-v1", "web-v1", app="web-v1", version="v1"),
        pod("web-v2", "web-v2", app="web-v2", version="v2"),
        pod("web", "web", app="web"),
    ]
    return IR(
        services=tuple(sorted(services, key=lambda s: s.name)),
        pods=tuple(sorted(pods, key=lambda p: p.name)),
        route_groups=(RouteGroup(NS, "routes", ()),),
        splits=tuple(splits),
        targets=tuple(targets),
    )


def emit(ir: IR, **options: Any) -> Emission:
    return BACKEND.emit(ir, Options(**options))


def objects(em: Emission, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in em.objects if o["kind"] == kind}


def codes(diagnostics: Iterable[Diagnostic]) -> list[str]:
    return [d.code for d in diagnostics]


# --- reading objects back ---------------------------------------------------------------------------


def source_objects(objs: Sequence[dict[str, Any]], file: str = "emitted.yaml") -> list[SourceObject]:
    return [
        SourceObject(
            o,
            Origin(
                o["kind"],
                o["metadata"].get("namespace", ""),
                o["metadata"]["name"],
                o["apiVersion"],
                file,
                i + 1,
            ),
        )
        for i, o in enumerate(objs)
    ]


def read_fixture(path: Path, **options: Any) -> tuple[IR, Report]:
    """Load a hand-written Istio file as a migration would: objects with their lines, plus inventory."""
    loaded = load([path])
    inventory = build_inventory(parse_documents(loaded.documents).resources)
    objs = []
    for doc in loaded.documents:
        obj = doc.obj if isinstance(doc.obj, dict) else {}
        raw_md = obj.get("metadata")
        md: dict[str, Any] = raw_md if isinstance(raw_md, dict) else {}
        objs.append(
            SourceObject(
                doc.obj,
                Origin(
                    str(obj.get("kind", "")),
                    str(md.get("namespace", "default")),
                    str(md.get("name", "")),
                    str(obj.get("apiVersion", "")),
                    doc.file,
                    doc.line,
                    path=doc.item_path,
                ),
            )
        )
    return BACKEND.ingest(objs, inventory, Options(**options))


def notes(report: Report, code: str) -> list[Diagnostic]:
    return [d for d in report if d.code == code]


# --- the round trip -------------------------------------------------------------------------------

_NAMED = re.compile(r"\[istio\] (TrafficSplit|TrafficTarget) ([^/\s]+)/([^:\s]+)")


@dataclass
class Excuses:
    """What emit's lossy report says may differ, read from its diagnostics."""

    rounding: set[tuple[str, str]] = field(default_factory=set)  # splits: shares within 1 point
    split_any: set[tuple[str, str]] = field(default_factory=set)
    split_udp: set[tuple[str, str]] = field(default_factory=set)
    identity_any: set[Identity] = field(default_factory=set)
    identity_narrowed: set[Identity] = field(default_factory=set)  # allowed -> denied only
    identity_udp: set[Identity] = field(default_factory=set)

    @classmethod
    def of(cls, ir: IR, diagnostics: Iterable[Diagnostic]) -> Excuses:
        ex = cls()
        split_sets = {"SMT103": ex.rounding, "SMT104": ex.rounding, "SMT105": ex.split_udp}
        split_sets |= {"SMT106": ex.split_any, "SMT109": ex.split_any}
        target_sets = {"SMT110": ex.identity_any, "SMT114": ex.identity_udp}
        target_sets |= {c: ex.identity_narrowed for c in ("SMT111", "SMT112", "SMT113", "SMT115")}
        for d in diagnostics:
            m = _NAMED.search(d.message)
            assert m is not None, f"diagnostic names no TrafficSplit/TrafficTarget: {d.message}"
            kind, ns, name = m.groups()
            if kind == "TrafficSplit":
                split_sets.get(d.code, set()).add((ns, name))
            else:
                tt = next(t for t in ir.targets if (t.namespace, t.name) == (ns, name))
                target_sets.get(d.code, set()).add(tt.destination)
        return ex


def _shares(decision: Decision) -> dict[str, Fraction]:
    total = sum(b.weight for b in decision.backends)
    return {b.service: Fraction(b.weight, total) for b in decision.backends}


def round_trip(ir: IR, mode: str = "enforce") -> tuple[Emission, IR, Report]:
    options = Options(access_mode=mode)  # type: ignore[arg-type]
    em = BACKEND.emit(ir, options)
    back, report = BACKEND.ingest(source_objects(em.objects), IR(services=ir.services, pods=ir.pods), options)
    return em, back, report


def unexplained_differences(ir: IR, mode: str = "enforce") -> list[str]:
    """Requests that ``ingest(emit(ir))`` decides differently from ``ir`` and emit did not report.

    A request to a port the (known) Service does not expose is left out: no connection to a
    Kubernetes Service can carry it, so no mesh ever sees it.
    """
    em, back, report = round_trip(ir, mode)
    ex = Excuses.of(ir, em.diagnostics)
    before = semantics.compile(ir, access_mode=mode)  # type: ignore[arg-type]
    after = semantics.compile(back, access_mode=mode)  # type: ignore[arg-type]
    first_split: dict[tuple[str, str], str] = {}
    for s in ir.splits:
        first_split.setdefault((s.namespace, s.root), s.name)
    out: list[str] = []
    for q in probes.generate_requests(ir):
        svc = ir.service(q.namespace, q.service)
        if svc is not None and svc.ports and svc.port(q.port) is None:
            continue
        a, b = before.decide(q), after.decide(q)
        key = (q.namespace, first_split.get((q.namespace, q.service), ""))
        if key in ex.split_any or (key in ex.split_udp and q.protocol == "udp"):
            continue
        sa, sb = _shares(a), _shares(b)
        if sa != sb:
            close = all(
                abs(sa.get(s, Fraction(0)) - sb.get(s, Fraction(0))) <= Fraction(1, 100) for s in {*sa, *sb}
            )
            if not (key in ex.rounding and close):
                out.append(f"routing {q}: {a.reason} | {b.reason}")
                continue
        allowed_after = {c.service: c.allowed for c in b.backends}
        for choice in a.backends:
            now = allowed_after.get(choice.service)
            if now is None or now == choice.allowed:
                continue
            ids = set(choice.identities)
            if ids & ex.identity_any:
                continue
            if choice.allowed and (
                ids & ex.identity_narrowed or (q.protocol == "udp" and ids & ex.identity_udp)
            ):
                continue
            out.append(f"access {q} to {choice.service}: {choice.reason} | now allowed={now}")
    if out:
        out.append("emit report: " + "; ".join(d.message for d in em.diagnostics))
        out.append("ingest report: " + "; ".join(d.message for d in report))
    return out


# ===================================================================================================
# emit: weights


@pytest.mark.parametrize(
    ("weights", "percents"),
    [
        ((1000, 2000), [33, 67]),  # smi-adapter-istio TestWeightToPercent rows
        ((20, 30, 50), [20, 30, 50]),
        ((5, 10, 20), [14, 29, 57]),
        ((1000, 1000, 1000), [34, 33, 33]),  # the adapter gave the last one the extra point; we give it first
    ],
)
def test_weights_become_percentages_by_largest_remainder(
    weights: tuple[int, ...], percents: list[int]
) -> None:
    assert largest_remainder(weights) == percents


def test_zero_weight_never_receives_the_rounding_remainder() -> None:
    # the adapter's algorithm gave the zero-weight backend 1% here
    assert largest_remainder([1, 1, 1, 0]) == [34, 33, 33, 0]


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=8).filter(lambda ws: sum(ws) > 0))
def test_percentages_sum_to_100_keep_zeros_and_stay_within_one_point(weights: list[int]) -> None:
    percents = largest_remainder(weights)
    assert sum(percents) == 100
    total = sum(weights)
    for w, p in zip(weights, percents, strict=True):
        assert (w == 0) <= (p == 0)
        assert abs(Fraction(w * 100, total) - p) < 1


def test_split_becomes_one_virtual_service_on_the_root_fqdn() -> None:
    em = emit(shop(splits=[split("canary", "web", ("web-v1", 90), ("web-v2", 10))]))
    vs = objects(em, "VirtualService")["canary"]
    assert vs["apiVersion"] == "networking.istio.io/v1"
    assert vs["metadata"]["namespace"] == NS
    assert vs["spec"] == {
        "hosts": ["web.shop.svc.cluster.local"],
        "http": [
            {
                "route": [
                    {"destination": {"host": "web-v1.shop.svc.cluster.local"}, "weight": 90},
                    {"destination": {"host": "web-v2.shop.svc.cluster.local"}, "weight": 10},
                ]
            }
        ],
    }
    assert not objects(em, "DestinationRule")  # SMI backends are Services: no subsets needed
    assert vs["metadata"]["annotations"]["smi-bridge.io/source"] == "TrafficSplit/shop/canary"
    assert em.diagnostics == []


def test_cluster_domain_option_names_the_hosts() -> None:
    em = emit(shop(splits=[split("canary", "web", ("web-v1", 1))]), cluster_domain="corp.internal")
    spec = objects(em, "VirtualService")["canary"]["spec"]
    assert spec["hosts"] == ["web.shop.svc.corp.internal"]
    assert spec["http"][0]["route"] == [
        {"destination": {"host": "web-v1.shop.svc.corp.internal"}, "weight": 100}
    ]


def test_all_zero_split_is_refused_with_an_error() -> None:
    s = split("off", "web", ("web-v1", 0), ("web-v2", 0))
    em = emit(shop(splits=[s]))
    assert not objects(em, "VirtualService")
    [d] = em.diagnostics
    assert (d.code, d.severity) == ("SMT101", Severity.ERROR)
    assert s in em.consumed


def test_positive_weight_that_rounds_to_zero_percent_is_a_warning() -> None:
    em = emit(shop(splits=[split("tiny", "web", ("web-v1", 1), ("web-v2", 500))]))
    route = objects(em, "VirtualService")["tiny"]["spec"]["http"][0]["route"]
    assert [r["weight"] for r in route] == [0, 100]
    [d] = em.diagnostics
    assert (d.code, d.severity) == ("SMT104", Severity.WARNING)
    assert "web-v1" in d.message


def test_inexact_rounding_is_reported_as_info() -> None:
    em = emit(shop(splits=[split("third", "web", ("web-v1", 1), ("web-v2", 2))]))
    [d] = em.diagnostics
    assert (d.code, d.severity) == ("SMT103", Severity.INFO)
    assert "33.33% -> 33%" in d.message


def test_duplicate_backend_entries_add_up() -> None:
    em = emit(shop(splits=[split("dup", "web", ("web-v1", 1), ("web-v2", 2), ("web-v1", 1))]))
    route = objects(em, "VirtualService")["dup"]["spec"]["http"][0]["route"]
    assert [(r["destination"]["host"].split(".")[0], r["weight"]) for r in route] == [
        ("web-v1", 50),
        ("web-v2", 50),
    ]


def test_matches_split_has_one_match_request_per_route_and_method_then_a_catch_all_to_the_root() -> None:
    routes = [
        HTTPMatch("cart", "/cart", ("GET", "POST"), (HeaderMatch("user-agent", ".*Firefox.*"),)),
        HTTPMatch("any", None),
    ]
    em = emit(shop(splits=[split("ab", "web", ("web-v1", 3), ("web-v2", 1), matches=routes)]))
    http = objects(em, "VirtualService")["ab"]["spec"]["http"]
    assert http[0]["match"] == [
        {
            "name": "cart",
            "uri": {"regex": "(?:/cart).*"},
            "headers": {"user-agent": {"regex": ".*Firefox.*"}},
            "method": {"exact": "GET"},
        },
        {
            "name": "cart",
            "uri": {"regex": "(?:/cart).*"},
            "headers": {"user-agent": {"regex": ".*Firefox.*"}},
            "method": {"exact": "POST"},
        },
        {"name": "any"},
    ]
    assert [r["weight"] for r in http[0]["route"]] == [75, 25]
    assert http[1] == {"route": [{"destination": {"host": "web.shop.svc.cluster.local"}}]}
    assert "tcp" not in objects(em, "VirtualService")["ab"]["spec"]  # TCP never matches such a split


def test_tcp_root_port_gets_a_tcp_section_and_an_undeclared_port_gets_both() -> None:
    tcp = ServicePort(5432, "tcp-db")
    sniffed = ServicePort(9000, "")  # no protocol in the name: Istio sniffs it, may see HTTP
    extra = [
        service("db", tcp, sniffed),
        service("db-a", tcp, sniffed),
        service("db-b", tcp, sniffed),
    ]
    em = emit(shop(splits=[split("db", "db", ("db-a", 1), ("db-b", 1))], extra=extra))
    spec = objects(em, "VirtualService")["db"]["spec"]
    assert [r["weight"] for r in spec["tcp"][0]["route"]] == [50, 50]
    assert "match" not in spec["tcp"][0]
    # the sniffed port may carry HTTP; the declared TCP port never does, so no port match is needed
    assert spec["http"] == [spec["tcp"][0]]


def test_backend_without_a_root_port_takes_no_traffic_on_that_port() -> None:
    metrics = ServicePort(9090, "http-metrics")
    extra = [service("api", HTTP, metrics), service("api-v1", HTTP, metrics), service("api-v2", HTTP)]
    em = emit(shop(splits=[split("api", "api", ("api-v1", 1), ("api-v2", 3))], extra=extra))
    http = objects(em, "VirtualService")["api"]["spec"]["http"]
    assert http[0]["match"] == [{"port": 80}]
    assert [r["weight"] for r in http[0]["route"]] == [25, 75]
    assert http[1]["match"] == [{"port": 9090}]
    assert [(r["destination"]["host"], r["weight"]) for r in http[1]["route"]] == [
        ("api-v1.shop.svc.cluster.local", 100)
    ]
    assert http[2] == {"route": [{"destination": {"host": "api.shop.svc.cluster.local"}}]}


def test_udp_root_port_is_not_split_and_says_so() -> None:
    dns = ServicePort(53, "dns", protocol="UDP")
    extra = [service("dns", dns, HTTP), service("dns-a", dns, HTTP), service("dns-b", dns, HTTP)]
    em = emit(shop(splits=[split("dns", "dns", ("dns-a", 1), ("dns-b", 1))], extra=extra))
    assert "SMT105" in codes(em.diagnostics)
    assert objects(em, "VirtualService")["dns"]["spec"]["http"][0]["route"][0]["weight"] == 50


def test_unknown_root_service_gets_both_sections_and_a_note() -> None:
    em = emit(shop(splits=[split("ghost", "ghost", ("web-v1", 1), ("web-v2", 1))]))
    spec = objects(em, "VirtualService")["ghost"]["spec"]
    assert set(spec) == {"hosts", "http", "tcp"}
    assert "SMT106" in codes(em.diagnostics)


def test_second_split_on_one_root_is_refused_and_the_first_by_name_kept() -> None:
    first = split("a-canary", "web", ("web-v1", 1))
    second = split("b-canary", "web", ("web-v2", 1))
    em = emit(shop(splits=[first, second]))
    assert list(objects(em, "VirtualService")) == ["a-canary"]
    [d] = em.diagnostics
    assert d.code == "SMT102" and "b-canary" in d.message and "a-canary" in d.message
    assert second in em.consumed


def test_route_with_a_non_re2_regex_is_left_out_of_the_split() -> None:
    routes = [HTTPMatch("bad", "/(?=x)"), HTTPMatch("good", "/ok")]
    em = emit(shop(splits=[split("ab", "web", ("web-v1", 1), matches=routes)]))
    http = objects(em, "VirtualService")["ab"]["spec"]["http"]
    assert [m["name"] for m in http[0]["match"]] == ["good"]
    assert "SMT108" in codes(em.diagnostics)


# ===================================================================================================
# emit: access


def test_policy_selects_the_destination_pods_and_names_sources_in_the_trust_domain() -> None:
    tt = target("web-v1-readers", "web-v1", ["client"], http_rule(HTTPMatch("api", "/api", ("GET",))))
    em = emit(shop(targets=[tt]), trust_domain="prod.example.org")
    ap = objects(em, "AuthorizationPolicy")["web-v1-readers"]
    assert ap["apiVersion"] == "security.istio.io/v1"
    assert ap["spec"] == {
        "selector": {"matchLabels": {"app": "web-v1", "version": "v1"}},
        "action": "ALLOW",
        "rules": [
            {
                "from": [{"source": {"principals": ["prod.example.org/ns/shop/sa/client"]}}],
                "to": [{"operation": {"paths": ["/api*"], "methods": ["GET"]}}],
            }
        ],
    }
    assert tt in em.consumed and all(r in em.consumed for r in tt.rules)


@pytest.mark.parametrize(
    ("path_regex", "paths"),
    [
        ("/api", ["/api*"]),  # start-anchored: /api is a prefix
        ("/api$", ["/api"]),
        ("/api/.*", ["/api/*"]),
        (".*\\.js$", ["*.js"]),
        ("/a\\.b", ["/a.b*"]),
        (".*", ["*"]),  # every path; still an HTTP-only field, so no raw TCP is allowed
        (None, ["*"]),
    ],
)
def test_path_regexes_that_reduce_become_exact_prefix_or_suffix_paths(
    path_regex: str | None, paths: list[str]
) -> None:
    em = emit(shop(targets=[target("t", "web-v1", ["client"], http_rule(HTTPMatch("r", path_regex)))]))
    [rule] = objects(em, "AuthorizationPolicy")["t"]["spec"]["rules"]
    assert rule["to"] == [{"operation": {"paths": paths}}]
    assert em.diagnostics == []


@pytest.mark.parametrize("path_regex", ["/api/[0-9]+", "/a.b", "/(get|list)", "/x/.*/y", "/a*b"])
def test_path_regex_without_an_istio_form_drops_the_match_and_says_narrowed(path_regex: str) -> None:
    rules = http_rule(HTTPMatch("odd", path_regex), HTTPMatch("ok", "/ok$"))
    em = emit(shop(targets=[target("t", "web-v1", ["client"], rules)]))
    [rule] = objects(em, "AuthorizationPolicy")["t"]["spec"]["rules"]
    assert rule["to"] == [{"operation": {"paths": ["/ok"]}}]
    [d] = em.diagnostics
    assert d.code == "SMT111" and "narrowed" in d.message and repr(path_regex) in d.message


def test_header_regexes_become_when_conditions_grouped_per_rule() -> None:
    rules = http_rule(
        HTTPMatch("exact", "/a$", (), (HeaderMatch("x-env", "prod"),)),
        HTTPMatch("prefix", "/b$", (), (HeaderMatch("user-agent", "Mozilla/.*"),)),
        HTTPMatch("plain", "/c$"),
        HTTPMatch("plain-too", "/d$"),
    )
    em = emit(shop(targets=[target("t", "web-v1", ["client"], rules)]))
    spec_rules = objects(em, "AuthorizationPolicy")["t"]["spec"]["rules"]
    assert [(r.get("when"), r["to"]) for r in spec_rules] == [
        ([{"key": "request.headers[x-env]", "values": ["prod"]}], [{"operation": {"paths": ["/a"]}}]),
        (
            [{"key": "request.headers[user-agent]", "values": ["Mozilla/*"]}],
            [{"operation": {"paths": ["/b"]}}],
        ),
        (None, [{"operation": {"paths": ["/c"]}}, {"operation": {"paths": ["/d"]}}]),
    ]


def test_header_dot_star_becomes_presence_and_irreducible_header_drops_the_match() -> None:
    rules = http_rule(
        HTTPMatch("present", "/a$", (), (HeaderMatch("x-user", ".*"),)),
        HTTPMatch("odd", "/b$", (), (HeaderMatch("x-user", "v[0-9]+"),)),
    )
    em = emit(shop(targets=[target("t", "web-v1", ["client"], rules)]))
    [rule] = objects(em, "AuthorizationPolicy")["t"]["spec"]["rules"]
    assert rule["when"] == [{"key": "request.headers[x-user]", "values": ["*"]}]
    assert sorted(codes(em.diagnostics)) == ["SMT112", "SMT113"]


def test_tcp_rule_next_to_http_rules_narrows_their_ports_and_opens_no_raw_tcp() -> None:
    tt = target("t", "web-v1", ["client"], http_rule(HTTPMatch("api", "/api")), tcp_rule(8080))
    em = emit(shop(targets=[tt]))
    [rule] = objects(em, "AuthorizationPolicy")["t"]["spec"]["rules"]
    assert rule["to"] == [{"operation": {"paths": ["/api*"], "ports": ["8080"]}}]


def test_tcp_only_target_allows_its_workload_ports_and_every_port_without_to() -> None:
    em = emit(
        shop(
            targets=[
                target("ports", "web-v1", ["client"], tcp_rule(8080, 9090)),
                target("all", "web-v2", ["client"], tcp_rule()),
            ]
        )
    )
    aps = objects(em, "AuthorizationPolicy")
    assert aps["ports"]["spec"]["rules"][0]["to"] == [{"operation": {"ports": ["8080", "9090"]}}]
    assert aps["all"]["spec"]["rules"] == [
        {"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/client"]}}]}
    ]


def test_target_without_sources_selects_its_workloads_and_allows_nothing() -> None:
    em = emit(shop(targets=[target("closed", "web-v1", [], tcp_rule(8080))]))
    spec = objects(em, "AuthorizationPolicy")["closed"]["spec"]
    assert spec == {"selector": {"matchLabels": {"app": "web-v1", "version": "v1"}}, "action": "ALLOW"}


def test_udp_rule_is_reported_as_having_no_istio_form() -> None:
    udp = AccessRule("udp", "dns", (), (53,))
    em = emit(shop(targets=[target("t", "web-v1", ["client"], udp)]))
    assert codes(em.diagnostics) == ["SMT114"]
    assert "rules" not in objects(em, "AuthorizationPolicy")["t"]["spec"]


@pytest.mark.parametrize(
    ("mode", "severity", "effect"),
    [("enforce", Severity.WARNING, "narrowed"), ("permissive", Severity.ERROR, "widened")],
)
def test_destination_without_known_pods_gets_no_policy(mode: str, severity: Severity, effect: str) -> None:
    ir = shop(targets=[target("t", "nobody", ["client"], tcp_rule(8080))])
    em = emit(ir, access_mode=mode)
    assert "t" not in objects(em, "AuthorizationPolicy")
    [d] = em.diagnostics
    assert (d.code, d.severity) == ("SMT110", severity)
    assert effect in d.message


def test_labels_shared_with_another_service_account_are_not_used_as_selector() -> None:
    ir = shop(targets=[target("t", "web-v1", ["client"], tcp_rule(8080))])
    ir = IR(
        services=ir.services,
        pods=(*ir.pods, pod("web-v1-imposter", "other", app="web-v1", version="v1")),
        targets=ir.targets,
    )
    em = emit(ir)
    assert "t" not in objects(em, "AuthorizationPolicy")
    [d] = em.diagnostics
    assert d.code == "SMT110" and "other" in d.message


def test_enforce_mode_writes_one_allow_nothing_policy_per_namespace_and_permissive_none() -> None:
    other = Service("payments", "pay", ports=(HTTP,))
    ir = shop(targets=[target("t", "web-v1", ["client"], tcp_rule(8080))])
    ir = IR(services=(*ir.services, other), pods=ir.pods, targets=ir.targets)
    enforce = emit(ir)
    denies = [o for o in enforce.objects if o["metadata"]["name"] == DENY_BY_DEFAULT_NAME]
    assert [(o["metadata"]["namespace"], o["spec"]) for o in denies] == [("payments", {}), ("shop", {})]
    permissive = emit(ir, access_mode="permissive")
    assert not [o for o in permissive.objects if o["metadata"]["name"] == DENY_BY_DEFAULT_NAME]


def test_target_from_another_namespace_gets_a_prefixed_name_in_the_destination_namespace() -> None:
    tt = TrafficTarget("ops", "t", Identity(NS, "web-v1"), (Identity(NS, "client"),), (tcp_rule(8080),))
    em = emit(shop(targets=[tt]))
    assert objects(em, "AuthorizationPolicy")["ops-t"]["metadata"]["namespace"] == NS


# ===================================================================================================
# emit: contracts every backend keeps


def rich_ir() -> IR:
    routes = [
        HTTPMatch("api", "/api", ("GET", "POST"), (HeaderMatch("x-env", "prod|stage"),)),
        HTTPMatch("static", ".*\\.(js|css)"),
        HTTPMatch("health", "/healthz$"),
    ]
    metrics = ServicePort(9090, "tcp-metrics")
    extra = [service("api", HTTP, metrics), service("api-v1", HTTP, metrics), service("api-v2", HTTP)]
    return shop(
        splits=[
            split("api", "api", ("api-v1", 1), ("api-v2", 2)),
            split("ab", "web", ("web-v1", 9), ("web-v2", 1), matches=routes),
            split("zero", "client", ("web-v1", 0)),
        ],
        targets=[
            target("a", "web-v1", ["client", "web"], http_rule(*routes), tcp_rule(8080)),
            target("b", "web-v2", ["client"], tcp_rule()),
            target("c", "nobody", ["client"], tcp_rule(1)),
            target("d", "web", [], AccessRule("udp", "dns", (), (53,))),
        ],
        extra=extra,
    )


def test_every_split_and_access_node_is_consumed() -> None:
    ir = rich_ir()
    em = emit(ir)
    assert set(ir.consumable()) <= em.consumed


def test_emission_is_deterministic_plain_json_without_shared_parts() -> None:
    first, second = emit(rich_ir()), emit(rich_ir())
    assert first.objects == second.objects
    assert json.loads(json.dumps(first.objects)) == first.objects
    # no dict or list object appears twice (YAML would print anchors, a mutation would leak)
    seen: set[int] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict | list):
            assert id(node) not in seen
            seen.add(id(node))
            for child in node.values() if isinstance(node, dict) else node:
                walk(child)

    for obj in first.objects:
        walk(obj)


def test_every_diagnostic_code_is_declared_and_in_the_istio_ranges() -> None:
    declared = {c.code for c in CHECKS}
    assert len(declared) == len(CHECKS)
    for code in declared:
        number = int(code[3:])
        assert code[:3] in ("SMT", "SMX") and 100 <= number <= 199
    em = emit(rich_ir())
    assert set(codes(em.diagnostics)) <= declared


def test_backend_is_registered_under_its_name() -> None:
    backend = get_backend("istio")
    assert isinstance(backend, IstioBackend) and backend.name == "istio"


def _invalid(objs: Iterable[dict[str, Any]], crds: CRDIndex) -> list[str]:
    errors = []
    for obj in objs:
        for err in crds.validate(obj):
            errors.append(f"{obj['kind']} {obj['metadata']['name']}: {err}")
        spec = obj.get("spec", {})
        # CEL rules the CRDs carry (crdcheck cannot run CEL): selector labels without '*', non-empty keys
        labels = spec.get("selector", {}).get("matchLabels", {})
        if any("*" in k or not k or "*" in v for k, v in labels.items()):
            errors.append(f"{obj['metadata']['name']}: selector label breaks the CRD's CEL rules")
        if sum(k in spec for k in ("selector", "targetRef", "targetRefs")) > 1:
            errors.append(f"{obj['metadata']['name']}: selector and targetRefs together")
    return errors


def test_emitted_objects_of_a_rich_ir_validate_against_the_istio_crds(vendor_crds: CRDIndex) -> None:
    for mode in ("enforce", "permissive"):
        em = emit(rich_ir(), access_mode=mode)
        assert {o["kind"] for o in em.objects} == {"VirtualService", "AuthorizationPolicy"}
        assert _invalid(em.objects, vendor_crds) == []


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(ir=irs())
def test_emitted_objects_of_random_irs_validate_against_the_istio_crds(ir: IR) -> None:
    crds = _crds()
    assert _invalid(emit(ir).objects, crds) == []


_crd_cache: list[CRDIndex] = []


def _crds() -> CRDIndex:
    # hypothesis tests cannot take function-scoped fixtures; load the index once per session
    if not _crd_cache:
        from tests.conftest import ANCHORS

        _crd_cache.append(CRDIndex.from_paths([ANCHORS / "crds" / "istio"]))
    return _crd_cache[0]


# ===================================================================================================
# the round trip


@pytest.mark.parametrize("mode", ["enforce", "permissive"])
def test_round_trip_of_a_rich_ir_decides_like_the_source(mode: str) -> None:
    assert unexplained_differences(rich_ir(), mode) == []


@pytest.mark.parametrize("case", TRANSLATE_CASES, ids=[c.name for c in TRANSLATE_CASES])
def test_round_trip_of_every_translation_fixture_decides_like_the_source(case: Case) -> None:
    built, _ = case.build()
    for mode in ("enforce", "permissive"):
        assert unexplained_differences(built.ir, mode) == []


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(ir=irs(), mode=st.sampled_from(["enforce", "permissive"]))
def test_round_trip_of_random_irs_decides_like_the_source(ir: IR, mode: str) -> None:
    assert unexplained_differences(ir, mode) == []


def test_round_trip_keeps_route_names_and_folds_methods_back_into_one_route() -> None:
    routes = [HTTPMatch("cart", "/cart", ("GET", "POST"), (HeaderMatch("x-env", "prod"),))]
    _, back, _ = round_trip(shop(splits=[split("ab", "web", ("web-v1", 1), matches=routes)]))
    [s] = back.splits
    assert [(m.name, m.path_regex, m.methods, m.headers) for m in s.matches or ()] == [
        ("cart", "/cart", ("GET", "POST"), (HeaderMatch("x-env", "prod"),))
    ]
    assert s.route_groups == ("ab-routes",) and [g.name for g in back.route_groups] == ["ab-routes"]


# ===================================================================================================
# ingest: hand-written Istio


def test_bookinfo_canary_imports_the_split_the_target_and_the_namespace_default() -> None:
    ir, report = read_fixture(IMPORTS / "01-bookinfo-canary.yaml")
    [s] = ir.splits
    assert (s.namespace, s.name, s.root) == ("bookinfo", "reviews", "reviews")
    assert [(b.service, b.weight) for b in s.backends] == [("reviews-v1", 9), ("reviews-v2", 1)]
    assert s.matches is None and s.origin.file and s.origin.file.endswith("01-bookinfo-canary.yaml")
    [t] = ir.targets
    assert t.destination == Identity("bookinfo", "bookinfo-reviews")
    assert t.sources == (Identity("bookinfo", "bookinfo-productpage"),)
    [rule] = t.rules
    assert [(m.path_regex, m.methods) for m in rule.matches] == [
        ("/reviews/", ("GET",)),
        ("/health$", ("GET",)),
    ]
    assert codes(report) == ["SMX101"]  # PeerAuthentication noted; the allow-nothing policy fits enforce mode
    assert ir.services and ir.pods  # the inventory is part of the result


def test_bookinfo_decides_like_istio_would() -> None:
    ir, _ = read_fixture(IMPORTS / "01-bookinfo-canary.yaml")
    router = semantics.compile(ir)
    page = Identity("bookinfo", "bookinfo-productpage")
    get = router.decide(Request(page, "bookinfo", "reviews", 9080, "http", "GET", "/reviews/0"))
    assert get.allowed and {b.service for b in get.backends} == {"reviews-v1", "reviews-v2"}
    assert not router.decide(Request(page, "bookinfo", "reviews", 9080, "http", "POST", "/reviews/0")).allowed
    assert not router.decide(Request(page, "bookinfo", "reviews", 9080, "http", "GET", "/health/x")).allowed
    assert not router.decide(Request(None, "bookinfo", "reviews", 9080, "http", "GET", "/reviews/0")).allowed


def test_permissive_mode_reports_that_the_allow_nothing_policy_would_be_widened() -> None:
    _, report = read_fixture(IMPORTS / "01-bookinfo-canary.yaml", access_mode="permissive")
    [d] = notes(report, "SMX128")
    assert "widened" in d.message and "bookinfo-productpage" in d.message


def test_flagger_ab_test_keeps_the_primary_and_reports_the_matched_canary_entry() -> None:
    ir, report = read_fixture(IMPORTS / "02-flagger-ab-test.yaml")
    [s] = ir.splits
    assert [(b.service, b.weight) for b in s.backends] == [("podinfo-primary", 1)]
    assert [d.path for d in notes(report, "SMX108")] == ["spec.http[0]"]
    assert sorted(d.path for d in notes(report, "SMX106")) == ["spec.http[0].retries", "spec.http[0].timeout"]


def test_matches_with_a_catch_all_to_the_root_become_a_matches_split() -> None:
    ir, report = read_fixture(IMPORTS / "03-header-ab-to-root.yaml")
    [s] = ir.splits
    assert [(b.service, b.weight) for b in s.backends] == [("checkout-v1", 3), ("checkout-v2", 1)]
    assert [(m.name, m.path_regex, m.methods, m.headers) for m in s.matches or ()] == [
        ("cart", "/cart", ("GET", "POST"), (HeaderMatch("user-agent", ".*Firefox.*"),)),
        ("pay", "/pay/now$", (), ()),
        ("legacy", "(?i)/OLD", (), ()),
    ]
    assert [g.name for g in ir.route_groups] == ["checkout-routes"]
    assert not [d for d in report if d.code != "SMX128"]
    router = semantics.compile(ir, access_mode="permissive")
    for path, split_name in (("/old/x", "checkout"), ("/pay/now", "checkout"), ("/pay/later", None)):
        assert router.decide(Request(None, "shop", "checkout", 8080, path=path)).split == split_name


def test_oldest_virtual_service_for_a_host_wins_and_the_conflict_names_both() -> None:
    ir, report = read_fixture(IMPORTS / "04-conflicts.yaml")
    [s] = ir.splits
    assert s.name == "ratings-old" and [(b.service, b.weight) for b in s.backends] == [
        ("ratings-v1", 4),
        ("ratings-v2", 1),
    ]
    [conflict] = notes(report, "SMX105")
    assert conflict.resource.name == "ratings-new" and "04-conflicts.yaml:36" in conflict.message
    assert "creationTimestamp" in conflict.message
    assert [d.path for d in notes(report, "SMX104")] == ["spec.gateways"]
    assert sorted(d.path for d in notes(report, "SMX103")) == ["spec.hosts[0]", "spec.hosts[1]"]


def test_route_features_without_smi_fields_are_each_reported_by_field_path() -> None:
    ir, report = read_fixture(IMPORTS / "05-unsupported-route-features.yaml")
    [s] = ir.splits
    assert [(b.service, b.weight) for b in s.backends] == [("details", 7), ("details-next", 3)]
    reported = {(d.code, d.path) for d in report}
    for feature in ("rewrite", "retries", "timeout", "fault", "mirror", "corsPolicy"):
        assert ("SMX106", f"spec.http[1].{feature}") in reported
    assert ("SMX106", "spec.http[1].route[1].headers") in reported
    assert ("SMX107", "spec.http[0].match[0].queryParams") in reported
    assert ("SMX109", "spec.http[1].route[0].destination.subset") in reported
    assert ("SMX109", "spec.http[1].route[1].destination.port") in reported
    assert ("SMX106", "spec.exportTo") in reported
    [dr] = notes(report, "SMX102")
    assert "subsets v1, v2" in dr.message and "trafficPolicy" in dr.message


def test_authorization_features_without_smi_form_are_reported_and_always_narrow() -> None:
    ir, report = read_fixture(IMPORTS / "06-unsupported-authorization.yaml")
    reported = {(d.code, d.path) for d in report}
    assert ("SMX120", "spec.action") in reported
    assert {d.severity for d in notes(report, "SMX120")} == {Severity.ERROR, Severity.INFO}
    assert ("SMX123", "spec.rules[0].from[1].source.ipBlocks") in reported
    assert ("SMX123", "spec.rules[0].from[2].source.requestPrincipals") in reported
    assert ("SMX124", "spec.rules[0].from[3].source.principals[0]") in reported  # spiffe:// prefix
    assert ("SMX124", "spec.rules[0].from[3].source.principals[1]") in reported  # other trust domain
    assert ("SMX125", "spec.rules[0].to[0].operation.paths[2]") in reported  # path template
    assert ("SMX125", "spec.rules[0].to[1].operation.hosts") in reported
    assert ("SMX125", "spec.rules[0].to[2].operation.notPaths") in reported
    assert ("SMX126", "spec.rules[3].when[0].key") in reported  # source.ip
    assert ("SMX121", "spec.targetRefs") in reported
    assert ("SMX121", "spec") in reported  # selector-less ALLOW in namespace jobs
    assert ("SMX100", "") in reported  # the Gateway
    by_name = {t.name: t for t in ir.targets}
    web, api, batch = Identity("prod", "web"), Identity("prod", "api"), Identity("jobs", "batch")
    assert by_name["api-callers-1"].sources == (web,)
    [rule] = by_name["api-callers-1"].rules
    assert [(m.path_regex, m.methods) for m in rule.matches] == [
        ("/api/", ("GET", "HEAD")),
        (".*\\.json$", ("GET", "HEAD")),
    ]
    assert by_name["api-callers-2"].sources == (batch,)
    assert [(r.kind, r.ports) for r in by_name["api-callers-2"].rules] == [("tcp", (8080,))]
    # wildcard principal expanded against the inventory; header and destination.port conditions kept
    assert by_name["api-callers-3"].sources == (api, web)
    http, tcp = by_name["api-callers-3"].rules
    assert [m.headers for m in http.matches] == [(HeaderMatch("x-tenant", "acme|globex.*"),)]
    assert tcp.ports == (8080,)
    assert by_name["namespace-wide"].destination == batch
    # nothing reported as dropped was widened: the DENY policy is an error, everything else narrows
    router = semantics.compile(ir)
    assert not router.decide(Request(web, "prod", "api", 80, "http", "GET", "/admin")).allowed
    assert router.decide(Request(web, "prod", "api", 80, "http", "GET", "/api/x")).allowed


def test_malformed_objects_get_diagnostics_naming_the_field_not_tracebacks() -> None:
    ir, report = read_fixture(IMPORTS / "07-malformed.yaml")
    errors = {(d.resource.name, d.path) for d in report if d.code == "SMX130"}
    assert ("cart-bad-hosts", "spec.hosts") in errors
    assert ("cart-bad-weight", "spec.http[0].route[0].weight") in errors
    assert ("cart-bad-rules", "spec.rules") in errors
    assert ("cart-spec-list", "spec") in errors
    assert all(
        d.file and d.file.endswith("07-malformed.yaml") and d.line for d in report if d.code == "SMX130"
    )
    assert ("SMX110", "spec.http[0].route") in {(d.code, d.path) for d in report}
    assert not ir.splits


def test_selector_matching_part_of_a_service_account_keeps_it_deny_by_default() -> None:
    ir = IR(
        pods=(
            pod("a-v1", "a", app="a", version="v1"),
            pod("a-v2", "a", app="a", version="v2"),
            pod("c", "c", app="c"),
        ),
    )
    ap = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "v1-only", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"version": "v1"}},
            "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/c"]}}]}],
        },
    }
    back, report = BACKEND.ingest(source_objects([ap]), ir, Options(access_mode="permissive"))
    [t] = back.targets
    assert (t.destination, t.sources, t.rules) == (Identity(NS, "a"), (), ())
    assert codes(report) == ["SMX122"]


def test_rule_without_from_admits_only_the_inventory_identities_and_says_so() -> None:
    ir = IR(pods=(pod("a", "a", app="a"), pod("c", "c", app="c")))
    ap = {
        "apiVersion": "security.istio.io/v1beta1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "open", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": "a"}},
            "rules": [{"to": [{"operation": {"ports": ["8080"]}}]}],
        },
    }
    back, report = BACKEND.ingest(source_objects([ap]), ir, Options(access_mode="permissive"))
    [t] = back.targets
    assert t.sources == (Identity(NS, "a"), Identity(NS, "c"))
    assert codes(report) == ["SMX127"] and "unauthenticated" in report.diagnostics[0].message


def test_ingested_ir_is_in_normal_form() -> None:
    for path in sorted(IMPORTS.glob("*.yaml")):
        ir, _ = read_fixture(path)
        for coll in (ir.route_groups, ir.port_routes, ir.splits, ir.targets):
            assert list(coll) == sorted(coll, key=lambda n: (n.namespace, n.name))
        for group in ir.route_groups:
            assert len({m.name for m in group.matches}) == len(group.matches)
            for m in group.matches:
                assert all(h.name == h.name.lower() for h in m.headers)
                assert all(x == x.upper() for x in m.methods)


def test_hand_written_istio_is_stable_through_emit_and_ingest() -> None:
    for name in ("01-bookinfo-canary.yaml", "03-header-ab-to-root.yaml", "06-unsupported-authorization.yaml"):
        ir, _ = read_fixture(IMPORTS / name)
        assert unexplained_differences(ir) == [], name


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 70000)
    | st.sampled_from(["", "*", "a*", "GET", "/x", "mesh", "8080"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "hosts",
                    "http",
                    "tcp",
                    "route",
                    "match",
                    "destination",
                    "host",
                    "weight",
                    "uri",
                    "prefix",
                    "exact",
                    "regex",
                    "headers",
                    "method",
                    "port",
                    "rules",
                    "from",
                    "to",
                    "source",
                    "principals",
                    "operation",
                    "paths",
                    "methods",
                    "ports",
                    "when",
                    "key",
                    "values",
                    "selector",
                    "matchLabels",
                    "action",
                    "gateways",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=_JSON, kind=st.sampled_from(["VirtualService", "AuthorizationPolicy", "DestinationRule"]))
def test_ingest_never_raises_on_arbitrary_specs(spec: Any, kind: str) -> None:
    group = "security.istio.io/v1" if kind == "AuthorizationPolicy" else "networking.istio.io/v1"
    obj = {"apiVersion": group, "kind": kind, "metadata": {"name": "x", "namespace": NS}, "spec": spec}
    back, report = BACKEND.ingest(source_objects([obj]), shop(), Options())
    assert isinstance(back, IR)
    assert all(d.code.startswith("SMX") for d in report)


def test_re2_escape_escapes_only_metacharacters() -> None:
    text = "/a.b-c_d~e/f(g)+h*i?j[k]{l}|m^n$o\\p q"
    escaped = re2_escape(text)
    assert re.fullmatch(escaped, text)
    assert "\\-" not in escaped and "\\ " not in escaped and "\\/" not in escaped
