"""TrafficSplit rules: weights, the kinds ``matches`` may name, and backend names.

Weights: v1alpha1 weights are Kubernetes quantities, v1alpha2+ weights are integers >= 0. The
models reject anything else with a generic schema error; the rules here replace it with the specific
case and how to fix it. Two v1alpha1 notes matter for portability: quantities beyond plain integers
and milli-units (``1.5``, ``1k``, ``1Ki``) are read differently by different meshes, and the SMI SDK
conversion webhooks read a quantity's mantissa without its scale, so mixed scales (``1`` and
``500m``) come out as 1:500 instead of 2:1 once a cluster converts the object.

The all-zero, self-backend, duplicate-backend, root-form and two-splits-on-one-root rules need
reference resolution and live in ``smi_bridge.build``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

from smi_bridge.diagnostics import Check, Severity
from smi_bridge.lint.rules.base import Finding, Rule, finding, is_int, mapping, refinement, sequence, shown
from smi_bridge.model import split
from smi_bridge.model.quantity import QUANTITY_RE, QuantityError, integer_weights, parse_quantity
from smi_bridge.parse import Resource

NEGATIVE_WEIGHT = Check("SMB050", Severity.ERROR, "TrafficSplit backend weight is negative")
NON_INTEGER_WEIGHT = Check("SMB051", Severity.ERROR, "TrafficSplit v1alpha2+ weight is not an integer")
BAD_QUANTITY = Check("SMB052", Severity.ERROR, "TrafficSplit v1alpha1 weight is not a Kubernetes quantity")
UNUSUAL_QUANTITY = Check(
    "SMB053", Severity.INFO, "v1alpha1 weight is a quantity other than a plain integer or milli-units (m)"
)
SDK_MISREAD = Check(
    "SMB054",
    Severity.WARNING,
    "v1alpha1 weights mix scales that the SMI SDK conversion reads as another ratio",
)
MATCH_KIND = Check("SMB055", Severity.ERROR, "TrafficSplit matches[] names a kind other than HTTPRouteGroup")
BACKEND_NAME = Check("SMB056", Severity.ERROR, "TrafficSplit backend is not the name of a Service")

CHECKS: tuple[Check, ...] = (
    NEGATIVE_WEIGHT,
    NON_INTEGER_WEIGHT,
    BAD_QUANTITY,
    UNUSUAL_QUANTITY,
    SDK_MISREAD,
    MATCH_KIND,
    BACKEND_NAME,
)

_KIND = ((split.GROUP, "TrafficSplit"),)
_PLAIN_OR_MILLI = re.compile(r"[0-9]+m?")
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_CONVERT_HINT = (
    "quantities such as '500m' need split.smi-spec.io/v1alpha1; `smi-bridge convert --to-version "
    "split.smi-spec.io/v1alpha4` turns v1alpha1 quantities into exact integers"
)


def _backends(res: Resource) -> Iterator[tuple[int, dict[str, Any]]]:
    spec = mapping(res.obj.get("spec"))
    for i, backend in enumerate((sequence(spec.get("backends")) if spec else None) or ()):
        if isinstance(backend, dict):
            yield i, backend


def integer_weight_values(res: Resource) -> Iterator[Finding]:
    """v1alpha2+: the model refused a weight; say which case it is."""
    if res.version == "v1alpha1":
        return
    for i, backend in _backends(res):
        if "weight" not in backend:
            continue  # "weight is required" stays the model's finding
        w = backend["weight"]
        path = ("spec", "backends", i, "weight")
        if is_int(w):
            if w < 0:
                yield refinement(
                    res,
                    NEGATIVE_WEIGHT,
                    f"weight {w} of backend {shown(backend.get('service'))} is negative",
                    path,
                    hint="weights are relative integers >= 0; 0 sends no traffic to that backend",
                )
            continue
        if isinstance(w, str) and _is_quantity(w):
            hint = _CONVERT_HINT
        elif isinstance(w, float):
            hint = (
                "weights are relative integers: scale every weight by the same factor (0.5 and 1 -> 1 and 2)"
            )
        else:
            hint = "write a whole number such as 50 (unquoted)"
        yield refinement(
            res,
            NON_INTEGER_WEIGHT,
            f"weight {shown(w)} is not an integer (TrafficSplit {res.version} weights are integers >= 0)",
            path,
            hint=hint,
        )


def _is_quantity(text: str) -> bool:
    try:
        parse_quantity(text)
    except QuantityError:
        return False
    return True


def quantity_weights(res: Resource) -> Iterator[Finding]:
    """v1alpha1: quantities that are not quantities, negative, unusual, or misread by the SDK."""
    if res.version != "v1alpha1":
        return
    parsed: list[tuple[Any, Fraction | None]] = []  # value None: a plain or milli weight, read when needed
    for i, backend in _backends(res):
        if "weight" not in backend:
            continue
        w = backend["weight"]
        path = ("spec", "backends", i, "weight")
        # the common forms (50, "50", "500m") need no exact arithmetic unless the scales differ
        if (is_int(w) and w >= 0) or (isinstance(w, str) and _PLAIN_OR_MILLI.fullmatch(w)):
            parsed.append((w, None))
            continue
        if is_int(w) or isinstance(w, str):
            try:
                value = parse_quantity(w)
            except QuantityError as exc:
                yield refinement(
                    res,
                    BAD_QUANTITY,
                    f"weight {exc}",
                    path,
                    hint="a weight is a number with an optional suffix, e.g. 1, 500m, 1500m",
                )
                continue
        elif isinstance(w, float):
            yield refinement(
                res,
                BAD_QUANTITY,
                f"weight {w!r} is a YAML float, not a quantity",
                path,
                hint=f"write it as a quoted quantity such as '{_milli(w)}'",
            )
            continue
        else:
            yield refinement(
                res,
                BAD_QUANTITY,
                f"weight {shown(w)} is not a Kubernetes quantity",
                path,
                hint="e.g. 1, 500m, 1500m",
            )
            continue
        if value < 0:
            yield refinement(
                res,
                NEGATIVE_WEIGHT,
                f"weight {shown(w)} is negative",
                path,
                hint="weights are relative quantities >= 0; 0 sends no traffic to that backend",
            )
            continue
        if not _PLAIN_OR_MILLI.fullmatch(str(w).strip()):
            yield finding(
                res,
                UNUSUAL_QUANTITY,
                f"weight {shown(w)} = {_decimal(value)}: only plain integers and milli-units read the same in every mesh",
                path,
                hint=f"write {_milli_text(value)} (or convert to split v1alpha2+ integer weights)",
            )
        parsed.append((w, value))
    yield from _sdk_misread(res, parsed)


def _sdk_misread(res: Resource, parsed: list[tuple[Any, Fraction | None]]) -> Iterator[Finding]:
    if len(parsed) < 2:
        return
    mantissas = [_mantissa(w) for w, _ in parsed]
    # The SDK keeps each mantissa and drops its scale; weights of one scale keep their ratio.
    scales = {_scale(w) for (w, _), m in zip(parsed, mantissas, strict=True) if m}
    if len(scales) <= 1 or any(m is None for m in mantissas):
        return
    exact = integer_weights([v if v is not None else parse_quantity(w) for w, v in parsed])
    sdk = integer_weights([Fraction(m) for m in mantissas if m is not None])
    if exact != sdk:
        yield finding(
            res,
            SDK_MISREAD,
            f"weights {', '.join(shown(w) for w, _ in parsed)} mean {':'.join(map(str, exact))}, but the SMI SDK "
            f"conversion (smi-sdk-go, smi-controller-sdk webhooks) reads them as {':'.join(map(str, sdk))}",
            ("spec", "backends"),
            hint="write every weight at one scale (e.g. 1000m and 500m), or move to split v1alpha2+ integers "
            "with `smi-bridge convert`",
        )


def _scale(w: Any) -> tuple[str, int]:
    """The suffix and the number of decimals: what a Quantity's scale is made of."""
    if is_int(w):
        return ("", 0)
    m = QUANTITY_RE.match(str(w).strip())
    if m is None:
        return ("?", 0)
    _, _, decimals = m["num"].partition(".")
    return (m["suffix"] or "", len(decimals))


