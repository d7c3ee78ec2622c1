"""Loading a ProxyConfig and compiling it into the tables the request path reads.

``load_config`` reads the YAML or JSON file ``smi-bridge translate --to proxy`` writes, checks it
against ``schemas/proxy-config.schema.json`` (an error names the file, the line and the field),
rebuilds the IR with ``smi_bridge.ir.ir_from_dict`` and compiles it with
``smi_bridge.semantics.compile``. The result, an ``ActiveConfig``, is immutable in everything
but its caches; the proxy swaps whole ``ActiveConfig`` objects on reload, and a request keeps
the one it started with.

The proxy never re-implements what a request means: routing and access come from
``Router.decide``. This module only adds what a data plane needs around that answer: which
Service a cluster IP and port belong to, which pod a source address is, which endpoints back a
Service port, and a cache of decisions keyed on the whole ``Request`` (every field decide reads).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from proxy.balance import EndpointRing, SmoothWeightedRoundRobin, Upstream
from proxy.schema import Check, compile_schema
from smi_bridge import semantics
from smi_bridge.ir import IR, Identity, Pod, Protocol, Service, ServicePort, ir_from_dict
from smi_bridge.resources import PROXY_CONFIG_SCHEMA
from smi_bridge.semantics import Request

API_VERSION = "proxy.smi-bridge.io/v1alpha1"
KIND = "ProxyConfig"
SCHEMA_PATH = PROXY_CONFIG_SCHEMA

# Bounded so that a client cycling through random paths cannot grow memory without limit.
DECISION_CACHE_SIZE = 65536


class ConfigError(Exception):
    """A config that cannot be served; ``problems`` are ``file:line: path: message`` lines."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class ListenerTarget:
    """What one listening address serves: a Service port."""

    namespace: str
    service: str
    port: int
    http: bool


@dataclass(slots=True)
class CachedDecision:
    decision: semantics.Decision
    picker: SmoothWeightedRoundRobin[int] | None  # None: at most one backend
    # the endpoints of each backend for the dialed port, looked up on first use
    rings: list[EndpointRing | None] = field(default_factory=list)


# The ring of a Service port the config has no entry for: it never yields an endpoint.
NO_ENDPOINTS = EndpointRing(())


