"""Kubernetes quantities as TrafficMetrics writes them: the canonical decimal (``DecimalSI``) form.

smi-metrics stored every value as a milli-quantity and printed it the way apimachinery does, so
clients parse ``value`` as a Quantity (``"296875m"``, ``"1500k"``, ``"2M"``), never as a number.
We keep that wire form, so existing clients keep working, and round to the same precision (1/1000
of the unit: a microsecond for latencies in ms). Counts are whole numbers before they get here.

Parsing reuses ``smi_bridge.model.quantity.parse_quantity`` (exact, as a Fraction).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

from smi_bridge.model.quantity import parse_quantity

_SUFFIX_BY_EXPONENT = {-3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_MILLI = Decimal("0.001")


def to_milli(value: Decimal | int | float) -> Decimal:
    """``value`` rounded half-even to three decimals (the precision a quantity keeps here)."""
    return Decimal(str(value) if isinstance(value, float) else value).quantize(_MILLI, ROUND_HALF_EVEN)


def format_quantity(value: Decimal | int | float) -> str:
    """The canonical DecimalSI string of ``value`` at milli precision (``296.875`` -> ``"296875m"``).

    The mantissa is the smallest integer that, with a suffix whose exponent is a multiple of three,
    states the value exactly: ``1000`` -> ``"1k"``, ``1500000`` -> ``"1500k"``, ``0.5`` -> ``"500m"``.
    """
    milli = int(to_milli(value).scaleb(3))
    if milli == 0:
        return "0"
    sign = "-" if milli < 0 else ""
    mantissa, exponent = abs(milli), -3
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    step = min(exponent - exponent % 3, 18)
    mantissa *= 10 ** (exponent - step)
    return f"{sign}{mantissa}{_SUFFIX_BY_EXPONENT[step]}"


def quantity_value(text: str) -> Fraction:
    """The exact value of a quantity string (``"73492m"`` -> 73492/1000)."""
    return parse_quantity(text)
