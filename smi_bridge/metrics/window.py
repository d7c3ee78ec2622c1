"""The metrics window: parsed from Go duration strings, written back the way Go prints them.

TrafficMetrics says its values cover ``[timestamp - window, timestamp]``. Clients send the window
as a Go duration (smi-metrics' ``?t=5m``) and read it back as one (``"1m0s"``, not ``"1m"``), so
both directions follow Go's ``time.Duration`` syntax. Internally a window is whole milliseconds,
the finest step PromQL ranges take. Windows under one second are refused: with the usual scrape
intervals they hold no sample and every value would be zero for no visible reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

MIN_WINDOW_MS = 1000
_UNIT_MS = {
    "ns": Decimal("0.000001"),
    "us": Decimal("0.001"),
    "µs": Decimal("0.001"),
    "μs": Decimal("0.001"),
    "ms": Decimal(1),
    "s": Decimal(1000),
    "m": Decimal(60_000),
    "h": Decimal(3_600_000),
}
_PART = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)")


class WindowError(ValueError):
    """A window that is not a Go duration of at least one second, in whole milliseconds."""


@dataclass(frozen=True, order=True)
class Window:
    milliseconds: int

    @classmethod
    def parse(cls, text: str) -> Window:
        """``"30s"``, ``"5m"``, ``"1h30m"``, ``"1.5s"``, ``"1500ms"`` (Go syntax; no sign, no days)."""
        source = text.strip()
        if not source:
            raise WindowError("empty window (use a Go duration such as 30s, 5m or 1h30m)")
        total = Decimal(0)
        pos = 0
        while pos < len(source):
            m = _PART.match(source, pos)
            if not m or m.group(1) in ("", "."):
                raise WindowError(f"{text!r} is not a Go duration (use e.g. 30s, 5m, 1h30m, 1500ms)")
            try:
                total += Decimal(m.group(1)) * _UNIT_MS[m.group(2)]
            except InvalidOperation:
                raise WindowError(f"{text!r} is not a Go duration") from None
            pos = m.end()
        if total != total.to_integral_value():
            raise WindowError(f"{text!r} is finer than a millisecond, which PromQL ranges cannot express")
        ms = int(total)
        if ms < MIN_WINDOW_MS:
            raise WindowError(f"window {text!r} is shorter than 1s; it would hold no scraped sample")
        return cls(ms)

    @property
    def seconds(self) -> float:
        return self.milliseconds / 1000

    def go(self) -> str:
        """Go's ``Duration.String()``: ``"30s"``, ``"1m0s"``, ``"1h0m0s"``, ``"1.5s"``, ``"500ms"``."""
        ms = self.milliseconds
        if ms == 0:
            return "0s"
        if ms < 1000:
            return f"{ms}ms"
        hours, rest = divmod(ms, 3_600_000)
        minutes, rest = divmod(rest, 60_000)
        seconds = f"{Decimal(rest) / 1000:f}"
        if "." in seconds:
            seconds = seconds.rstrip("0").rstrip(".")
        out = ""
        if hours:
            out += f"{hours}h"
        if hours or minutes:
            out += f"{minutes}m"
        return f"{out}{seconds}s"

    def promql(self) -> str:
        """The range/offset literal: the largest unit that states the window exactly."""
        ms = self.milliseconds
        for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
            if ms % size == 0:
                return f"{ms // size}{unit}"
        return f"{ms}ms"

    def __str__(self) -> str:
        return self.go()


DEFAULT_WINDOW = Window(30_000)


def parse_instant(text: str) -> int:
    """The end of a window: RFC 3339 (``2024-05-01T12:00:00Z``) or Unix seconds, as a whole second."""
    try:
        return int(float(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise WindowError(f"{text!r} is neither an RFC 3339 time nor Unix seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
