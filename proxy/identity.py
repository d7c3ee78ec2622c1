"""Who is calling: the caller identity (a ServiceAccount) of a connection or request.

Three modes, chosen with ``--identity``:

- ``mtls`` (the default): listeners require a client certificate signed by ``--ca``; the identity
  is the certificate's URI SAN ``spiffe://<trust-domain>/ns/<ns>/sa/<sa>``. A certificate from
  another trust domain, or without such a SAN, is an unauthenticated caller.
- ``source-address``: the client's source IP is looked up among the config's pods. Made for test
  beds on loopback (pods on 127.0.10.x), like the IP-based identity of some meshes.
- ``header:NAME``: the identity is read from a request header (``ns/sa`` or a SPIFFE ID). Anyone
  can send that header, so it is insecure and meant for demos; the proxy warns at start. The
  header is removed before the request goes upstream. TCP connections carry no headers and are
  unauthenticated in this mode.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Literal

from smi_bridge.ir import Identity

IdentityKind = Literal["mtls", "source-address", "header"]


@dataclass(frozen=True, slots=True)
class IdentityMode:
    kind: IdentityKind
    header: bytes = b""  # lower-case header name for ``header`` mode

    @classmethod
    def parse(cls, text: str) -> IdentityMode:
        if text == "mtls":
            return cls("mtls")
        if text == "source-address":
            return cls("source-address")
        if text.startswith("header:"):
            name = text[len("header:") :].strip().lower()
            if not name or any(c in name for c in " :\t\r\n"):
                raise ValueError(f"--identity {text!r}: the header name is missing or invalid")
            return cls("header", name.encode("ascii"))
        raise ValueError(f"--identity {text!r}: choose mtls, source-address or header:NAME")

    def __str__(self) -> str:
        return f"header:{self.header.decode()}" if self.kind == "header" else self.kind


def parse_spiffe(uri: str, trust_domain: str) -> Identity | None:
    """``Identity`` from ``spiffe://<trust-domain>/ns/<ns>/sa/<sa>``; None for anything else."""
    prefix = f"spiffe://{trust_domain}/ns/"
    if not uri.startswith(prefix):
        return None
    rest = uri[len(prefix) :].split("/")
    if len(rest) != 3 or rest[1] != "sa" or not rest[0] or not rest[2]:
        return None
    return Identity(rest[0], rest[2])


def parse_header_identity(value: str, trust_domain: str) -> Identity | None:
    """``ns/sa`` or a SPIFFE ID of this trust domain; None when it is neither."""
    value = value.strip()
    if value.startswith("spiffe://"):
        return parse_spiffe(value, trust_domain)
    ns, sep, sa = value.partition("/")
    if not sep or not ns or not sa or "/" in sa:
        return None
    return Identity(ns, sa)


def peer_spiffe_ids(ssl_object: Any) -> list[str]:
    """The URI SANs of the verified peer certificate of a TLS connection."""
    if ssl_object is None:
        return []
    cert = ssl_object.getpeercert()
    if not cert:
        return []
    return [value for kind, value in cert.get("subjectAltName", ()) if kind == "URI"]


def identity_from_certificate(ssl_object: Any, trust_domain: str) -> Identity | None:
    for uri in peer_spiffe_ids(ssl_object):
        identity = parse_spiffe(uri, trust_domain)
        if identity is not None:
            return identity
    return None


def server_tls_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    """A listener context that requires a client certificate signed by ``ca``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.load_verify_locations(ca)
    context.verify_mode = ssl.CERT_REQUIRED
    return context