@dataclass
class ActiveConfig:
    """One compiled config version; everything the request path looks up."""

    version: str
    digest: str
    source: str
    access_mode: semantics.AccessMode
    trust_domain: str
    cluster_domain: str
    ir: IR
    router: semantics.Router
    listeners: dict[tuple[str, int], ListenerTarget]
    pods_by_ip: dict[str, Pod]
    pod_workloads: dict[tuple[str, str], str]
    identity_workloads: dict[Identity, str]
    # the one workload behind a Service's endpoints ("" when several or none): the destination
    # workload of requests denied before any endpoint was picked
    service_workloads: dict[tuple[str, str], str]
    rings: dict[tuple[str, str, int], EndpointRing]
    hosts: dict[str, tuple[str, str]]
    default_ports: dict[tuple[str, str], int]
    http_ports: dict[tuple[str, str, int], bool]
    header_names: frozenset[str]
    notes: list[str]
    sources_by_ip: dict[str, tuple[Identity, str]]
    decisions: dict[tuple[object, ...], CachedDecision] = field(default_factory=dict)
    # header identity values already parsed (``--identity header:``), bounded by the caller
    header_sources: dict[bytes, tuple[Identity | None, str]] = field(default_factory=dict)
    pickers: dict[tuple[object, ...], SmoothWeightedRoundRobin[int]] = field(default_factory=dict)

    def decide(
        self,
        source: Identity | None,
        namespace: str,
        service: str,
        port: int,
        protocol: Protocol,
        method: str,
        path: str,
        headers: tuple[tuple[str, str], ...],
    ) -> CachedDecision:
        """The decision for one request, cached on every field of ``Request`` (all decide reads).

        ``headers`` holds only the headers some match of the config names (``header_names``):
        decide cannot read any other, so leaving them out of the key loses nothing.
        """
        key = (source, namespace, service, port, protocol, method, path, headers)
        cached = self.decisions.get(key)
        if cached is None:
            request = Request(source, namespace, service, port, protocol, method, path, headers)
            decision = self.router.decide(request)
            cached = CachedDecision(
                decision, self._picker(namespace, decision), [None] * len(decision.backends)
            )
            if len(self.decisions) >= DECISION_CACHE_SIZE:
                self.decisions.clear()
            self.decisions[key] = cached
        return cached

    def _picker(self, namespace: str, decision: semantics.Decision) -> SmoothWeightedRoundRobin[int] | None:
        backends = decision.backends
        if len(backends) <= 1:
            return None
        # One smooth WRR per split and route, shared by every request the split covers, so the
        # ratio holds across sources and paths; keyed with the weights too, which the split fixes.
        key = (namespace, decision.split, decision.route, tuple((b.service, b.weight) for b in backends))
        picker = self.pickers.get(key)
        if picker is None:
            picker = SmoothWeightedRoundRobin([(i, b.weight) for i, b in enumerate(backends)])
            self.pickers[key] = picker
        return picker

    def workload_of(self, identity: Identity | None) -> str:
        if identity is None:
            return ""
        return self.identity_workloads.get(identity, "")

    def resolve_host(self, host: str, client_namespace: str) -> tuple[str, str, int | None] | None:
        """``(namespace, service, port or None)`` for a Host header; None when it names nothing.

        Accepted: ``svc`` (in the caller's namespace), ``svc.ns``, ``svc.ns.svc``,
        ``svc.ns.svc.<cluster-domain>``, each with an optional ``:port``; case-insensitive; one
        trailing dot (an absolute DNS name) is allowed.
        """
        name, port = _split_host_port(host)
        if name is None:
            return None
        found = self.hosts.get(name)
        if found is None:
            if "." in name or not client_namespace:
                return None
            if self.ir.service(client_namespace, name) is None:
                return None
            found = (client_namespace, name)
        return (found[0], found[1], port)


def _split_host_port(host: str) -> tuple[str | None, int | None]:
    host = host.strip().lower()
    port: int | None = None
    if ":" in host:
        host, _, port_text = host.rpartition(":")
        if not port_text.isdigit() or len(port_text) > 5:
            return None, None
        port = int(port_text)
        if not 0 < port < 65536:
            return None, None
    if host.endswith("."):
        host = host[:-1]
    if not host or ".." in host or host.startswith(".") or "@" in host:
        return None, None
    return host, port


@cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = _schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


@cache
def _fast_check() -> Check:
    return compile_schema(_schema())


