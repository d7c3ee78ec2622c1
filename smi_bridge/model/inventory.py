"""Ordinary Kubernetes objects, read only as far as translation needs them.

Lenient on purpose: these are not ours to lint, and a real cluster dump carries every field
Kubernetes has. Unknown fields are ignored; only the fields below are read.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class OwnerReference(Lenient):
    kind: str = ""
    name: str = ""


class Meta(Lenient):
    name: str = ""
    generateName: str | None = None
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    ownerReferences: list[OwnerReference] = Field(default_factory=list)


class ServicePortSpec(Lenient):
    name: str = ""
    port: int
    targetPort: int | str | None = None
    protocol: str = "TCP"
    appProtocol: str = ""


class ServiceSpec(Lenient):
    ports: list[ServicePortSpec] = Field(default_factory=list)
    selector: dict[str, str] | None = None
    clusterIP: str | None = None
    type: str = "ClusterIP"


class Service(Lenient):
    kind: str = "Service"
    metadata: Meta
    spec: ServiceSpec = Field(default_factory=ServiceSpec)


class ContainerPort(Lenient):
    name: str = ""
    containerPort: int
    protocol: str = "TCP"


class Container(Lenient):
    name: str = ""
    ports: list[ContainerPort] = Field(default_factory=list)


class PodSpec(Lenient):
    serviceAccountName: str | None = None
    serviceAccount: str | None = None  # deprecated alias, still seen in old manifests
    containers: list[Container] = Field(default_factory=list)


class PodStatus(Lenient):
    podIP: str | None = None


class Pod(Lenient):
    kind: str = "Pod"
    metadata: Meta
    spec: PodSpec = Field(default_factory=PodSpec)
    status: PodStatus = Field(default_factory=PodStatus)


class PodTemplate(Lenient):
    metadata: Meta = Field(default_factory=lambda: Meta(name=""))
    spec: PodSpec = Field(default_factory=PodSpec)


class WorkloadSpec(Lenient):
    template: PodTemplate = Field(default_factory=PodTemplate)
    selector: dict[str, Any] | None = None


class Workload(Lenient):
    """Deployment, StatefulSet, DaemonSet or ReplicaSet: only the pod template matters."""

    kind: str
    metadata: Meta
    spec: WorkloadSpec = Field(default_factory=WorkloadSpec)


class SliceEndpointConditions(Lenient):
    ready: bool | None = None


class TargetRef(Lenient):
    kind: str = ""
    name: str = ""
    namespace: str | None = None


class SliceEndpoint(Lenient):
    addresses: list[str] = Field(default_factory=list)
    conditions: SliceEndpointConditions = Field(default_factory=SliceEndpointConditions)
    targetRef: TargetRef | None = None


class SlicePort(Lenient):
    name: str | None = None
    port: int | None = None
    protocol: str = "TCP"


class EndpointSlice(Lenient):
    kind: str = "EndpointSlice"
    metadata: Meta
    endpoints: list[SliceEndpoint] | None = None
    ports: list[SlicePort] | None = None


class EndpointAddress(Lenient):
    ip: str
    targetRef: TargetRef | None = None


class EndpointPortSpec(Lenient):
    name: str | None = None
    port: int
    protocol: str = "TCP"


class EndpointSubset(Lenient):
    addresses: list[EndpointAddress] = Field(default_factory=list)
    notReadyAddresses: list[EndpointAddress] = Field(default_factory=list)
    ports: list[EndpointPortSpec] = Field(default_factory=list)


class Endpoints(Lenient):
    kind: str = "Endpoints"
    metadata: Meta
    subsets: list[EndpointSubset] | None = None


class Namespace(Lenient):
    kind: str = "Namespace"
    metadata: Meta


class ServiceAccount(Lenient):
    kind: str = "ServiceAccount"
    metadata: Meta


InventoryObject = Service | Pod | Workload | EndpointSlice | Endpoints | Namespace | ServiceAccount

# (group, kind) -> model; the group is "" for the core API.
MODELS: dict[tuple[str, str], type[Lenient]] = {
    ("", "Namespace"): Namespace,
    ("", "ServiceAccount"): ServiceAccount,
    ("", "Service"): Service,
    ("", "Pod"): Pod,
    ("", "Endpoints"): Endpoints,
    ("apps", "Deployment"): Workload,
    ("apps", "StatefulSet"): Workload,
    ("apps", "DaemonSet"): Workload,
    ("apps", "ReplicaSet"): Workload,
    ("discovery.k8s.io", "EndpointSlice"): EndpointSlice,
}
