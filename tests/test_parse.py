"""Typed parsing: every schema problem is a finding at the exact value, never an exception."""

from __future__ import annotations

import textwrap

from smi_bridge.load import load_bytes
from smi_bridge.parse import Resource, parse_documents


def parse(text: str) -> list[Resource]:
    loaded = load_bytes(textwrap.dedent(text).encode(), "t.yaml")
    assert loaded.diagnostics == []
    return parse_documents(loaded.documents).resources


def codes(resources: list[Resource]) -> list[str]:
    return [d.code for r in resources for d in r.diagnostics]


def test_valid_v1alpha4_split_parses_to_a_model() -> None:
    (res,) = parse("""
        apiVersion: split.smi-spec.io/v1alpha4
        kind: TrafficSplit
        metadata: {name: s, namespace: ns}
        spec: {service: web, backends: [{service: web-v1, weight: 90}, {service: web-v2, weight: 10}]}
    """)
    assert res.model is not None and res.diagnostics == []
    assert (res.group, res.version, res.kind, res.namespace) == (
        "split.smi-spec.io",
        "v1alpha4",
        "TrafficSplit",
        "ns",
    )


def test_string_weight_in_v1alpha2_is_a_schema_error_at_its_line() -> None:
    (res,) = parse("""
        apiVersion: split.smi-spec.io/v1alpha2
        kind: TrafficSplit
        metadata: {name: s}
        spec:
          service: web
          backends:
          - service: web-v1
            weight: "500m"
    """)
    (d,) = res.diagnostics
    assert d.code == "SMB023"
    assert d.path == "spec.backends[0].weight"
    assert d.line == 9 and d.file == "t.yaml"
    assert res.model is None


def test_quantity_weights_are_accepted_in_v1alpha1_and_negative_ones_are_not() -> None:
    ok, bad = parse("""
        apiVersion: split.smi-spec.io/v1alpha1
        kind: TrafficSplit
        metadata: {name: ok}
        spec: {service: web, backends: [{service: a, weight: 500m}, {service: b, weight: 1}]}
        ---
        apiVersion: split.smi-spec.io/v1alpha1
        kind: TrafficSplit
        metadata: {name: bad}
        spec: {service: web, backends: [{service: a, weight: "-500m"}]}
    """)
    assert ok.diagnostics == [] and ok.model is not None
    assert [d.code for d in bad.diagnostics] == ["SMB023"]
    assert "pattern" in bad.diagnostics[0].message or "match" in bad.diagnostics[0].message


def test_unknown_field_is_reported_not_pruned_and_the_rest_is_still_read() -> None:
    (res,) = parse("""
        apiVersion: split.smi-spec.io/v1alpha4
        kind: TrafficSplit
        metadata: {name: s}
        spec: {service: web, backends: [{service: a, weight: 1, wieght: 2}]}
    """)
    assert codes([res]) == ["SMB024"]
    assert res.diagnostics[0].path == "spec.backends[0].wieght"
    assert res.model is not None  # unknown fields alone do not hide the object from translation


def test_top_level_matches_in_httproutegroup_v1alpha3_is_a_shape_mismatch() -> None:
    (res,) = parse("""
        apiVersion: specs.smi-spec.io/v1alpha3
        kind: HTTPRouteGroup
        metadata: {name: ab-test}
        matches:
        - name: firefox-users
          headers: {user-agent: ".*Firefox.*"}
    """)
    found = {d.code: d for d in res.diagnostics}
    assert "SMB025" in found
    assert "v1alpha1" in found["SMB025"].message and "v1alpha2" in found["SMB025"].message
    assert "spec.matches" in found["SMB025"].hint


def test_spec_in_access_v1alpha1_and_port_in_v1alpha3_are_shape_mismatches() -> None:
    v1, v3 = parse("""
        apiVersion: access.smi-spec.io/v1alpha1
        kind: TrafficTarget
        metadata: {name: t}
        destination: {kind: ServiceAccount, name: a}
        spec: {}
        ---
        apiVersion: access.smi-spec.io/v1alpha3
        kind: TrafficTarget
        metadata: {name: t}
        spec:
          destination: {kind: ServiceAccount, name: a, port: 8080}
          rules: [{kind: TCPRoute, name: r}]
          sources: [{kind: ServiceAccount, name: b}]
    """)
    assert "SMB025" in codes([v1])
    assert any(d.code == "SMB025" and d.path == "spec.destination.port" for d in v3.diagnostics)


def test_both_header_wire_forms_are_accepted() -> None:
    res = parse("""
        apiVersion: specs.smi-spec.io/v1alpha4
        kind: HTTPRouteGroup
        metadata: {name: map-form}
        spec: {matches: [{name: a, headers: {user-agent: ".*Android.*", cookie: "x"}}]}
        ---
        apiVersion: specs.smi-spec.io/v1alpha4
        kind: HTTPRouteGroup
        metadata: {name: list-form}
        spec: {matches: [{name: a, headers: [{user-agent: ".*Android.*"}, {cookie: "x"}]}]}
    """)
    assert codes(res) == []


def test_list_form_header_item_with_two_keys_is_an_error() -> None:
    (res,) = parse("""
        apiVersion: specs.smi-spec.io/v1alpha4
        kind: HTTPRouteGroup
        metadata: {name: g}
        spec: {matches: [{name: a, headers: [{user-agent: x, cookie: y}]}]}
    """)
    assert codes([res]) == ["SMB023"]


def test_legacy_spec_group_is_accepted_with_a_warning() -> None:
    (res,) = parse("""
        apiVersion: spec.smi-spec.io/v1alpha1
        kind: HTTPRouteGroup
        metadata: {name: g}
        matches: [{name: a, pathRegex: /x, methods: [GET]}]
    """)
    assert codes([res]) == ["SMB022"]
    assert res.model is not None and res.group == "specs.smi-spec.io"


def test_unknown_version_and_unknown_kind_are_named() -> None:
    version, kind = parse("""
        apiVersion: split.smi-spec.io/v1alpha9
        kind: TrafficSplit
        metadata: {name: s}
        ---
        apiVersion: access.smi-spec.io/v1alpha3
        kind: TrafficAccess
        metadata: {name: s}
    """)
    assert codes([version]) == ["SMB021"] and "v1alpha4" in version.diagnostics[0].hint
    assert codes([kind]) == ["SMB027"]


def test_missing_api_version_is_reported_unless_assumed() -> None:
    loaded = load_bytes(
        b"kind: TrafficSplit\nmetadata: {name: s}\nspec: {service: a, backends: []}\n", "x.yaml"
    )
    (plain,) = parse_documents(loaded.documents).resources
    assert [d.code for d in plain.diagnostics] == ["SMB020"]
    (assumed,) = parse_documents(
        loaded.documents, assume_version={"TrafficSplit": "split.smi-spec.io/v1alpha4"}
    ).resources
    assert assumed.diagnostics == [] and assumed.version == "v1alpha4"


def test_other_kinds_are_counted_and_passed_over() -> None:
    loaded = load_bytes(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", "x.yaml")
    result = parse_documents(loaded.documents)
    assert result.other_kinds == {"ConfigMap": 1}
    assert result.diagnostics == []


def test_ports_out_of_range_are_rejected() -> None:
    (res,) = parse("""
        apiVersion: specs.smi-spec.io/v1alpha4
        kind: TCPRoute
        metadata: {name: r}
        spec: {matches: {ports: [0, 65536, 80]}}
    """)
    assert [d.path for d in res.diagnostics] == ["spec.matches.ports[0]", "spec.matches.ports[1]"]
