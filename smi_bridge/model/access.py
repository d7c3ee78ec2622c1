"""TrafficTarget (``access.smi-spec.io``) v1alpha1 to v1alpha3.

v1alpha1 has no ``spec``: ``destination``, ``specs`` and ``sources`` sit at the top level and the
destination may carry a ``port``. v1alpha2 moves them under ``spec`` and renames ``specs`` to
``rules``. v1alpha3 drops ``destination.port`` (ports moved to TCPRoute/UDPRoute), adds UDPRoute
rules and requires ``rules`` and ``sources``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from smi_bridge.model.base import Name, Port, Resource, Strict

GROUP = "access.smi-spec.io"


class Subject(Strict):
    kind: Literal["ServiceAccount"]
    name: Name
    namespace: str | None = None


class DestinationWithPort(Subject):
    # The v1alpha1 doc says optional ("all ports" when absent); the smi-sdk-go CRD required it.
    port: Port | None = None


class RuleV1alpha1(Strict):
    kind: Literal["HTTPRouteGroup", "TCPRoute"]
    name: Name
    matches: list[Name] | None = None


class RuleV1alpha3(Strict):
    kind: Literal["HTTPRouteGroup", "TCPRoute", "UDPRoute"]
    name: Name
    matches: list[Name] | None = None


class TrafficTargetV1alpha1(Resource):
    kind: Literal["TrafficTarget"]
    destination: DestinationWithPort
    specs: list[RuleV1alpha1] = Field(default_factory=list)
    sources: list[Subject] = Field(default_factory=list)


class SpecV1alpha2(Strict):
    destination: DestinationWithPort
    rules: list[RuleV1alpha1] = Field(default_factory=list)
    sources: list[Subject] = Field(default_factory=list)


class SpecV1alpha3(Strict):
    destination: Subject
    rules: list[RuleV1alpha3] = Field(min_length=1)
    sources: list[Subject] = Field(min_length=1)


class TrafficTargetV1alpha2(Resource):
    kind: Literal["TrafficTarget"]
    spec: SpecV1alpha2


class TrafficTargetV1alpha3(Resource):
    kind: Literal["TrafficTarget"]
    spec: SpecV1alpha3


TrafficTarget = TrafficTargetV1alpha1 | TrafficTargetV1alpha2 | TrafficTargetV1alpha3

MODELS: dict[tuple[str, str], type[Resource]] = {
    ("v1alpha1", "TrafficTarget"): TrafficTargetV1alpha1,
    ("v1alpha2", "TrafficTarget"): TrafficTargetV1alpha2,
    ("v1alpha3", "TrafficTarget"): TrafficTargetV1alpha3,
}
