"""Version conversion: exact where it can be, loud where it cannot, and never destroying the file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from smi_bridge.build import build
from smi_bridge.convert import ConversionError, convert_paths, parse_targets
from smi_bridge.load import load
from smi_bridge.parse import parse_documents

SMI = [sys.executable, "-m", "smi_bridge.cli"]


def write(tmp_path: Path, text: str, name: str = "in.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return p


def objects(text: str) -> list[dict]:  # type: ignore[type-arg]
    return [d for d in yaml.safe_load_all(text) if d]


def test_one_and_500m_become_two_and_one(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        apiVersion: split.smi-spec.io/v1alpha1
        kind: TrafficSplit
        metadata: {name: s, namespace: ns}
        spec:
          service: web
          backends:
          - {service: v1, weight: 1}
          - {service: v2, weight: 500m}
    """,
    )
    result = convert_paths([p], parse_targets(["split.smi-spec.io/v1alpha4"]))
    (obj,) = objects(result.outputs[str(p)])
    assert obj["apiVersion"] == "split.smi-spec.io/v1alpha4"
    assert [b["weight"] for b in obj["spec"]["backends"]] == [2, 1]
    assert result.changed == 1 and result.refused == 0


def test_destination_port_becomes_a_synthesised_tcproute_rule(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        apiVersion: access.smi-spec.io/v1alpha2
        kind: TrafficTarget
        metadata: {name: t, namespace: ns}
        spec:
          destination: {kind: ServiceAccount, name: api, port: 8080}
          rules: [{kind: HTTPRouteGroup, name: routes}]
          sources: [{kind: ServiceAccount, name: web}]
    """,
    )
    result = convert_paths([p], parse_targets(["access.smi-spec.io/v1alpha3"]))
    target, tcp = objects(result.outputs[str(p)])
    assert "port" not in target["spec"]["destination"]
    assert {"kind": "TCPRoute", "name": "t-port-8080"} in target["spec"]["rules"]
    assert tcp == {
        "apiVersion": "specs.smi-spec.io/v1alpha4",
        "kind": "TCPRoute",
        "metadata": {"name": "t-port-8080", "namespace": "ns"},
        "spec": {"matches": {"ports": [8080]}},
    }
    assert any(d.code == "SMC003" for d in result.diagnostics)


def test_converted_access_keeps_the_same_meaning_in_the_ir(tmp_path: Path) -> None:
    original = write(
        tmp_path,
        """
        apiVersion: specs.smi-spec.io/v1alpha1
        kind: HTTPRouteGroup
        metadata: {name: routes, namespace: ns}
        matches: [{name: m, pathRegex: /metrics, methods: [GET]}]
        ---
        apiVersion: access.smi-spec.io/v1alpha1
        kind: TrafficTarget
        metadata: {name: t, namespace: ns}
        destination: {kind: ServiceAccount, name: api, port: 8080}
        specs: [{kind: HTTPRouteGroup, name: routes, matches: [m]}]
        sources: [{kind: ServiceAccount, name: web}]
    """,
    )
    result = convert_paths(
        [original], parse_targets(["access.smi-spec.io/v1alpha3", "specs.smi-spec.io/v1alpha4"])
    )
    converted = write(tmp_path, result.outputs[str(original)], "out.yaml")

    def target_rules(path: Path) -> list[tuple[str, tuple[int, ...], tuple[str, ...]]]:
        res = parse_documents(load([path]).documents).resources
        (t,) = build(res).ir.targets
        return sorted((r.kind, r.ports, tuple(m.name for m in r.matches)) for r in t.rules)

    assert target_rules(original) == target_rules(converted) == [("http", (), ("m",)), ("tcp", (8080,), ())]


def test_dropping_split_matches_is_refused_unless_allowed(tmp_path: Path) -> None:
    text = """
        apiVersion: split.smi-spec.io/v1alpha4
        kind: TrafficSplit
        metadata: {name: ab, namespace: ns}
        spec:
          service: web
          matches: [{kind: HTTPRouteGroup, name: firefox}]
          backends: [{service: v1, weight: 0}, {service: v2, weight: 100}]
    """
    p = write(tmp_path, text)
    refused = convert_paths([p], parse_targets(["split.smi-spec.io/v1alpha2"]))
    assert refused.refused == 1 and refused.changed == 0
    (lossy,) = [d for d in refused.diagnostics if d.code == "SMC001"]
    assert str(lossy.severity) == "error" and "firefox" in lossy.message
    allowed = convert_paths([p], parse_targets(["split.smi-spec.io/v1alpha2"]), allow_lossy=True)
    (obj,) = objects(allowed.outputs[str(p)])
    assert "matches" not in obj["spec"] and allowed.changed == 1


def test_headers_cannot_go_to_httproutegroup_v1alpha1_silently(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        apiVersion: specs.smi-spec.io/v1alpha4
        kind: HTTPRouteGroup
        metadata: {name: g, namespace: ns}
        spec: {matches: [{name: a, headers: [{x-beta: "true"}]}]}
    """,
    )
    result = convert_paths([p], parse_targets(["specs.smi-spec.io/v1alpha1"]))
    assert result.refused == 1
    assert any("widens" in d.message for d in result.diagnostics)


