"""IR -> SMI manifests (``smi-bridge import``): the shape of each version, what older versions cannot
say, and that the output lints clean and builds back into the same meaning."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import pytest
import yaml

from backends.base import GENERATOR_ANNOTATION, SOURCE_ANNOTATION, Options
from smi_bridge.build import build
from smi_bridge.diagnostics import Severity
from smi_bridge.emit_smi import SmiVersions, VersionError, anchored_header, emit_smi
from smi_bridge.equivalence import compare, equivalence_requests
from smi_bridge.ir import (
    IR,
    AccessRule,
    HeaderMatch,
    HTTPMatch,
    Identity,
    Origin,
    PortRoute,
    RouteGroup,
    Service,
    ServicePort,
    Split,
    SplitBackend,
    TrafficTarget,
)
from smi_bridge.lint.engine import lint
from smi_bridge.load import load_bytes
from smi_bridge.parse import parse_documents
from smi_bridge.regex import compile_header
from tests.translate_cases import cases

NS = "shop"
WEB, API, DB = Identity(NS, "web"), Identity(NS, "api"), Identity(NS, "db")


def o(kind: str, name: str) -> Origin:
    return Origin(kind, NS, name, "v1", "mesh.yaml", 3)


BETA = HTTPMatch(
    "beta", "/api", ("GET", "POST"), (HeaderMatch("x-beta", "yes"),), o("HTTPRouteGroup", "routes")
)
METRICS = HTTPMatch("metrics", "/metrics$", ("GET",), (), o("HTTPRouteGroup", "routes"))
ROUTES = RouteGroup(NS, "routes", (BETA, METRICS), o("HTTPRouteGroup", "routes"))


def shop(*, split_matches: bool = False, tcp_ports: tuple[int, ...] = (5432,), udp: bool = False) -> IR:
    rules = [AccessRule("tcp", "pg", ports=tcp_ports, origin=o("TrafficTarget", "db-from-api"))]
    if udp:
        rules.append(AccessRule("udp", "dns", ports=(53,), origin=o("TrafficTarget", "db-from-api")))
    return IR(
        services=(
            Service(NS, "api", ports=(ServicePort(80, "http"),), service_accounts=("api",)),
            Service(NS, "api-v1", ports=(ServicePort(80, "http"),), service_accounts=("api",)),
            Service(NS, "api-v2", ports=(ServicePort(80, "http"),), service_accounts=("api",)),
            Service(
                NS,
                "db",
                ports=(ServicePort(5432, "tcp-pg"), ServicePort(53, "dns", protocol="UDP")),
                service_accounts=("db",),
            ),
            Service(NS, "web", ports=(ServicePort(80, "http"),), service_accounts=("web",)),
        ),
        route_groups=(ROUTES,),
        port_routes=(PortRoute(NS, "pg", "tcp", tcp_ports, o("TCPRoute", "pg")),),
        splits=(
            Split(
                NS,
                "api-canary",
                "api",
                (SplitBackend("api-v1", 3), SplitBackend("api-v2", 1)),
                matches=(BETA, METRICS) if split_matches else None,
                route_groups=("routes",) if split_matches else (),
                origin=o("VirtualService", "api"),
            ),
        ),
        targets=(
            TrafficTarget(
                NS,
                "api-from-web",
                API,
                (WEB,),
                (AccessRule("http", "routes", (BETA,), origin=o("AuthorizationPolicy", "api")),),
                origin=o("AuthorizationPolicy", "api"),
            ),
            TrafficTarget(NS, "db-from-api", DB, (API,), tuple(rules), origin=o("AuthorizationPolicy", "db")),
        ),
    )


def by_kind(objects: Sequence[Mapping[str, Any]], kind: str) -> dict[str, Mapping[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def text(objects: Sequence[Mapping[str, Any]]) -> str:
    return yaml.safe_dump_all(list(objects), sort_keys=False)


def read_back(ir: IR, objects: Sequence[Mapping[str, Any]]) -> IR:
    built = build(parse_documents(load_bytes(text(objects).encode(), "out.yaml").documents).resources)
    return replace(built.ir, services=ir.services, pods=ir.pods)


def codes(diagnostics: Sequence[Any]) -> set[str]:
    return {d.code for d in diagnostics}


# --- versions ---------------------------------------------------------------------------------------


def test_versions_parse_from_the_flag_and_default_to_what_the_crds_serve() -> None:
    assert SmiVersions.parse("") == SmiVersions("v1alpha4", "v1alpha3", "v1alpha4")
    assert SmiVersions.parse("split=v1alpha1, specs=v1alpha2") == SmiVersions(
        "v1alpha1", "v1alpha3", "v1alpha2"
    )
    assert str(SmiVersions()) == "split=v1alpha4,access=v1alpha3,specs=v1alpha4"


@pytest.mark.parametrize("bad", ["split", "split=v2", "access=v1alpha4", "metrics=v1alpha1", "v1alpha4"])
def test_unknown_group_or_version_is_a_clear_error(bad: str) -> None:
    with pytest.raises(VersionError, match=r"split|access|specs"):
        SmiVersions.parse(bad)


# --- shapes -----------------------------------------------------------------------------------------


def test_default_versions_write_spec_shapes_with_list_form_headers_and_annotations() -> None:
    em = emit_smi(shop(split_matches=True))
    split = by_kind(em.objects, "TrafficSplit")["api-canary"]
    assert split["apiVersion"] == "split.smi-spec.io/v1alpha4"
    assert split["spec"] == {
        "service": "api",
        "backends": [{"service": "api-v1", "weight": 3}, {"service": "api-v2", "weight": 1}],
        "matches": [{"kind": "HTTPRouteGroup", "name": "routes"}],
    }
    group = by_kind(em.objects, "HTTPRouteGroup")["routes"]
    assert group["spec"]["matches"][0] == {
        "name": "beta",
        "pathRegex": "/api",
        "methods": ["GET", "POST"],
        "headers": [{"x-beta": "^(?:yes)$"}],
    }
    target = by_kind(em.objects, "TrafficTarget")["api-from-web"]
    assert target["apiVersion"] == "access.smi-spec.io/v1alpha3"
    assert target["spec"]["rules"] == [{"kind": "HTTPRouteGroup", "name": "routes", "matches": ["beta"]}]
    assert by_kind(em.objects, "TCPRoute")["pg"]["spec"] == {"matches": {"ports": [5432]}}
    for obj in em.objects:
        annotations = obj["metadata"]["annotations"]
        assert annotations[GENERATOR_ANNOTATION].startswith("smi-bridge-")
    assert "VirtualService/shop/api" in split["metadata"]["annotations"][SOURCE_ANNOTATION]
    assert not [d for d in em.diagnostics if d.severity >= Severity.WARNING]


def test_map_form_headers_on_request() -> None:
    em = emit_smi(shop(), headers="map")
    assert by_kind(em.objects, "HTTPRouteGroup")["routes"]["spec"]["matches"][0]["headers"] == {
        "x-beta": "^(?:yes)$"
    }


@pytest.mark.parametrize(
    "regex", ["yes", "a|b", "(?i)beta", "^x", "x$", ".*Firefox.*", "^(.*?;)?(type=insider)(;.*)?$"]
)
def test_header_anchoring_keeps_the_full_match_meaning(regex: str) -> None:
    anchored = anchored_header(regex)
    for value in ("yes", "a", "b", "BETA", "beta", "x", "xx", "Mozilla Firefox 1", "type=insider", "ab", ""):
        assert (compile_header(regex).fullmatch(value) is None) == (
            compile_header(anchored).fullmatch(value) is None
        )


def test_v1alpha1_split_weights_are_integers_and_targets_are_top_level() -> None:
    em = emit_smi(shop(), SmiVersions("v1alpha1", "v1alpha1", "v1alpha2"))
    split = by_kind(em.objects, "TrafficSplit")["api-canary"]
    assert split["spec"]["backends"] == [
        {"service": "api-v1", "weight": 3},
        {"service": "api-v2", "weight": 1},
    ]
    assert all(isinstance(b["weight"], int) for b in split["spec"]["backends"])
    target = by_kind(em.objects, "TrafficTarget")["db-from-api"]
    assert "spec" not in target and target["destination"] == {
        "kind": "ServiceAccount",
        "name": "db",
        "namespace": NS,
        "port": 5432,
    }
    assert target["specs"] == [] and target["sources"] == [
        {"kind": "ServiceAccount", "name": "api", "namespace": NS}
    ]
    assert "matches" in by_kind(em.objects, "HTTPRouteGroup")["routes"]  # top level, no spec
    assert "SMX606" in codes(em.diagnostics)


def test_several_tcp_ports_at_access_v1alpha2_narrow_to_one_and_say_so() -> None:
    em = emit_smi(shop(tcp_ports=(5432, 5433)), SmiVersions(access="v1alpha2", specs="v1alpha3"))
    target = by_kind(em.objects, "TrafficTarget")["db-from-api"]
    assert target["spec"]["destination"]["port"] == 5432
    narrowed = [d for d in em.diagnostics if d.code == "SMX607"]
    assert narrowed and narrowed[0].severity == Severity.ERROR and "5433" in narrowed[0].message


def test_split_matches_are_refused_below_split_v1alpha3() -> None:
    em = emit_smi(shop(split_matches=True), SmiVersions(split="v1alpha2"))
    assert "api-canary" not in by_kind(em.objects, "TrafficSplit")
    refused = [d for d in em.diagnostics if d.code == "SMX600"]
    assert refused and refused[0].resource.kind == "VirtualService" and refused[0].file == "mesh.yaml"


def test_headers_at_specs_v1alpha1_leave_the_route_out_rather_than_widen_it() -> None:
    em = emit_smi(shop(), SmiVersions("v1alpha2", "v1alpha1", "v1alpha1"))
    routes = by_kind(em.objects, "HTTPRouteGroup")["routes"]["matches"]
    assert [r["name"] for r in routes] == ["metrics"]
    assert routes[0] == {"name": "metrics", "pathRegex": "/metrics$", "methods": ["GET"]}
    assert "SMX603" in codes(em.diagnostics)


def test_udp_rules_need_access_v1alpha3_and_specs_v1alpha4() -> None:
    assert "UDPRoute" in {o["kind"] for o in emit_smi(shop(udp=True)).objects}
    em = emit_smi(shop(udp=True), SmiVersions(access="v1alpha2", specs="v1alpha3"))
    assert "UDPRoute" not in {o["kind"] for o in em.objects}
    assert "SMX608" in codes(em.diagnostics)


def test_target_without_sources_is_left_out_when_that_changes_nothing() -> None:
    ir = replace(shop(), targets=(*shop().targets, TrafficTarget(NS, "nobody", WEB, (), ())))
    em = emit_smi(ir)
    assert "nobody" not in by_kind(em.objects, "TrafficTarget") and "SMX609" in codes(em.diagnostics)
    permissive = emit_smi(ir, options=Options(access_mode="permissive"))
    assert "SMX610" in codes(permissive.diagnostics)  # there it kept web deny-by-default: reported


def test_duplicate_route_names_are_made_unique_and_references_follow() -> None:
    twin = replace(METRICS, name="beta", path_regex="/other$")
    group = RouteGroup(NS, "routes", (BETA, twin))
    target = TrafficTarget(NS, "api-from-web", API, (WEB,), (AccessRule("http", "routes", (twin,)),))
    ir = replace(shop(), route_groups=(group,), targets=(target,), splits=())
    em = emit_smi(ir)
    names = [m["name"] for m in by_kind(em.objects, "HTTPRouteGroup")["routes"]["spec"]["matches"]]
    assert names == ["beta", "beta-2"]
    assert by_kind(em.objects, "TrafficTarget")["api-from-web"]["spec"]["rules"][0]["matches"] == ["beta-2"]
    assert "SMX612" in codes(em.diagnostics)


def test_rule_routes_that_are_no_group_of_the_ir_get_a_group_of_their_own() -> None:
    target = TrafficTarget(NS, "api-from-web", API, (WEB,), (AccessRule("http", "from-istio", (BETA,)),))
    em = emit_smi(replace(shop(), route_groups=(), targets=(target,), splits=()))
    rule = by_kind(em.objects, "TrafficTarget")["api-from-web"]["spec"]["rules"][0]
    assert rule == {"kind": "HTTPRouteGroup", "name": "api-from-web-from-istio"}
    assert by_kind(em.objects, "HTTPRouteGroup")[rule["name"]]["spec"]["matches"][0]["name"] == "beta"


# --- the output means what the IR meant, and lints clean ---------------------------------------------


VERSION_CHOICES = [
    SmiVersions(),
    SmiVersions("v1alpha3", "v1alpha3", "v1alpha4"),
    SmiVersions("v1alpha2", "v1alpha2", "v1alpha3"),
    SmiVersions("v1alpha1", "v1alpha1", "v1alpha1"),
]


@pytest.mark.parametrize("versions", VERSION_CHOICES, ids=str)
@pytest.mark.parametrize(
    "ir",
    [shop(), shop(split_matches=True), shop(udp=True, tcp_ports=(5432, 5433))],
    ids=["shop", "split-matches", "udp-two-ports"],
)
def test_output_builds_back_deciding_alike_or_as_reported(ir: IR, versions: SmiVersions) -> None:
    em = emit_smi(ir, versions)
    back = read_back(ir, em.objects)
    requests, _ = equivalence_requests([ir, back])
    eq = compare(ir, back, requests, lossy=em.diagnostics)
    assert not eq.unexplained()
    if versions == SmiVersions():
        assert eq.equivalent


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_every_translate_fixture_imports_to_smi_that_lints_without_errors(case: Any) -> None:
    built, source_findings = case.build()
    em = emit_smi(built.ir, options=case.options)
    report = lint(load_bytes(text(em.objects).encode(), "imported.yaml"))
    errors = [f"{d.code} {d.message}" for d in report.diagnostics if d.severity >= Severity.ERROR]
    assert errors == []
    # warnings only where the input itself had them (a root listed as its own backend, ...)
    source_warning_codes = {d.code for d in source_findings}
    new = [
        f"{d.code} {d.message}"
        for d in report.diagnostics
        if d.severity == Severity.WARNING
        and d.code not in source_warning_codes | {"SMB033", "SMB034", "SMB037"}
    ]
    assert new == []
