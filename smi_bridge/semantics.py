"""The one written meaning of SMI: ``compile(ir, ...)`` gives a ``Router`` whose ``decide(request)``
answers, for one request, which backend Services it goes to (with weights) and whether access
allows it.

Types only so far: the implementation lands with the semantics work (see ARCHITECTURE.md,
"Meanings we decided").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from smi_bridge.ir import Identity, Protocol

AccessMode = Literal["enforce", "permissive"]


@dataclass(frozen=True, slots=True)
class Request:
    """One request (HTTP) or connection (TCP/UDP) as the mesh sees it at the client side."""

    source: Identity | None  # None: unauthenticated / unknown caller
    namespace: str  # destination Service namespace
    service: str  # destination Service name (as dialed)
    port: int  # destination Service port (as dialed)
    protocol: Protocol = "http"
    method: str = "GET"
    path: str = "/"  # already normalised; may carry a query string, which matching ignores
    headers: tuple[tuple[str, str], ...] = ()  # (lower-case name, value)