def test_tcproute_ports_cannot_be_dropped_silently_and_udproute_has_no_other_version(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        apiVersion: specs.smi-spec.io/v1alpha4
        kind: TCPRoute
        metadata: {name: r, namespace: ns}
        spec: {matches: {ports: [5432]}}
        ---
        apiVersion: specs.smi-spec.io/v1alpha4
        kind: UDPRoute
        metadata: {name: u, namespace: ns}
        spec: {matches: {ports: [53]}}
    """,
    )
    result = convert_paths([p], parse_targets(["specs.smi-spec.io/v1alpha3"]))
    assert result.refused == 2
    assert sorted(d.code for d in result.diagnostics if d.severity.name == "ERROR") == ["SMC001", "SMC002"]


def test_httproutegroup_moves_matches_between_top_level_and_spec(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        apiVersion: specs.smi-spec.io/v1alpha2
        kind: HTTPRouteGroup
        metadata: {name: g, namespace: ns}
        matches: [{name: a, pathRegex: /a, headers: {x: "1"}}]
    """,
    )
    up = convert_paths([p], parse_targets(["specs.smi-spec.io/v1alpha4"]))
    (obj,) = objects(up.outputs[str(p)])
    assert "matches" not in obj and obj["spec"]["matches"][0]["headers"] == {"x": "1"}
    q = write(tmp_path, up.outputs[str(p)], "up.yaml")
    down = convert_paths([q], parse_targets(["specs.smi-spec.io/v1alpha2"]))
    (back,) = objects(down.outputs[str(q)])
    assert back == {
        "apiVersion": "specs.smi-spec.io/v1alpha2",
        "kind": "HTTPRouteGroup",
        "metadata": {"name": "g", "namespace": "ns"},
        "matches": [{"name": "a", "pathRegex": "/a", "headers": {"x": "1"}}],
    }


def test_in_place_keeps_comments_and_other_documents(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        # the canary of web
        apiVersion: split.smi-spec.io/v1alpha2
        kind: TrafficSplit
        metadata:
          name: s  # keep me
          namespace: ns
        spec:
          service: web
          backends:
          - service: v1
            weight: 90 # most traffic
          - service: v2
            weight: 10
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: untouched}
    """,
    )
    result = convert_paths([p], parse_targets(["split.smi-spec.io/v1alpha4"]), in_place=True)
    text = p.read_text()
    assert result.changed == 1
    assert "# the canary of web" in text and "# keep me" in text and "# most traffic" in text
    assert "split.smi-spec.io/v1alpha4" in text and "name: untouched" in text
    assert text.index("\nmetadata:") < text.index("\nspec:")


def test_parse_targets_understands_bare_versions_and_rejects_nonsense() -> None:
    # access has no v1alpha4 (it stayed a draft), so a bare v1alpha4 leaves it alone
    assert parse_targets(["v1alpha4"]) == {"specs.smi-spec.io": "v1alpha4", "split.smi-spec.io": "v1alpha4"}
    assert parse_targets(["v1alpha3", "split.smi-spec.io/v1alpha2"])["split.smi-spec.io"] == "v1alpha2"
    for bad in (["v9"], ["nosuch.group/v1alpha1"]):
        with pytest.raises(ConversionError, match="unknown"):
            parse_targets(bad)


def test_cli_convert_exit_codes_and_stdout(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        apiVersion: split.smi-spec.io/v1alpha1
        kind: TrafficSplit
        metadata: {name: s, namespace: ns}
        spec: {service: web, backends: [{service: a, weight: 250m}, {service: b, weight: 750m}]}
    """,
    )
    ok = subprocess.run(
        [*SMI, "convert", "--to-version", "split.smi-spec.io/v1alpha2", str(p)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert [b["weight"] for b in yaml.safe_load(ok.stdout)["spec"]["backends"]] == [1, 3]
    bad = subprocess.run(
        [*SMI, "convert", "--to-version", "v7", str(p)], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "unknown version" in bad.stderr and "Traceback" not in bad.stderr


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=6).filter(any))
def test_integer_weights_survive_a_round_trip_through_v1alpha1(weights: list[int]) -> None:
    from smi_bridge.model.quantity import integer_weights, parse_quantity

    as_quantities = [f"{w}m" for w in weights]
    back = integer_weights([parse_quantity(q) for q in as_quantities])
    g = 0
    import math

    for w in weights:
        g = math.gcd(g, w)
    assert back == [w // g for w in weights]
