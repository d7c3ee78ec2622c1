"""Generated requests: coverage of Services, ports, sources and routes; determinism; the cap."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from smi_bridge.ir import (
    IR,
    AccessRule,
    HeaderMatch,
    HTTPMatch,
    Identity,
    Pod,
    Service,
    ServicePort,
    Split,
    SplitBackend,
    TrafficTarget,
)
from smi_bridge.probes import generate_requests
from smi_bridge.semantics import compile
from tests.strategies import irs

NS = "bookstore"
BUYER = Identity(NS, "bookbuyer")
THIEF = Identity("thieves", "bookthief")
READS = HTTPMatch(
    "reads", path_regex="/books/.*", methods=("GET",), headers=(HeaderMatch("x-user", "alice|bob"),)
)
CANARY = HTTPMatch("canary", headers=(HeaderMatch("x-canary", "yes"),))


def bookstore() -> IR:
    def svc(name: str, *ports: ServicePort, sa: str = "") -> Service:
        return Service(NS, name, ports=ports, service_accounts=(sa,) if sa else ())

    http = ServicePort(14001, "http")
    return IR(
        services=(
            svc("bookstore", http),
            svc("bookstore-v1", http, sa="bookstore-v1"),
            svc("bookstore-v2", http, ServicePort(9000, "tcp-admin"), sa="bookstore-v2"),
            svc("dns", ServicePort(53, "dns", protocol="UDP"), sa="dns"),
        ),
        pods=(Pod(NS, "buyer-0", service_account="bookbuyer"),),
        splits=(
            Split(
                NS,
                "bookstore-split",
                "bookstore",
                (SplitBackend("bookstore-v1", 90), SplitBackend("bookstore-v2", 10)),
                matches=(CANARY,),
            ),
        ),
        targets=(
            TrafficTarget(
                NS,
                "reads",
                Identity(NS, "bookstore-v1"),
                (BUYER, THIEF),
                (AccessRule("http", "routes", (READS,)),),
            ),
            TrafficTarget(NS, "dns", Identity(NS, "dns"), (BUYER,), (AccessRule("udp", "dns", ports=(53,)),)),
        ),
    )


def test_same_ir_gives_the_same_requests() -> None:
    assert generate_requests(bookstore()) == generate_requests(bookstore())


def test_requests_are_deduplicated() -> None:
    requests = generate_requests(bookstore())
    assert len(requests) == len(set(requests))


def test_every_service_port_and_one_missing_port_are_probed() -> None:
    requests = generate_requests(bookstore())
    ports = {(r.service, r.port) for r in requests}
    assert {("bookstore", 14001), ("bookstore-v2", 9000), ("dns", 53)} <= ports
    missing = {p for s, p in ports if s == "bookstore-v1"} - {14001}
    assert len(missing) == 1
    assert {r.protocol for r in requests if r.service == "bookstore-v1" and r.port in missing} == {
        "http",
        "tcp",
    }


def test_split_root_is_probed_on_its_backends_ports() -> None:
    assert ("bookstore", 9000) in {(r.service, r.port) for r in generate_requests(bookstore())}


def test_protocol_comes_from_the_port() -> None:
    by_port = {(r.service, r.port): r.protocol for r in generate_requests(bookstore())}
    assert by_port[("bookstore", 14001)] == "http"
    assert by_port[("bookstore-v2", 9000)] == "tcp"
    assert by_port[("dns", 53)] == "udp"


def test_sources_are_named_ones_unknown_ones_and_unauthenticated() -> None:
    sources = {r.source for r in generate_requests(bookstore(), unknown_sources=3)}
    assert {BUYER, THIEF, Identity(NS, "bookstore-v1"), Identity(NS, "dns"), None} <= sources
    named = {BUYER, THIEF, Identity(NS, "bookstore-v1"), Identity(NS, "bookstore-v2"), Identity(NS, "dns")}
    unknown = sources - named - {None}
    assert len(unknown) == 3
    assert any(i is not None and i.namespace == NS for i in unknown)
    assert any(i is not None and i.namespace not in (NS, "thieves") for i in unknown)


def test_no_unknown_sources_when_asked_for_none() -> None:
    sources = {r.source for r in generate_requests(bookstore(), unknown_sources=0)}
    assert sources - {None} <= {
        BUYER,
        THIEF,
        Identity(NS, "bookstore-v1"),
        Identity(NS, "bookstore-v2"),
        Identity(NS, "dns"),
    }


def test_route_samples_and_near_misses_are_probed() -> None:
    shapes = {
        (r.method, r.path, r.headers) for r in generate_requests(bookstore()) if r.service == "bookstore-v1"
    }
    alice = (("x-user", "alice"),)
    assert ("GET", "/books/", alice) in shapes  # the sample
    assert ("POST", "/books/", alice) in shapes  # a method not listed
    assert ("GET", "/books/?smi-probe=1", alice) in shapes  # the query string is ignored
    assert ("GET", "/books/", ()) in shapes  # the header missing
    assert any(h and h[0][0] == "x-user" and h[0][1] != "alice" for _, _, h in shapes)  # a wrong value
    assert any(p.startswith("/book") and not p.startswith("/books/") for _, p, _ in shapes)  # a path miss


def test_probes_reach_both_sides_of_every_rule() -> None:
    router = compile(bookstore())
    decisions = [(r, router.decide(r)) for r in generate_requests(bookstore())]
    split_routes = {d.route for r, d in decisions if r.service == "bookstore" and r.protocol == "http"}
    assert split_routes == {"canary", None}
    reads = [d.allowed for r, d in decisions if r.service == "bookstore-v1" and r.source == BUYER]
    assert True in reads and False in reads
    dns = [d.allowed for r, d in decisions if r.service == "dns" and r.source == BUYER]
    assert True in dns and False in dns


def test_cap_keeps_an_evenly_spread_subset() -> None:
    full = generate_requests(bookstore())
    capped = generate_requests(bookstore(), max_requests=50)
    assert len(capped) == 50
    assert set(capped) <= set(full)
    assert {r.service for r in capped} == {r.service for r in full}


def test_negative_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown_sources"):
        generate_requests(bookstore(), unknown_sources=-1)
    with pytest.raises(ValueError, match="max_requests"):
        generate_requests(bookstore(), max_requests=-1)


def test_empty_ir_gives_no_requests() -> None:
    assert generate_requests(IR()) == []


def test_split_backend_unknown_to_the_ir_is_still_probed() -> None:
    ir = IR(splits=(Split(NS, "s", "web", (SplitBackend("web-v9", 1),)),))
    services = {r.service for r in generate_requests(ir)}
    assert services == {"web", "web-v9"}


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(irs())
def test_every_split_root_backend_and_target_service_is_probed_on_every_port(ir: IR) -> None:
    probed = {(r.namespace, r.service, r.port) for r in generate_requests(ir)}
    for s in ir.splits:
        for name in (s.root, *(b.service for b in s.backends)):
            svc = ir.service(s.namespace, name)
            for p in svc.ports if svc is not None else ():
                assert (s.namespace, s.root, p.port) in probed
                assert (s.namespace, name, p.port) in probed
    for t in ir.targets:
        for svc in ir.services:
            if t.destination in ir.identities_of(svc):
                assert {(svc.namespace, svc.name, p.port) for p in svc.ports} <= probed
