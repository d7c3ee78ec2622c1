"""Pieces every SMI model shares: object metadata and the strict base class.

SMI models are strict: unknown fields are errors (a Kubernetes API server with the published
structural CRDs would silently prune them, which is exactly the surprise a linter must report),
and no type coercion happens (``"50"`` is not a weight).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Port = Annotated[int, Field(ge=1, le=65535, strict=True)]
Name = Annotated[str, Field(min_length=1, max_length=253, strict=True)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ObjectMeta(BaseModel):
    """The parts of metadata we read; everything else a user writes there is kept and ignored."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: Name
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class Resource(Strict):
    """Every SMI object: ``apiVersion``, ``kind``, ``metadata``."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