def schema_errors(obj: Mapping[str, Any]) -> list[tuple[list[str | int], str]]:
    """``(field path, message)`` for every schema violation of ``obj``; [] when valid.

    The compiled check answers first; jsonschema runs only to describe what is wrong.
    """
    if _fast_check()(obj):
        return []
    errors = sorted(_validator().iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    return [(list(e.absolute_path), e.message) for e in errors]


def format_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def digest_of(spec: Mapping[str, Any]) -> str:
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_config_text(text: str, source: str) -> dict[str, Any]:
    """The one ProxyConfig object in ``text`` (YAML or JSON, possibly several documents)."""
    try:
        documents = _documents(text)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{source}:{exc.lineno}: not valid JSON: {exc.msg}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError([f"{where}: not valid YAML/JSON: {getattr(exc, 'problem', exc)}"]) from None
    items: list[tuple[int, Any]] = []
    for index, doc in enumerate(documents):
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            items.extend((index, item) for item in doc["items"])
        else:
            items.append((index, doc))
    configs = [(i, d) for i, d in items if isinstance(d, dict) and d.get("kind") == KIND]
    if not configs:
        raise ConfigError([f"{source}: no {KIND} object (apiVersion {API_VERSION}) found"])
    if len(configs) > 1:
        names = ", ".join(str((d.get("metadata") or {}).get("name", "?")) for _, d in configs)
        raise ConfigError(
            [f"{source}: {len(configs)} {KIND} objects ({names}); the proxy serves exactly one"]
        )
    index, obj = configs[0]
    problems = []
    for path, message in schema_errors(obj):
        line = _line_of(text, index, path)
        where = f"{source}:{line}" if line else source
        name = (obj.get("metadata") or {}).get("name", "?")
        problems.append(f"{where}: {KIND} {name}: {format_path(path)}: {message}")
    if problems:
        raise ConfigError(problems)
    result: dict[str, Any] = obj
    return result


def _documents(text: str) -> list[Any]:
    # JSON is parsed by the json module: PyYAML builds Python objects in Python, which is ~50x
    # slower on a large config (``smi-bridge translate --to proxy --format json`` writes JSON).
    if text.lstrip().startswith("{"):
        return [json.loads(text)]
    return [d for d in yaml.load_all(text, Loader=yaml.CSafeLoader) if d is not None]


def _line_of(text: str, document: int, path: Sequence[str | int]) -> int | None:
    """The 1-based line of ``path`` in document ``document`` (best effort, for messages only)."""
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.CSafeLoader))
    except yaml.YAMLError:
        return None
    if document >= len(nodes):
        return None
    node: yaml.Node = nodes[document]
    line: int = node.start_mark.line + 1
    for part in path:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if key.value == part:
                    child = value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def load_config(path: str | Path, version: str) -> ActiveConfig:
    """Read, validate and compile the config at ``path``; raises ``ConfigError``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    obj = parse_config_text(text, str(path))
    return compile_config(obj, version=version, source=str(path))


def compile_config(obj: Mapping[str, Any], *, version: str, source: str = "<config>") -> ActiveConfig:
    """Compile a schema-valid ProxyConfig object (see ``parse_config_text``)."""
    spec = obj["spec"]
    ir = ir_from_dict(spec["ir"])
    access_mode = spec["accessMode"]
    try:
        router = semantics.compile(ir, access_mode=access_mode)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError([f"{source}: the policy cannot be compiled: {exc}"]) from None
    tables = _Tables(ir, spec["clusterDomain"])
    return ActiveConfig(
        version=version,
        digest=digest_of(spec),
        source=source,
        access_mode=access_mode,
        trust_domain=spec["trustDomain"],
        cluster_domain=spec["clusterDomain"],
        ir=ir,
        router=router,
        listeners=tables.listeners,
        pods_by_ip=tables.pods_by_ip,
        pod_workloads=tables.pod_workloads,
        identity_workloads=tables.identity_workloads,
        service_workloads=tables.service_workloads,
        rings=tables.rings,
        hosts=tables.hosts,
        default_ports=tables.default_ports,
        http_ports=tables.http_ports,
        header_names=tables.header_names,
        notes=tables.notes,
        sources_by_ip={
            ip: (Identity(pod.namespace, pod.service_account), pod.workload or pod.name)
            for ip, pod in tables.pods_by_ip.items()
        },
    )


def _is_listenable(service: Service) -> bool:
    return bool(service.cluster_ip) and service.cluster_ip.lower() != "none"


def endpoint_port(service: Service, sp: ServicePort, ports: Sequence[tuple[str, int]]) -> int | None:
    """The port on one endpoint behind Service port ``sp`` (named target ports per endpoint)."""
    target = sp.target_port
    if target is None or target == "":
        return sp.port
    if isinstance(target, int):
        return target
    for name, number in ports:
        if name == target:
            return number
    return None


class _Tables:
    """Builds the lookup tables of one config (kept apart so ``compile_config`` stays readable)."""

    def __init__(self, ir: IR, cluster_domain: str) -> None:
        self.notes: list[str] = []
        self.listeners: dict[tuple[str, int], ListenerTarget] = {}
        self.pods_by_ip: dict[str, Pod] = {}
        self.pod_workloads: dict[tuple[str, str], str] = {}
        self.identity_workloads: dict[Identity, str] = {}
        self.service_workloads: dict[tuple[str, str], str] = {}
        self.rings: dict[tuple[str, str, int], EndpointRing] = {}
        self.hosts: dict[str, tuple[str, str]] = {}
        self.default_ports: dict[tuple[str, str], int] = {}
        self.http_ports: dict[tuple[str, str, int], bool] = {}
        self._pods(ir)
        for service in ir.services:
            self._service(service, cluster_domain)
            workloads = {self.pod_workloads.get((service.namespace, e.pod), "") for e in service.endpoints}
            self.service_workloads[(service.namespace, service.name)] = (
                next(iter(workloads)) if len(workloads) == 1 else ""
            )
        self.header_names = frozenset(_header_names(ir))

    def _pods(self, ir: IR) -> None:
        workloads_by_identity: dict[Identity, set[str]] = {}
        for pod in ir.pods:
            workload = pod.workload or pod.name
            self.pod_workloads[(pod.namespace, pod.name)] = workload
            workloads_by_identity.setdefault(Identity(pod.namespace, pod.service_account), set()).add(
                workload
            )
            if pod.ip and not pod.template:
                other = self.pods_by_ip.get(pod.ip)
                if other is not None:
                    self.notes.append(
                        f"pods {other.namespace}/{other.name} and {pod.namespace}/{pod.name} share IP "
                        f"{pod.ip}; source-address identity uses the first"
                    )
                    continue
                self.pods_by_ip[pod.ip] = pod
        for identity, workloads in workloads_by_identity.items():
            # An identity whose pods belong to several workloads has no single workload label.
            self.identity_workloads[identity] = next(iter(workloads)) if len(workloads) == 1 else ""

    def _service(self, service: Service, cluster_domain: str) -> None:
        key = (service.namespace, service.name)
        for form in (
            f"{service.name}.{service.namespace}",
            f"{service.name}.{service.namespace}.svc",
            f"{service.name}.{service.namespace}.svc.{cluster_domain}",
        ):
            self.hosts[form.lower()] = key
        http_ports = [p.port for p in service.ports if p.is_http and p.l4 == "tcp"]
        if 80 in http_ports:
            self.default_ports[key] = 80
        elif len(http_ports) == 1:
            self.default_ports[key] = http_ports[0]
        for sp in service.ports:
            if sp.l4 != "tcp" or sp.protocol.upper() != "TCP":
                self.notes.append(
                    f"Service {service.namespace}/{service.name} port {sp.port}/{sp.protocol} is not TCP; "
                    "the proxy serves TCP and HTTP only"
                )
                continue
            self.http_ports[(service.namespace, service.name, sp.port)] = sp.is_http
            self.rings[(service.namespace, service.name, sp.port)] = EndpointRing(
                self._upstreams(service, sp)
            )
            if not _is_listenable(service):
                continue
            address = (service.cluster_ip, sp.port)
            existing = self.listeners.get(address)
            if existing is not None:
                self.notes.append(
                    f"Service {service.namespace}/{service.name} and {existing.namespace}/{existing.service} "
                    f"both claim {service.cluster_ip}:{sp.port}; the first is served"
                )
                continue
            self.listeners[address] = ListenerTarget(service.namespace, service.name, sp.port, sp.is_http)
        if not _is_listenable(service):
            self.notes.append(
                f"Service {service.namespace}/{service.name} has no clusterIP; no listener for it"
            )

    def _upstreams(self, service: Service, sp: ServicePort) -> list[Upstream]:
        upstreams = []
        for ep in service.endpoints:
            if not ep.ready:
                continue
            port = endpoint_port(service, sp, [(p.name, p.port) for p in ep.ports])
            if port is None:
                self.notes.append(
                    f"Service {service.namespace}/{service.name} port {sp.port}: endpoint {ep.address} has no "
                    f"port named {sp.target_port!r}; it gets no traffic on that port"
                )
                continue
            workload = self.pod_workloads.get((service.namespace, ep.pod), ep.pod)
            upstreams.append(Upstream(ep.address, port, ep.pod, workload))
        return upstreams


def _header_names(ir: IR) -> set[str]:
    names: set[str] = set()
    for group in ir.route_groups:
        for m in group.matches:
            names.update(h.name.lower() for h in m.headers)
    for split in ir.splits:
        for m in split.matches or ():
            names.update(h.name.lower() for h in m.headers)
    for target in ir.targets:
        for rule in target.rules:
            for m in rule.matches:
                names.update(h.name.lower() for h in m.headers)
    return names
