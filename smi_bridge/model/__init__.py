"""Models for every SMI kind and version, and the inventory kinds translation reads.

``SMI_MODELS`` maps ``(group, version, kind)`` to the strict pydantic model for it; it is the one
source of truth for ``schemas/`` (generated from these models by ``smi_bridge.schema``).
"""

from __future__ import annotations

from pydantic import BaseModel

from smi_bridge.model import access, metrics, specs, split
from smi_bridge.model.inventory import MODELS as INVENTORY_MODELS

SMI_GROUPS = (split.GROUP, access.GROUP, specs.GROUP, metrics.GROUP)
LEGACY_GROUPS = {specs.LEGACY_GROUP: specs.GROUP}

SMI_MODELS: dict[tuple[str, str, str], type[BaseModel]] = {
    **{(split.GROUP, v, k): m for (v, k), m in split.MODELS.items()},
    **{(access.GROUP, v, k): m for (v, k), m in access.MODELS.items()},
    **{(specs.GROUP, v, k): m for (v, k), m in specs.MODELS.items()},
    **{(metrics.GROUP, v, k): m for (v, k), m in metrics.MODELS.items()},
}

# Kinds per group, and the versions each kind exists in (for "unknown version" messages).
KIND_VERSIONS: dict[tuple[str, str], tuple[str, ...]] = {}
for _g, _v, _k in SMI_MODELS:
    KIND_VERSIONS[(_g, _k)] = (*KIND_VERSIONS.get((_g, _k), ()), _v)

# The newest version of each kind that the published CRDs serve (convert and import default to these).
LATEST: dict[str, str] = {
    "TrafficSplit": f"{split.GROUP}/v1alpha4",
    "TrafficTarget": f"{access.GROUP}/v1alpha3",
    "HTTPRouteGroup": f"{specs.GROUP}/v1alpha4",
    "TCPRoute": f"{specs.GROUP}/v1alpha4",
    "UDPRoute": f"{specs.GROUP}/v1alpha4",
}

__all__ = ["INVENTORY_MODELS", "KIND_VERSIONS", "LATEST", "LEGACY_GROUPS", "SMI_GROUPS", "SMI_MODELS"]
