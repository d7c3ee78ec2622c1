"""Kubernetes resource quantities (split v1alpha1 weights) and their exact conversion to integers.

``"1"`` and ``"500m"`` mean 1000:500 milli-units, i.e. the ratio 2:1. The SDKs' conversion took
the raw mantissa and turned that pair into 1:500; here every quantity is parsed exactly as a
Fraction and the set is scaled to the smallest integers with the same ratios.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

QUANTITY_RE = re.compile(
    r"^(?P<sign>[+-]?)(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
# Beyond this a "weight" is not a weight; refusing keeps the arithmetic bounded.
_MAX_EXPONENT = 30


class QuantityError(ValueError):
    pass


def parse_quantity(value: int | float | str) -> Fraction:
    """The exact value of a Kubernetes quantity (``"500m"`` -> 1/2)."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"{value!r} is not a quantity")
        return Fraction(str(value))
    m = QUANTITY_RE.match(value.strip())
    if not m:
        raise QuantityError(f"{value!r} is not a Kubernetes quantity (e.g. 1, 500m, 1.5, 2k)")
    number = Fraction(m["num"])
    suffix = m["suffix"] or ""
    if suffix in _BINARY:
        number *= 2 ** _BINARY[suffix]
    elif suffix[:1] in ("e", "E"):
        exp = int(suffix[1:])
        if abs(exp) > _MAX_EXPONENT:
            raise QuantityError(f"{value!r}: exponent out of range")
        number *= Fraction(10) ** exp
    else:
        number *= Fraction(10) ** _DECIMAL[suffix]
    return -number if m["sign"] == "-" else number


def integer_weights(values: list[Fraction]) -> list[int]:
    """The smallest non-negative integers with exactly the same ratios (all zeros stay zeros)."""
    if any(v < 0 for v in values):
        raise QuantityError("negative weight")
    if not values:
        return []
    lcm_den = 1
    for v in values:
        lcm_den = lcm_den * v.denominator // math.gcd(lcm_den, v.denominator)
    ints = [int(v * lcm_den) for v in values]
    g = 0
    for i in ints:
        g = math.gcd(g, i)
    if g == 0:
        return ints
    return [i // g for i in ints]
