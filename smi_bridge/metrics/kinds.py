"""The resource kinds TrafficMetrics are served for, with their URL names and spellings.

smi-metrics served deployments, pods, daemonsets, statefulsets and namespaces; SDK v1alpha2 added
trafficsplits. The SDK spelled kinds oddly (``Daemonset``, ``Statefulset``, ``Trafficsplit``) and
the OpenAPI enum copies that, so kinds are matched case-insensitively and reported in their proper
Kubernetes spelling. ``kubectl``-style short names are accepted on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResourceKind:
    kind: str  # proper Kubernetes spelling: "DaemonSet"
    plural: str  # URL name: "daemonsets"
    namespaced: bool
    workload: bool  # a pod owner (Deployment, StatefulSet, DaemonSet)
    edges: bool  # has the ``/edges`` subresource
    short: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The lower-case name meshes use as a label key (``deployment``, ``statefulset``)."""
        return self.kind.lower()


DEPLOYMENT = ResourceKind("Deployment", "deployments", True, True, True, ("deploy",))
STATEFULSET = ResourceKind("StatefulSet", "statefulsets", True, True, True, ("sts",))
DAEMONSET = ResourceKind("DaemonSet", "daemonsets", True, True, True, ("ds",))
POD = ResourceKind("Pod", "pods", True, False, True, ("po",))
NAMESPACE = ResourceKind("Namespace", "namespaces", False, False, True, ("ns",))
TRAFFICSPLIT = ResourceKind("TrafficSplit", "trafficsplits", True, False, False, ("ts",))

# Registry order is the order of the served APIResourceList.
KINDS: dict[str, ResourceKind] = {
    k.plural: k for k in (DEPLOYMENT, POD, DAEMONSET, STATEFULSET, NAMESPACE, TRAFFICSPLIT)
}

_BY_SPELLING: dict[str, ResourceKind] = {}
for _k in KINDS.values():
    for _spelling in (_k.kind, _k.plural, *_k.short):
        _BY_SPELLING[_spelling.lower()] = _k


class UnknownKind(LookupError):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        names = ", ".join(k.plural for k in KINDS.values())
        return f"unsupported resource kind {self.text!r} (TrafficMetrics are served for: {names})"


def resolve_kind(text: str) -> ResourceKind:
    """``Deployment``, ``deployments``, ``deploy``, ``Daemonset`` ... -> the kind (case-insensitive)."""
    kind = _BY_SPELLING.get(text.strip().lower())
    if kind is None:
        raise UnknownKind(text)
    return kind
