"""The TrafficMetrics wire shape, Kubernetes quantities and Go durations."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from smi_bridge.metrics.model import (
    METRIC_ORDER,
    Backend,
    Edge,
    Metric,
    ObjectMeta,
    ObjectReference,
    TrafficMetrics,
    TrafficMetricsList,
    metrics_in_order,
    parse_wire,
)
from smi_bridge.metrics.quantity import format_quantity, quantity_value
from smi_bridge.metrics.window import Window, WindowError, parse_instant
from tests.conftest import ANCHORS

SMI_METRICS = ANCHORS / "smi" / "metrics" / "examples"
SPEC_DOCS = ANCHORS / "smi" / "examples" / "spec-docs" / "traffic-metrics"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (294, "294"),
        (Decimal("296.875"), "296875m"),
        (73492, "73492"),
        (1000, "1k"),
        (1_500_000, "1500k"),
        (2_000_000, "2M"),
        (Decimal("0.5"), "500m"),
        (Decimal("0.0005"), "0"),  # half-even at 1/1000: a microsecond of a millisecond is dropped
        (Decimal("0.0015"), "2m"),
        (Decimal("-1.25"), "-1250m"),
    ],
)
def test_quantities_are_written_in_canonical_decimal_si_form(value: Decimal | int, text: str) -> None:
    assert format_quantity(value) == text


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_a_quantity_reads_back_as_the_milli_value_it_was_written_from(milli: int) -> None:
    value = Decimal(milli) / 1000
    assert quantity_value(format_quantity(value)) == Fraction(milli, 1000)


@given(st.integers(min_value=0, max_value=10**12))
def test_whole_counts_never_get_a_milli_suffix(count: int) -> None:
    assert not format_quantity(count).endswith("m")
    assert quantity_value(format_quantity(count)) == count


@pytest.mark.parametrize(
    ("text", "go", "promql"),
    [
        ("30s", "30s", "30s"),
        ("1m", "1m0s", "1m"),
        ("1h", "1h0m0s", "1h"),
        ("90s", "1m30s", "90s"),
        ("1.5s", "1.5s", "1500ms"),
        ("1500ms", "1.5s", "1500ms"),
        ("1h30m", "1h30m0s", "90m"),
        ("2m3.25s", "2m3.25s", "123250ms"),
    ],
)
def test_windows_read_and_write_go_durations(text: str, go: str, promql: str) -> None:
    window = Window.parse(text)
    assert (window.go(), window.promql()) == (go, promql)


@given(st.integers(min_value=1000, max_value=10 * 86_400_000))
def test_go_duration_of_a_window_parses_back_to_the_same_window(ms: int) -> None:
    assert Window.parse(Window(ms).go()) == Window(ms)


@pytest.mark.parametrize("text", ["", "30", "abc", "-30s", "500ms", "0s", "1.5", "1d", "3x", "1.0001ms"])
def test_a_window_that_is_no_usable_go_duration_is_refused(text: str) -> None:
    with pytest.raises(WindowError):
        Window.parse(text)


def test_instants_are_rfc3339_or_unix_seconds_rounded_down() -> None:
    assert parse_instant("1700000000.9") == 1_700_000_000
    assert parse_instant("2023-11-14T22:13:20Z") == 1_700_000_000
    assert parse_instant("2023-11-14T23:13:20+01:00") == 1_700_000_000
    with pytest.raises(WindowError):
        parse_instant("yesterday")


def _resource_item() -> TrafficMetrics:
    return TrafficMetrics(
        metadata=ObjectMeta(
            name="linkerd-web",
            namespace="linkerd",
            selfLink="/apis/metrics.smi-spec.io/v1alpha1/namespaces/linkerd/deployments/linkerd-web",
            creationTimestamp="2019-06-17T14:26:22Z",
        ),
        timestamp="2019-06-17T14:26:22Z",
        window="30s",
        resource=ObjectReference(kind="Deployment", namespace="linkerd", name="linkerd-web"),
        edge=Edge(direction="from", side="server"),
        metrics=[
            Metric.of("p99_response_latency", Decimal("296.875")),
            Metric.of("p90_response_latency", Decimal("268.75")),
            Metric.of("p50_response_latency", Decimal("162.5")),
            Metric.of("success_count", 73492),
            Metric.of("failure_count", 0),
        ],
    )


def test_v1alpha1_output_has_the_shape_and_key_order_smi_metrics_served() -> None:
    recorded = json.loads((SMI_METRICS / "smi-metrics-readme-trafficmetrics-deployment-get.json").read_text())
    ours = _resource_item().wire("v1alpha1")
    assert list(ours) == list(recorded)
    assert ours["edge"] == {"direction": "from", "resource": None}
    assert ours["metadata"] == recorded["metadata"]
    assert [m["name"] for m in ours["metrics"]] == [m["name"] for m in recorded["metrics"]]
    # The recorded count is fractional ("73492m": increase() extrapolated); ours is whole.
    assert ours["metrics"][3] == {"name": "success_count", "value": "73492"}
    assert ours["metrics"][0] == {"name": "p99_response_latency", "unit": "ms", "value": "296875m"}


def test_v1alpha2_adds_the_measuring_side_to_the_edge() -> None:
    assert _resource_item().wire("v1alpha2")["edge"] == {
        "direction": "from",
        "side": "server",
        "resource": None,
    }
    assert _resource_item().wire("v1alpha2")["apiVersion"] == "metrics.smi-spec.io/v1alpha2"


def test_a_list_without_items_has_an_empty_items_array_never_null() -> None:
    empty = TrafficMetricsList(resource=ObjectReference(kind="Pod")).wire()
    assert empty["items"] == []


def test_split_items_carry_their_backend_in_both_versions() -> None:
    item = _resource_item().model_copy(update={"backend": Backend(apex="web", name="web-v1", weight=90)})
    for version in ("v1alpha1", "v1alpha2"):
        assert item.wire(version)["backend"] == {"apex": "web", "name": "web-v1", "weight": 90}
    assert "backend" not in _resource_item().wire()


def test_every_metric_is_present_and_zero_when_nothing_was_measured() -> None:
    metrics = metrics_in_order({})
    assert [m.name for m in metrics] == list(METRIC_ORDER)
    assert {m.value for m in metrics} == {"0"}
    assert [m.unit for m in metrics] == ["ms", "ms", "ms", None, None, None]


@pytest.mark.parametrize("path", sorted(SMI_METRICS.glob("*.json")), ids=lambda p: p.name)
def test_responses_smi_metrics_served_read_back(path: object) -> None:
    doc = json.loads(path.read_text())  # type: ignore[attr-defined]
    obj = parse_wire(doc)
    items = obj.items or [] if isinstance(obj, TrafficMetricsList) else [obj]
    assert items and all(i.metric("success_count") is not None for i in items)
    if isinstance(obj, TrafficMetrics):
        assert obj.value("success_count") == Fraction(73492, 1000)
        assert obj.value("p99_response_latency") == Fraction(296875, 1000)


@pytest.mark.parametrize(
    "name",
    [
        "trafficmetrics-v1alpha1-pod-to-pod-edge-client-side.yaml",
        "trafficmetrics-v1alpha1-trafficsplit-backend.yaml",
    ],
)
def test_spec_examples_with_side_and_backend_read_back(name: str) -> None:
    obj = parse_wire(yaml.safe_load((SPEC_DOCS / name).read_text()))
    assert isinstance(obj, TrafficMetrics)
    assert obj.edge is not None and obj.edge.side in ("client", "server")
    # The spec example states 10 milli-seconds: the unit must be combined with the quantity.
    latency = obj.metric("p99_response_latency")
    assert latency is not None and latency.unit == "seconds" and latency.amount == Fraction(1, 100)


def test_smi_metrics_null_items_read_as_an_empty_list() -> None:
    obj = parse_wire(
        {"kind": "TrafficMetricsList", "apiVersion": "metrics.smi-spec.io/v1alpha1", "items": None}
    )
    assert isinstance(obj, TrafficMetricsList) and obj.wire()["items"] == []
