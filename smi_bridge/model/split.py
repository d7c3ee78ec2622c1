"""TrafficSplit (``split.smi-spec.io``) v1alpha1 to v1alpha4.

v1alpha1 weights are Kubernetes quantities; v1alpha2 and later are integers >= 0 (stricter than
the smi-sdk-go CRD's ``type: number``, as strict as smi-controller-sdk's). v1alpha3 and v1alpha4
add ``matches`` (references to HTTPRouteGroups); their schemas are identical.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from smi_bridge.model.base import Name, Resource, Strict
from smi_bridge.model.quantity import parse_quantity

GROUP = "split.smi-spec.io"
Weight = Annotated[int, Field(ge=0, strict=True)]


# A non-negative Kubernetes quantity written as a string ("500m", "1", "1.5k", "2Ki", "1e3").
QUANTITY_PATTERN = r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"


def _parsable(value: str) -> str:
    """The pattern admits values the exact arithmetic refuses (``1e400``): say so here, as a schema error."""
    parse_quantity(value)
    return value


QuantityWeight = (
    Annotated[int, Field(ge=0, strict=True)]
    | Annotated[str, Field(pattern=QUANTITY_PATTERN), AfterValidator(_parsable)]
)


class BackendV1alpha1(Strict):
    service: Name
    weight: QuantityWeight


class Backend(Strict):
    service: Name
    weight: Weight


class SplitMatch(Strict):
    kind: Literal["HTTPRouteGroup"]
    name: Name
    apiGroup: str | None = None


class SpecV1alpha1(Strict):
    service: Name
    backends: list[BackendV1alpha1]


class SpecV1alpha2(Strict):
    service: Name
    backends: list[Backend]


class SpecV1alpha3(Strict):
    service: Name
    backends: list[Backend]
    matches: list[SplitMatch] | None = None


class TrafficSplitV1alpha1(Resource):
    kind: Literal["TrafficSplit"]
    spec: SpecV1alpha1


class TrafficSplitV1alpha2(Resource):
    kind: Literal["TrafficSplit"]
    spec: SpecV1alpha2


class TrafficSplitV1alpha3(Resource):
    kind: Literal["TrafficSplit"]
    spec: SpecV1alpha3


class TrafficSplitV1alpha4(TrafficSplitV1alpha3):
    pass


TrafficSplit = TrafficSplitV1alpha1 | TrafficSplitV1alpha2 | TrafficSplitV1alpha3 | TrafficSplitV1alpha4

MODELS: dict[tuple[str, str], type[Resource]] = {
    ("v1alpha1", "TrafficSplit"): TrafficSplitV1alpha1,
    ("v1alpha2", "TrafficSplit"): TrafficSplitV1alpha2,
    ("v1alpha3", "TrafficSplit"): TrafficSplitV1alpha3,
    ("v1alpha4", "TrafficSplit"): TrafficSplitV1alpha4,
}
