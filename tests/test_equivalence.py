"""Equivalence of two IRs: what counts as the same decision, which objects a difference involves, the
rule that says when the lossy report explains it, and the probe requests the comparison decides."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smi_bridge.diagnostics import Diagnostic, ResourceRef, Severity
from smi_bridge.equivalence import compare, equivalence_requests, iter_lines, outcome
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
from smi_bridge.probes import generate_requests
from smi_bridge.semantics import Request, compile
from tests.strategies import irs

NS = "shop"
WEB, API, STRANGER = Identity(NS, "web"), Identity(NS, "api"), Identity("elsewhere", "intruder")


def origin(kind: str, name: str, file: str = "in.yaml", line: int = 1) -> Origin:
    return Origin(kind, NS, name, "v1", file, line)


def service(name: str, sa: str, port: int = 80) -> Service:
    return Service(
        NS, name, ports=(ServicePort(port, "http"),), service_accounts=(sa,), origin=origin("Service", name)
    )


BETA = HTTPMatch(
    "beta", "/api", ("GET",), (HeaderMatch("x-beta", "yes"),), origin("HTTPRouteGroup", "routes")
)


def base_ir(
    *, weights: tuple[int, int] = (90, 10), beta_only: bool = False, sources: tuple[Identity, ...] = (WEB,)
) -> IR:
    split = Split(
        NS,
        "api-canary",
        "api",
        (
            SplitBackend("api-v1", weights[0], origin("TrafficSplit", "api-canary")),
            SplitBackend("api-v2", weights[1], origin("TrafficSplit", "api-canary")),
        ),
        matches=(BETA,) if beta_only else None,
        route_groups=("routes",) if beta_only else (),
        origin=origin("TrafficSplit", "api-canary", line=10),
    )
    target = TrafficTarget(
        NS,
        "api-from-web",
        API,
        sources,
        (AccessRule("http", "routes", (BETA,), origin=origin("TrafficTarget", "api-from-web")),),
        origin=origin("TrafficTarget", "api-from-web", line=20),
    )
    return IR(
        services=(
            service("api", "api"),
            service("api-v1", "api"),
            service("api-v2", "api"),
            service("web", "web"),
        ),
        pods=(Pod(NS, "api-0", service_account="api"), Pod(NS, "web-0", service_account="web")),
        route_groups=(RouteGroup(NS, "routes", (BETA,), origin("HTTPRouteGroup", "routes", line=30)),),
        splits=(split,),
        targets=(target,),
    )


def beta_request(source: Identity | None = WEB) -> Request:
    return Request(source, NS, "api", 80, "http", "GET", "/api/x", (("x-beta", "yes"),))


def note(kind: str, name: str, code: str = "SMT999", severity: Severity = Severity.INFO) -> Diagnostic:
    return Diagnostic(code, severity, f"{kind} {name} changed", resource=ResourceRef("v1", kind, NS, name))


# --- what counts as the same decision -------------------------------------------------------------


def test_weights_compare_as_shares_not_numbers() -> None:
    a, b = base_ir(weights=(90, 10)), base_ir(weights=(9, 1))
    request = beta_request()
    assert outcome(compile(a).decide(request)) == outcome(compile(b).decide(request))
    eq = compare(a, b, generate_requests(a))
    assert eq.equivalent and eq.requests > 0


def test_split_sending_everything_to_the_root_equals_no_split() -> None:
    no_split = replace(base_ir(), splits=())
    to_root = replace(base_ir(), splits=(Split(NS, "noop", "api", (SplitBackend("api", 7),)),))
    assert compare(no_split, to_root, generate_requests(no_split)).equivalent


def test_changed_share_is_a_routing_difference_with_the_split_involved() -> None:
    eq = compare(base_ir(weights=(90, 10)), base_ir(weights=(80, 20)), generate_requests(base_ir()))
    assert eq.groups and all(g.aspects == ("routing",) for g in eq.groups)
    involved = {(o.kind, o.name) for g in eq.groups for o in g.involved}
    assert ("TrafficSplit", "api-canary") in involved
    assert ("TrafficTarget", "api-from-web") not in involved  # access did not change


def test_lost_source_is_an_access_difference_with_the_target_involved() -> None:
    eq = compare(base_ir(), base_ir(sources=(STRANGER,)), [beta_request()])
    assert [g.aspects for g in eq.groups] == [("access",)]
    group = eq.groups[0]
    assert group.before.allowed and not group.after.allowed
    assert ("TrafficTarget", "api-from-web") in {(o.kind, o.name) for o in group.involved}
    assert ("HTTPRouteGroup", "routes") in {(o.kind, o.name) for o in group.involved}


def test_requests_differing_the_same_way_form_one_group_with_a_count() -> None:
    requests = [beta_request(), replace(beta_request(), method="GET", path="/api/other")]
    eq = compare(base_ir(), base_ir(sources=(STRANGER,)), requests)
    assert len(eq.groups) == 1 and eq.groups[0].count == 2 and eq.differing == 2


# --- the rule: when the lossy report explains a difference ------------------------------------------


def test_note_on_the_split_explains_a_routing_difference() -> None:
    eq = compare(
        base_ir(weights=(90, 10)),
        base_ir(weights=(80, 20)),
        generate_requests(base_ir()),
        lossy=[note("TrafficSplit", "api-canary")],
    )
    assert eq.groups and not eq.unexplained()
    assert all(g.explained_by[0].code == "SMT999" for g in eq.groups)


def test_note_on_another_object_explains_nothing() -> None:
    eq = compare(
        base_ir(weights=(90, 10)),
        base_ir(weights=(80, 20)),
        generate_requests(base_ir()),
        lossy=[note("TrafficSplit", "web-canary"), note("TrafficTarget", "api-from-web")],
    )
    assert eq.groups and len(eq.unexplained()) == len(eq.groups)


def test_note_without_a_resource_explains_nothing() -> None:
    anonymous = Diagnostic("SMT999", Severity.WARNING, "something somewhere was not exact")
    eq = compare(base_ir(), base_ir(sources=(STRANGER,)), [beta_request()], lossy=[anonymous])
    assert eq.unexplained()


def test_note_on_a_route_group_the_target_uses_explains_an_access_difference() -> None:
    eq = compare(
        base_ir(),
        base_ir(sources=(STRANGER,)),
        [beta_request()],
        lossy=[note("HTTPRouteGroup", "routes", severity=Severity.WARNING)],
    )
    assert eq.groups and not eq.unexplained()


def test_note_on_the_source_mesh_object_explains_through_the_origin() -> None:
    # an imported IR names the mesh object the split came from; the emitter's note names it too
    vs = Origin("VirtualService", NS, "api", "networking.istio.io/v1", "istio.yaml", 4)
    source = replace(base_ir(), splits=tuple(replace(s, origin=vs) for s in base_ir().splits))
    target = replace(base_ir(weights=(80, 20)), splits=())
    eq = compare(
        source,
        target,
        generate_requests(source),
        lossy=[
            Diagnostic(
                "SMT103", Severity.INFO, "rounded", resource=ResourceRef(vs.api_version, vs.kind, NS, "api")
            )
        ],
    )
    assert eq.groups and not eq.unexplained()
    assert any(o.file == "istio.yaml" and o.line == 4 for g in eq.groups for o in g.involved)


def test_text_names_every_difference_with_an_example_and_its_objects() -> None:
    eq = compare(base_ir(), base_ir(sources=(STRANGER,)), [beta_request()])
    lines = list(iter_lines(eq))
    assert "1 differ in 1 way(s), 1 not named by the lossy report" in lines[0]
    assert lines[1].startswith(
        "- UNEXPLAINED access difference on 1 request(s), e.g. GET /api/x [x-beta: yes]"
    )
    assert "allowed" in lines[2] and "denied" in lines[3]
    assert "TrafficTarget shop/api-from-web (in.yaml:20)" in lines[4]


# --- the requests ----------------------------------------------------------------------------------


def test_probes_cover_named_sources_strangers_and_unauthenticated_callers() -> None:
    requests, generated = equivalence_requests([base_ir()])
    sources = {r.source for r in requests if r.service == "api"}
    assert WEB in sources and None in sources
    assert any(s is not None and s not in (WEB, API) for s in sources)
    assert generated == len(requests)


def test_probes_include_routes_that_only_the_other_ir_has() -> None:
    wide = HTTPMatch("admin", "/admin", ("DELETE",), (), origin("HTTPRouteGroup", "extra"))
    other = replace(
        base_ir(),
        targets=tuple(
            replace(t, rules=(*t.rules, AccessRule("http", "extra", (wide,)))) for t in base_ir().targets
        ),
    )
    requests, _ = equivalence_requests([base_ir(), other])
    assert any(r.path.startswith("/admin") and r.method == "DELETE" for r in requests)
    eq = compare(base_ir(), other, requests)
    assert eq.groups and eq.groups[0].after.allowed


def test_max_requests_thins_evenly_and_keeps_every_destination() -> None:
    all_requests, generated = equivalence_requests([base_ir()])
    few, counted = equivalence_requests([base_ir()], max_requests=20)
    assert counted == generated and len(few) == 20
    assert {r.service for r in few} == {r.service for r in all_requests}


def test_progress_reports_both_phases() -> None:
    calls: list[tuple[str, int, int]] = []
    requests, _ = equivalence_requests([base_ir()], progress=lambda *a: calls.append(a))
    compare(base_ir(), base_ir(), requests, progress=lambda *a: calls.append(a))
    assert calls[-1] == ("decide", len(requests), len(requests))
    assert any(c[0] == "generate" and c[1] == c[2] for c in calls)


def _mutate(ir: IR, choice: int) -> IR:
    """Drop one TrafficTarget or split, or move weight, so that the two IRs may mean different things."""
    if ir.targets and choice % 3 == 0:
        return replace(ir, targets=ir.targets[1:])
    if ir.splits and choice % 3 == 1:
        first = ir.splits[0]
        moved = tuple(replace(b, weight=b.weight + i + 1) for i, b in enumerate(first.backends))
        return replace(ir, splits=(replace(first, backends=moved), *ir.splits[1:]))
    return replace(ir, splits=ir.splits[1:])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(irs(max_namespaces=3), st.integers(0, 2), st.sampled_from(("enforce", "permissive")))
def test_sliced_probes_find_a_difference_whenever_whole_ir_probes_do(ir: IR, choice: int, mode: str) -> None:
    """The per-destination slices lose no case the quadratic whole-IR cross product would catch."""
    other = _mutate(ir, choice)
    whole = list(dict.fromkeys([*generate_requests(ir), *generate_requests(other)]))
    sliced, _ = equivalence_requests([ir, other])
    found_whole = compare(ir, other, whole, access_mode=mode)  # type: ignore[arg-type]
    found_sliced = compare(ir, other, sliced, access_mode=mode)  # type: ignore[arg-type]
    assert found_whole.equivalent == found_sliced.equivalent
    whole_ways = {(g.example.namespace, g.example.service, g.aspects) for g in found_whole.groups}
    sliced_ways = {(g.example.namespace, g.example.service, g.aspects) for g in found_sliced.groups}
    assert whole_ways <= sliced_ways


def _busy_destination() -> IR:
    """One Service whose ServiceAccount six TrafficTargets admit, each a different caller on its own route."""
    callers = [Identity(NS, f"caller-{k}") for k in range(6)]
    targets = tuple(
        TrafficTarget(
            NS,
            f"api-from-caller-{k}",
            API,
            (caller,),
            (AccessRule("http", f"routes-{k}", (HTTPMatch(f"r{k}", f"/v{k}/items", ("POST",)),)),),
        )
        for k, caller in enumerate(callers)
    )
    return IR(services=(service("api", "api"),), targets=targets)


def test_capped_probes_still_pair_every_caller_with_its_own_routes() -> None:
    ir = _busy_destination()
    full, generated = equivalence_requests([ir])
    # a cap under a quarter of the full product: the destination is covered, then sampled
    capped, counted = equivalence_requests([ir], max_requests=len(full) // 5)
    assert counted == generated == len(full) and len(capped) == len(full) // 5
    router = compile(ir)
    for target in ir.targets:
        (caller,) = target.sources
        own = [r for r in capped if r.source == caller and router.decide(r).allowed]
        assert own, f"{caller} is never probed on a route its TrafficTarget allows"
    assert any(r.source is None for r in capped) and any(r.source == API for r in capped)


def test_capped_probes_find_a_lost_caller() -> None:
    ir = _busy_destination()
    narrowed = replace(ir, targets=ir.targets[:-1])
    full, _ = equivalence_requests([ir])
    requests, _ = equivalence_requests([ir, narrowed], max_requests=len(full) // 5)
    eq = compare(ir, narrowed, requests)
    assert [g.example.source for g in eq.groups] == [Identity(NS, "caller-5")]
