"""Translation targets. ``REGISTRY`` is the one explicit list of backends; its keys feed ``--help``.

Entries are import paths resolved on first use, so that loading one backend never imports the others.
"""

from __future__ import annotations

import importlib

from backends.base import Backend, Emission, EmitContext, Options, SourceObject

REGISTRY: dict[str, str] = {
    "istio": "backends.istio:IstioBackend",
    "linkerd": "backends.linkerd:LinkerdBackend",
    "consul": "backends.consul:ConsulBackend",
    "gateway-api": "backends.gateway_api:GatewayAPIBackend",
    "proxy": "backends.proxy:ProxyBackend",
}

_cache: dict[str, Backend] = {}


class UnknownBackend(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown target {self.name!r} (choose one of: {', '.join(REGISTRY)})"


def get_backend(name: str) -> Backend:
    if name not in REGISTRY:
        raise UnknownBackend(name)
    if name not in _cache:
        module_name, _, class_name = REGISTRY[name].partition(":")
        module = importlib.import_module(module_name)
        backend = getattr(module, class_name)()
        assert isinstance(backend, Backend)
        _cache[name] = backend
    return _cache[name]


__all__ = [
    "REGISTRY",
    "Backend",
    "EmitContext",
    "Emission",
    "Options",
    "SourceObject",
    "UnknownBackend",
    "get_backend",
]
