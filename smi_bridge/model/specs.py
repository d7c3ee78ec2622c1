"""Traffic specs (``specs.smi-spec.io``): HTTPRouteGroup v1alpha1-v1alpha4, TCPRoute v1alpha1-v1alpha4,
UDPRoute v1alpha4.

HTTPRouteGroup keeps its routes in a top-level ``matches`` in v1alpha1/v1alpha2 and in
``spec.matches`` from v1alpha3. ``headers`` (v1alpha2+) has two wire forms in the wild: a list of
one-key maps (the smi-sdk-go CRD and v0.6.0 docs) and a plain map (later docs, controller-sdk);
both are accepted and ``header_pairs`` normalises them to ordered (name, regex) pairs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from smi_bridge.model.base import Name, Port, Resource, Strict

GROUP = "specs.smi-spec.io"
LEGACY_GROUP = "spec.smi-spec.io"  # smi-sdk-go v0.1.0/v0.2.0 shipped the CRDs under this name

Method = Literal["*", "GET", "HEAD", "PUT", "POST", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
METHODS: tuple[str, ...] = (
    "*",
    "GET",
    "HEAD",
    "PUT",
    "POST",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
)
HeaderValue = Annotated[str, Field(strict=True)]
OneHeader = Annotated[dict[str, HeaderValue], Field(min_length=1, max_length=1)]
Headers = dict[str, HeaderValue] | list[OneHeader]


class HTTPMatchV1alpha1(Strict):
    name: Name
    pathRegex: str | None = None
    methods: list[Method] | None = None


class HTTPMatch(HTTPMatchV1alpha1):
    # list form: each item is one ``header: regex`` pair
    headers: Headers | None = None


def header_pairs(headers: Headers | None) -> list[tuple[str, str]]:
    """Both wire forms as ordered (name, regex) pairs (names as written)."""
    if headers is None:
        return []
    if isinstance(headers, dict):
        return list(headers.items())
    return [next(iter(item.items())) for item in headers]


class HTTPRouteGroupV1alpha1(Resource):
    kind: Literal["HTTPRouteGroup"]
    matches: list[HTTPMatchV1alpha1]


class HTTPRouteGroupV1alpha2(Resource):
    kind: Literal["HTTPRouteGroup"]
    matches: list[HTTPMatch]


class HTTPRouteGroupSpec(Strict):
    matches: list[HTTPMatch]


class HTTPRouteGroupV1alpha3(Resource):
    kind: Literal["HTTPRouteGroup"]
    spec: HTTPRouteGroupSpec


class HTTPRouteGroupV1alpha4(HTTPRouteGroupV1alpha3):
    pass


class TCPRouteV1alpha1(Resource):
    kind: Literal["TCPRoute"]


class EmptySpec(Strict):
    pass


class TCPRouteV1alpha3(Resource):
    kind: Literal["TCPRoute"]
    spec: EmptySpec = Field(default_factory=EmptySpec)


class PortMatch(Strict):
    name: str | None = None
    ports: list[Port]


class PortRouteSpec(Strict):
    matches: PortMatch


class TCPRouteV1alpha4(Resource):
    kind: Literal["TCPRoute"]
    spec: PortRouteSpec


class UDPRouteV1alpha4(Resource):
    kind: Literal["UDPRoute"]
    spec: PortRouteSpec


HTTPRouteGroup = (
    HTTPRouteGroupV1alpha1 | HTTPRouteGroupV1alpha2 | HTTPRouteGroupV1alpha3 | HTTPRouteGroupV1alpha4
)
PortRoute = TCPRouteV1alpha1 | TCPRouteV1alpha3 | TCPRouteV1alpha4 | UDPRouteV1alpha4

MODELS: dict[tuple[str, str], type[Resource]] = {
    ("v1alpha1", "HTTPRouteGroup"): HTTPRouteGroupV1alpha1,
    ("v1alpha2", "HTTPRouteGroup"): HTTPRouteGroupV1alpha2,
    ("v1alpha3", "HTTPRouteGroup"): HTTPRouteGroupV1alpha3,
    ("v1alpha4", "HTTPRouteGroup"): HTTPRouteGroupV1alpha4,
    ("v1alpha1", "TCPRoute"): TCPRouteV1alpha1,
    ("v1alpha2", "TCPRoute"): TCPRouteV1alpha1,
    ("v1alpha3", "TCPRoute"): TCPRouteV1alpha3,
    ("v1alpha4", "TCPRoute"): TCPRouteV1alpha4,
    ("v1alpha4", "UDPRoute"): UDPRouteV1alpha4,
}


def http_matches(obj: HTTPRouteGroup) -> list[HTTPMatchV1alpha1]:
    if isinstance(obj, HTTPRouteGroupV1alpha3):
        return list(obj.spec.matches)
    return list(obj.matches)


def port_route_ports(obj: PortRoute) -> list[int]:
    """The ports a TCPRoute/UDPRoute selects ([] = every port)."""
    if isinstance(obj, TCPRouteV1alpha4 | UDPRouteV1alpha4):
        return list(obj.spec.matches.ports)
    return []
