"""Choosing among weighted backends and among a Service's endpoints.

``SmoothWeightedRoundRobin`` is nginx's smooth weighted round robin: every pick adds each
backend's weight to its running score, takes the highest score and subtracts the total from it.
Over any run of ``sum(weights)`` picks each backend is chosen exactly ``weight`` times, and the
picks are interleaved (90/10 gives nine of one, one of the other, not ninety then ten), so even
short test runs show the exact ratio. A weight of 0 is never chosen.

``EndpointRing`` rotates over a Service's ready endpoints and skips, for a short back-off, one
whose connection just failed, so that a dead pod costs one failed request, not a share of all of
them; when every endpoint is backing off it tries them anyway, which is how a recovered upstream
comes back without a health checker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SmoothWeightedRoundRobin(Generic[T]):
    """Deterministic weighted choice; not thread-safe (one per event loop)."""

    __slots__ = ("_current", "_items", "_total", "_weights")

    def __init__(self, items: Sequence[tuple[T, int]]) -> None:
        pairs = [(item, weight) for item, weight in items if weight > 0]
        if not pairs:
            raise ValueError("no backend has a positive weight")
        self._items = [item for item, _ in pairs]
        self._weights = [weight for _, weight in pairs]
        self._current = [0] * len(pairs)
        self._total = sum(self._weights)

    def pick(self) -> T:
        current = self._current
        weights = self._weights
        best = 0
        best_score = None
        for i in range(len(current)):
            score = current[i] + weights[i]
            current[i] = score
            if best_score is None or score > best_score:
                best_score = score
                best = i
        current[best] -= self._total
        return self._items[best]


@dataclass(slots=True)
class Upstream:
    """One endpoint address behind a Service port, with what metrics need to know about it."""

    host: str
    port: int
    pod: str
    workload: str
    down_until: float = 0.0
    failures: int = 0
    pool: Any = None  # the data plane's connection pool for this address, found on first use


class EndpointRing:
    """Round robin over a Service port's endpoints with a short back-off after failures."""

    __slots__ = ("_next", "endpoints")

    BASE_BACKOFF = 0.05
    MAX_BACKOFF = 1.0

    def __init__(self, endpoints: Sequence[Upstream]) -> None:
        self.endpoints = list(endpoints)
        self._next = 0

    def pick(self, now: float) -> Upstream | None:
        endpoints = self.endpoints
        n = len(endpoints)
        if n == 0:
            return None
        start = self._next
        for k in range(n):
            candidate = endpoints[(start + k) % n]
            if candidate.down_until <= now:
                self._next = (start + k + 1) % n
                return candidate
        candidate = endpoints[start % n]
        self._next = (start + 1) % n
        return candidate

    def others(self, first: Upstream, now: float) -> list[Upstream]:
        """Endpoints to retry a failed connect on, healthy ones first."""
        rest = [e for e in self.endpoints if e is not first]
        return sorted(rest, key=lambda e: e.down_until > now)

    @classmethod
    def failed(cls, endpoint: Upstream, now: float) -> None:
        endpoint.failures += 1
        backoff = min(cls.MAX_BACKOFF, cls.BASE_BACKOFF * (2 ** min(endpoint.failures - 1, 5)))
        endpoint.down_until = now + backoff

    @staticmethod
    def succeeded(endpoint: Upstream) -> None:
        if endpoint.failures:
            endpoint.failures = 0
            endpoint.down_until = 0.0
