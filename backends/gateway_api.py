"""The ``gateway-api`` backend: TrafficSplits as Gateway API (GAMMA) routes on the root Service.

Emit writes ``gateway.networking.k8s.io/v1`` HTTPRoutes and TCPRoutes (TCPRoute is v1 in the
standard channel since Gateway API v1.6) attached to the root Service; the mapping, the trap list
and the reasons live in ``backends.gamma``, which the Linkerd backend shares. Gateway API has no
authorization model, so every TrafficTarget (and its rules) is consumed and reported once as not
expressible, and in ``enforce`` mode one note says that the mesh-wide default deny is not expressed
either: pair this output with a mesh's own policy (``--to istio`` or ``--to linkerd``).

Ingest reads GAMMA routes back into TrafficSplits (see ``backends.gamma``); Gateways, GRPCRoutes,
TLS/UDP routes and ReferenceGrants are reported as not translatable, other kinds listed and passed
over. The result is sorted and carries the inventory's Services and Pods.
"""

from __future__ import annotations

from collections.abc import Sequence

from backends.base import Emission, EmitContext, Options, SourceObject
from backends.gamma import (
    GATEWAY_GROUP,
    TCPROUTE_V1,
    GammaChecks,
    GammaStyle,
    emit_splits,
    ingest_routes,
    is_inventory,
    is_route,
)
from smi_bridge.diagnostics import Check, Diagnostic, Report, Severity
from smi_bridge.ir import IR

# --- translation (SMT400-SMT499) ------------------------------------------------------------------
ROOT_UNKNOWN = Check("SMT400", Severity.ERROR, "root Service (and so its ports) unknown: split not emitted")
ALL_ZERO = Check("SMT401", Severity.ERROR, "every backend weight is 0: split refused")
WEIGHTS_SCALED = Check("SMT402", Severity.WARNING, "weights above 1,000,000 scaled; ratios approximate")
PORT_UNSUPPORTED = Check("SMT403", Severity.WARNING, "UDP/SCTP root port: no standard route, not split")
METHOD_UNSUPPORTED = Check("SMT404", Severity.WARNING, "HTTP method outside Gateway API's enum: not matched")
HEADER_UNSUPPORTED = Check(
    "SMT405", Severity.WARNING, "route match not expressible (headers, length): left out"
)
MATCHES_NEED_HTTP = Check("SMT406", Severity.WARNING, "split matches on a port not marked HTTP: left unsplit")
BACKEND_PORT_MISSING = Check(
    "SMT407", Severity.INFO, "backend Service lacks the root's port: no traffic there"
)
SHARED_ROOT = Check("SMT408", Severity.WARNING, "several TrafficSplits for one root: only the first applies")
NO_REQUEST = Check("SMT409", Severity.INFO, "split applies to no request: nothing emitted")
NEVER_MATCHES = Check("SMT410", Severity.INFO, "route regex outside the RE2 subset matches nothing: left out")
ACCESS_NOT_EXPRESSIBLE = Check(
    "SMT411", Severity.WARNING, "Gateway API has no authorization: access not enforced"
)
DEFAULT_DENY = Check("SMT412", Severity.INFO, "Gateway API cannot express the mesh-wide default deny")

# --- import (SMX400-SMX499) -----------------------------------------------------------------------
UNKNOWN_KIND = Check("SMX400", Severity.INFO, "object of a kind this importer does not read: passed over")
PARENT_UNSUPPORTED = Check(
    "SMX401", Severity.WARNING, "route parent is not a Service (or unresolvable): ignored"
)
CONSUMER_ROUTE = Check("SMX402", Severity.WARNING, "consumer route (other namespace's Service): ignored")
FIELD_IGNORED = Check("SMX403", Severity.WARNING, "route field with no SMI equivalent: dropped")
BACKEND_DROPPED = Check("SMX404", Severity.WARNING, "backendRef SMI cannot hold: dropped")
PATH_PREFIX = Check("SMX405", Severity.INFO, "PathPrefix read as a path-segment prefix regex")
NO_CATCH_ALL = Check(
    "SMX406", Severity.WARNING, "route without a catch-all: unmatched requests fail in GAMMA"
)
RULES_MERGED = Check(
    "SMX407", Severity.WARNING, "rule SMI cannot hold (second backend set, failing rule): dropped"
)
ROUTE_CONFLICT = Check("SMX408", Severity.WARNING, "two routes for one Service port: the older one kept")
PORTS_DISAGREE = Check(
    "SMX409", Severity.WARNING, "routes differ per port; an SMI split has no port dimension"
)
REGEX_DIALECT = Check("SMX410", Severity.INFO, "regex read with RE2 full-match meaning")
KIND_UNSUPPORTED = Check("SMX411", Severity.WARNING, "Gateway API kind with no SMI equivalent: not imported")
MALFORMED = Check("SMX412", Severity.ERROR, "object without the shape its kind requires: not imported")

