"""Smooth weighted round robin and the endpoint ring."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.balance import EndpointRing, SmoothWeightedRoundRobin, Upstream


@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=6), st.integers(0, 200))
def test_any_window_of_total_weight_picks_is_exact(weights: list[int], offset: int) -> None:
    if sum(weights) == 0:
        return
    wrr = SmoothWeightedRoundRobin(list(enumerate(weights)))
    for _ in range(offset):
        wrr.pick()
    total = sum(weights)
    counts = Counter(wrr.pick() for _ in range(total))
    assert counts == Counter({i: w for i, w in enumerate(weights) if w > 0})


def test_zero_weight_backend_gets_no_traffic() -> None:
    wrr = SmoothWeightedRoundRobin([("v1", 100), ("v2", 0)])
    assert {wrr.pick() for _ in range(1000)} == {"v1"}


def test_ninety_ten_is_interleaved_not_bunched() -> None:
    wrr = SmoothWeightedRoundRobin([("v1", 90), ("v2", 10)])
    picks = [wrr.pick() for _ in range(100)]
    # Every run of 10 consecutive picks holds exactly one v2.
    for start in range(0, 100, 10):
        assert picks[start : start + 10].count("v2") == 1


def test_all_zero_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="positive weight"):
        SmoothWeightedRoundRobin([("a", 0), ("b", 0)])


def _ring(n: int) -> EndpointRing:
    return EndpointRing([Upstream(f"127.0.10.{i}", 80, f"pod-{i}", "w") for i in range(n)])


def test_ring_rotates_over_endpoints() -> None:
    ring = _ring(3)
    assert [ring.pick(0.0).pod for _ in range(6)] == ["pod-0", "pod-1", "pod-2"] * 2  # type: ignore[union-attr]


def test_failed_endpoint_is_skipped_while_backing_off_and_returns_after() -> None:
    ring = _ring(2)
    dead = ring.endpoints[0]
    EndpointRing.failed(dead, now=10.0)
    assert {ring.pick(10.01).pod for _ in range(4)} == {"pod-1"}  # type: ignore[union-attr]
    later = dead.down_until + 0.001
    assert "pod-0" in {ring.pick(later).pod for _ in range(2)}  # type: ignore[union-attr]
    EndpointRing.succeeded(dead)
    assert dead.down_until == 0.0 and dead.failures == 0


def test_when_every_endpoint_is_backing_off_they_are_tried_anyway() -> None:
    ring = _ring(1)
    EndpointRing.failed(ring.endpoints[0], now=5.0)
    chosen = ring.pick(5.0)
    assert chosen is not None and chosen.pod == "pod-0"


def test_empty_ring_has_no_endpoint() -> None:
    assert _ring(0).pick(0.0) is None