def _mantissa(w: Any) -> int | None:
    """The unscaled digits a Kubernetes Quantity keeps (``500m`` -> 500, ``1.5`` -> 15, ``1k`` -> 1)."""
    if is_int(w):
        return abs(int(w))
    m = QUANTITY_RE.match(str(w).strip())
    if m is None:
        return None
    suffix = m["suffix"] or ""
    if suffix.endswith("i"):
        return None  # binary suffixes are stored scaled; no misreading to explain
    digits = m["num"].replace(".", "").lstrip("0")
    return int(digits) if digits else 0


def _decimal(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):g}"


def _milli_text(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    milli = value * 1000
    if milli.denominator == 1:
        return f"'{milli.numerator}m'"
    return "integers with the same ratio"


def _milli(value: float) -> str:
    if not math.isfinite(value):
        return "500m"
    milli = Fraction(str(value)) * 1000
    return f"{milli.numerator}m" if milli.denominator == 1 else str(value)


def match_kinds(res: Resource) -> Iterator[Finding]:
    spec = mapping(res.obj.get("spec"))
    matches = sequence(spec.get("matches")) if spec else None
    if not matches or res.version in ("v1alpha1", "v1alpha2"):
        return  # matches on v1alpha1/v1alpha2 is parse's shape finding (SMB025)
    for i, ref in enumerate(matches):
        if not isinstance(ref, dict) or "kind" not in ref or ref["kind"] == "HTTPRouteGroup":
            continue
        kind = ref["kind"]
        hint = "a split can only narrow by HTTP routes: write kind: HTTPRouteGroup"
        if isinstance(kind, str) and kind.lower() == "httproutegroup":
            hint = "kinds are case-sensitive: write HTTPRouteGroup"
        elif kind in ("TCPRoute", "UDPRoute"):
            hint = f"{kind} cannot narrow a split (ports come from the Services); list only HTTPRouteGroups"
        yield refinement(
            res,
            MATCH_KIND,
            f"matches[{i}].kind {shown(kind)} is not HTTPRouteGroup",
            ("spec", "matches", i, "kind"),
            hint=hint,
        )


def backend_names(res: Resource) -> Iterator[Finding]:
    namespace = res.namespace
    for i, backend in _backends(res):
        name = backend.get("service")
        if not isinstance(name, str) or not name or (len(name) <= 63 and _DNS1035.fullmatch(name)):
            continue
        head = name.split(".", 1)[0]
        if "." in name and _DNS1035.fullmatch(head):
            message = f"backend {name!r} is a qualified name; backends are Services of the split's namespace"
            hint = f"write {head!r} (a Service in namespace {namespace!r})"
        else:
            message = f"backend {name!r} is not a valid Service name"
            hint = "Service names are DNS-1035 labels: lower-case letters, digits and '-', starting with a letter, at most 63"
        yield finding(res, BACKEND_NAME, message, ("spec", "backends", i, "service"), hint=hint)


RULES: tuple[Rule, ...] = (
    Rule(
        "split-integer-weights",
        _KIND,
        (NEGATIVE_WEIGHT, NON_INTEGER_WEIGHT),
        integer_weight_values,
        only_invalid=True,
    ),
    Rule(
        "split-quantity-weights",
        _KIND,
        (NEGATIVE_WEIGHT, BAD_QUANTITY, UNUSUAL_QUANTITY, SDK_MISREAD),
        quantity_weights,
    ),
    Rule("split-match-kinds", _KIND, (MATCH_KIND,), match_kinds, only_invalid=True),
    Rule("split-backend-names", _KIND, (BACKEND_NAME,), backend_names),
)