# the GAMMA findings are the constants named after GammaChecks' fields (ROOT_UNKNOWN ... MALFORMED)
GAMMA_CHECKS = GammaChecks.from_names(globals())
CHECKS: tuple[Check, ...] = GAMMA_CHECKS.listed_with(ACCESS_NOT_EXPRESSIBLE, DEFAULT_DENY, KIND_UNSUPPORTED)

STYLE = GammaStyle(checks=GAMMA_CHECKS, tcp_route_api=TCPROUTE_V1)

_UNSUPPORTED_GATEWAY_KINDS = {
    "Gateway": "north-south entry points; SMI describes mesh traffic only",
    "GatewayClass": "north-south entry points; SMI describes mesh traffic only",
    "GRPCRoute": "gRPC method routing has no SMI equivalent (SMI matches HTTP paths)",
    "TLSRoute": "SNI routing has no SMI equivalent",
    "UDPRoute": "SMI splits have no UDP route form",
    "ReferenceGrant": "SMI backends live in the split's namespace, so cross-namespace grants have no use",
    "BackendTLSPolicy": "upstream TLS settings have no SMI equivalent",
}


class GatewayAPIBackend:
    name = "gateway-api"
    description = "Gateway API (GAMMA): HTTPRoute/TCPRoute v1 attached to the root Service; no access policy"

    def emit(self, ir: IR, options: Options) -> Emission:
        ctx = EmitContext(self.name, options)
        emit_splits(ctx, ir, STYLE)
        for target in ir.targets:
            ctx.consume(target, *target.rules)
            sources = ", ".join(str(s) for s in target.sources) or "no source"
            ctx.lossy(
                ACCESS_NOT_EXPRESSIBLE.code,
                f"TrafficTarget {target.namespace}/{target.name} ({len(target.rules)} rule(s): {sources} -> "
                f"{target.destination}) is not expressed: Gateway API has no authorization, so nothing "
                "restricts who reaches that workload",
                target.origin,
                severity=ACCESS_NOT_EXPRESSIBLE.severity,
                hint="translate access with --to istio or --to linkerd alongside the routes",
            )
        if options.access_mode == "enforce" and (ir.targets or ir.services):
            ctx.lossy(
                DEFAULT_DENY.code,
                "enforce mode denies traffic to workloads that no TrafficTarget names; Gateway API routes "
                "cannot deny, so that default is not expressed",
                None,
                severity=DEFAULT_DENY.severity,
            )
        return ctx.emission()

    def ingest(self, objects: Sequence[SourceObject], inventory: IR, options: Options) -> tuple[IR, Report]:
        report = Report()
        for src in objects:
            kind = str(src.obj.get("kind", ""))
            api = str(src.obj.get("apiVersion", ""))
            if is_route(src.obj) or is_inventory(src.obj):
                continue
            if api.startswith(GATEWAY_GROUP + "/") and kind in _UNSUPPORTED_GATEWAY_KINDS:
                report.add(
                    Diagnostic.at(
                        KIND_UNSUPPORTED.code,
                        KIND_UNSUPPORTED.severity,
                        f"{kind} is not imported: {_UNSUPPORTED_GATEWAY_KINDS[kind]}",
                        src.origin,
                    )
                )
                continue
            report.add(
                Diagnostic.at(
                    UNKNOWN_KIND.code,
                    UNKNOWN_KIND.severity,
                    f"{api} {kind} is not a kind the gateway-api importer reads; passed over",
                    src.origin,
                )
            )
        result = ingest_routes(objects, inventory, GAMMA_CHECKS, report)
        report.resources = len(objects)
        ir = IR(
            services=inventory.services,
            pods=inventory.pods,
            route_groups=tuple(sorted(result.route_groups, key=lambda g: (g.namespace, g.name))),
            splits=tuple(sorted(result.splits, key=lambda s: (s.namespace, s.name))),
        )
        return ir, report
