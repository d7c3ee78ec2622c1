"""Per-mesh PromQL: what every query must and must not contain, and what a mesh cannot measure."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smi_bridge import ir
from smi_bridge.metrics.kinds import DEPLOYMENT, NAMESPACE, POD, STATEFULSET, TRAFFICSPLIT, resolve_kind
from smi_bridge.metrics.queries import (
    MESHES,
    PodNameParty,
    UnknownMesh,
    Unsupported,
    mesh_queries,
    promql_string,
    regex_literal,
)
from smi_bridge.metrics.window import Window

W = Window(30_000)
SPLIT = ir.Split("shop", "web", "web", (ir.SplitBackend("web-v1", 90), ir.SplitBackend("web-v2", 0)))
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")

# The matcher that pins where a mesh's series are reported from, per series name.
PINNED = {
    "istio_requests_total": ("reporter=",),
    "istio_request_duration_milliseconds_bucket": ("reporter=",),
    "response_total": ('direction="inbound"', 'direction="outbound"'),
    "response_latency_ms_bucket": ('direction="inbound"', 'direction="outbound"'),
    "envoy_http_downstream_rq_xx": ('envoy_http_conn_manager_prefix="public_listener"',),
    "envoy_http_downstream_rq_time_bucket": ('envoy_http_conn_manager_prefix="public_listener"',),
    "envoy_http_rbac_denied": ('envoy_http_conn_manager_prefix="public_listener"',),
}


def every_expression() -> list[tuple[str, str, str]]:
    out = []
    for name, mesh in MESHES.items():
        plans = [
            mesh.resource(DEPLOYMENT, "shop", "web-v1", W),
            mesh.resource(DEPLOYMENT, "shop", None, W),
            mesh.resource(NAMESPACE, None, "shop", W),
            mesh.split_backends(SPLIT, W),
            *mesh.edges(DEPLOYMENT, "shop", "web-v1", W)[0],
        ]
        out += [(name, f"{p.direction}:{q.metric}", q.expr) for p in plans for q in p.queries]
    return out


EXPRESSIONS = every_expression()


@pytest.mark.parametrize(("mesh", "what", "expr"), EXPRESSIONS, ids=[f"{m}-{w}" for m, w, _ in EXPRESSIONS])
def test_every_series_is_pinned_to_one_reporting_side(mesh: str, what: str, expr: str) -> None:
    for metric, matchers in SELECTOR.findall(expr):
        for required in PINNED.get(metric, ()):
            if required.endswith("="):
                assert required in matchers, f"{metric} without {required}"
        options = PINNED.get(metric)
        if options and not options[0].endswith("="):
            assert any(o in matchers for o in options), f"{metric} is not pinned to a side: {matchers}"


@pytest.mark.parametrize(("mesh", "what", "expr"), EXPRESSIONS, ids=[f"{m}-{w}" for m, w, _ in EXPRESSIONS])
def test_no_query_extrapolates(mesh: str, what: str, expr: str) -> None:
    for function in ("increase(", "rate(", "irate(", "delta("):
        assert function not in expr


def test_counts_subtract_the_window_start_and_keep_series_born_or_restarted_inside_it() -> None:
    plan = MESHES["proxy"].resource(DEPLOYMENT, "shop", "web", W)
    success = next(q.expr for q in plan.queries if q.metric == "success_count")
    assert " offset 30s" in success
    assert "min_over_time(" in success and "[30s]) < " in success
    assert " or smi_proxy_requests_total{" in success


def test_latencies_are_converted_to_milliseconds_where_the_mesh_records_seconds() -> None:
    proxy = MESHES["proxy"].resource(DEPLOYMENT, "shop", "web", W).queries[0].expr
    istio = MESHES["istio"].resource(DEPLOYMENT, "shop", "web", W).queries[0].expr
    assert proxy.startswith("histogram_quantile(0.99,") and proxy.endswith(" * 1000")
    assert not istio.endswith(" * 1000")


def test_denied_requests_are_kept_out_of_the_success_count() -> None:
    def success(mesh: str) -> str:
        plan = MESHES[mesh].resource(DEPLOYMENT, "shop", "web", W)
        return next(q.expr for q in plan.queries if q.metric == "success_count")

    assert 'denied!="true"' in success("proxy")
    assert 'response_code!="403"' in success("istio")
    assert "envoy_http_rbac_denied" in success("consul")  # the RBAC 403s are subtracted


@pytest.mark.parametrize("mesh", ["istio", "proxy"])
def test_pod_edges_that_the_mesh_cannot_attribute_are_refused_with_the_reason(mesh: str) -> None:
    with pytest.raises(Unsupported, match="pod"):
        mesh_queries(mesh).edges(POD, "shop", "web-v1-abc", W)


def test_consul_pod_edges_name_the_services_it_called_and_the_pods_that_called_it() -> None:
    plans, notes = MESHES["consul"].edges(POD, "shop", "web-v1-abc", W)
    assert [p.direction for p in plans] == ["from", "to"] and notes == []


def test_linkerd_measures_pod_edges_in_both_directions() -> None:
    plans, notes = MESHES["linkerd"].edges(POD, "shop", "web-v1-abc", W)
    assert [p.direction for p in plans] == ["from", "to"] and not notes


def test_trafficsplits_have_no_edges() -> None:
    with pytest.raises(Unsupported):
        MESHES["istio"].edges(TRAFFICSPLIT, "shop", "web", W)


def test_gateway_api_has_no_metrics_of_its_own() -> None:
    with pytest.raises(UnknownMesh) as caught:
        mesh_queries("gateway-api")
    assert "implements it" in str(caught.value)
    with pytest.raises(UnknownMesh, match="choose one of"):
        mesh_queries("kuma")


def test_split_query_covers_every_backend_including_zero_weight_ones() -> None:
    plan = MESHES["istio"].split_backends(SPLIT, W)
    assert 'destination_service_name=~"web\\\\-v1|web\\\\-v2"' not in plan.queries[0].expr
    assert 'destination_service_name=~"web-v1|web-v2"' in plan.queries[0].expr


@pytest.mark.parametrize(
    ("authority", "matches"),
    [
        ("web", True),
        ("web:8080", True),
        ("web.shop", True),
        ("web.shop.svc", True),
        ("web.shop.svc.cluster.local:8080", True),
        ("web-v1.shop.svc.cluster.local:8080", False),
        ("web.other.svc.cluster.local", False),
        ("webshop", False),
    ],
)
def test_linkerd_split_matches_every_way_a_client_writes_the_root(authority: str, matches: bool) -> None:
    expr = MESHES["linkerd"].split_backends(SPLIT, W).queries[0].expr
    literal = re.search(r'authority=~"((?:[^"\\]|\\.)*)"', expr)
    assert literal is not None
    pattern = literal.group(1).replace("\\\\", "\\")
    assert bool(re.fullmatch(pattern, authority)) is matches


@pytest.mark.parametrize(
    ("kind", "pod", "workload"),
    [
        ("Deployment", "api-84b6d9c7f5-t5n9r", "api"),
        ("Deployment", "web-v1-7d9f8b6c5d-x2x4k", "web-v1"),
        ("StatefulSet", "db-0", "db"),
        ("StatefulSet", "kafka-broker-12", "kafka-broker"),
        ("DaemonSet", "node-agent-x7k2p", "node-agent"),
    ],
)
def test_consul_finds_a_workload_from_its_pod_names(kind: str, pod: str, workload: str) -> None:
    party = PodNameParty(kind)
    pattern = re.search(r'"\$1", "pod", "((?:[^"\\]|\\.)*)"', party.derive("x"))
    assert pattern is not None
    found = re.fullmatch(pattern.group(1), pod)
    assert found is not None and found.group(1) == workload
    selection = party.select("shop", workload, W)
    assert re.fullmatch(selection.matchers[-1][2].replace("\\.", "."), pod)


def test_statefulset_queries_use_the_statefulset_label_on_linkerd() -> None:
    plan = MESHES["linkerd"].resource(STATEFULSET, "shop", "db", W)
    assert 'statefulset="db"' in plan.queries[0].expr
    assert resolve_kind("Statefulset") is STATEFULSET  # the SDK's spelling


@given(st.text())
def test_label_values_are_quoted_so_prometheus_reads_them_back_unchanged(value: str) -> None:
    literal = promql_string(value)
    assert literal.startswith('"') and literal.endswith('"')
    body = literal[1:-1]
    assert re.fullmatch(r'(?:[^"\\\n]|\\[\\"n])*', body)
    assert re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), body) == value


@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters="\n"), min_size=1))
def test_a_name_in_a_regex_matches_only_itself(name: str) -> None:
    pattern = regex_literal(name)
    assert re.fullmatch(pattern, name)
    assert not re.fullmatch(pattern, name + "x")
