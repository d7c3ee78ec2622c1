"""The staged cut-over plan of a migration: what to apply first, what to check between steps, what
to delete last, and every item that needs a human.

A migration rewrites policy that is enforcing traffic right now, so the order matters more than the
objects. The plan follows one principle: **the new mesh's policy is in place before any workload
depends on it, and the old mesh's policy is removed only after nothing depends on it.**

1. Prepare: the target's CRDs and control plane, a server-side dry run, the items a human must
   settle first (errors of the lossy report, differences the equivalence check found).
2. Access policy (``01-access.yaml``): shared definitions (SMI route groups, Consul ServiceDefaults,
   Istio DestinationRules) and authorization. A mesh applies these only to its own workloads, so
   nothing changes yet; when workloads join they are protected from the first request.
3. Routing (``02-routing.yaml``): splits and routes, again inert until workloads join.
4. Move workloads, one group of namespaces at a time. A group is a connected part of the
   policy graph (a TrafficTarget links its sources' namespaces with its destination's): mTLS
   identities do not cross meshes, so a caller and its callee must move together or access policy
   on either side would refuse the other. After each group: the metrics to watch on the target mesh
   (TrafficMetrics PromQL from ``smi_bridge.metrics.queries``: denied requests per namespace, and
   per split the requests each backend takes, with the shares to expect).
5. Soak and compare: the same queries on the source mesh, side by side.
6. Delete the old configuration last: the source objects that were translated (file:line), routing
   before access so the old protection stays up longest; objects the importer passed over are
   listed as left in place.

Items that need a human are every warning or error of the import (what the source held that the IR
cannot) and of the target emission (what the target cannot say), and every difference of the
equivalence check, explained or not, with its example request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from backends.base import SourceObject, object_sort_key
from smi_bridge.diagnostics import Diagnostic, Severity
from smi_bridge.equivalence import Equivalence, describe_decision, describe_request
from smi_bridge.ir import IR, Origin, Split
from smi_bridge.metrics.kinds import NAMESPACE
from smi_bridge.metrics.model import DENIED, SUCCESS
from smi_bridge.metrics.queries import UnknownMesh, mesh_queries
from smi_bridge.metrics.window import Window

__all__ = ["HumanItem", "Plan", "Stage", "Verification", "build_plan", "stage_of"]

ACCESS_FILE, ROUTING_FILE = "01-access.yaml", "02-routing.yaml"
WINDOW = Window.parse("5m")
MAX_LISTED = 40  # plan.md lists this many splits or objects per stage; plan.json has all

_FOUNDATION_KINDS = {"ServiceDefaults", "ProxyDefaults", "DestinationRule"}
_ACCESS_KINDS = {
    "AuthorizationPolicy",
    "MeshTLSAuthentication",
    "NetworkAuthentication",
    "Server",
    "ServerAuthorization",
    "ServiceIntentions",
    "TrafficTarget",
}
_SMI_SPECS = "specs.smi-spec.io"
# API groups whose objects are the source mesh's own configuration
_SOURCE_GROUPS: dict[str, tuple[str, ...]] = {
    "smi": ("smi-spec.io",),
    "istio": ("istio.io",),
    "linkerd": ("linkerd.io", "gateway.networking.k8s.io"),
    "consul": ("consul.hashicorp.com",),
    "gateway-api": ("gateway.networking.k8s.io",),
    "proxy": ("proxy.smi-bridge.io",),
}
_LINKERD_POLICY = "policy.linkerd.io"

# How a namespace joins / leaves each mesh (its injection switch), and how to check the mesh's config.
_JOIN = {
    "istio": "kubectl label namespace {ns} istio-injection=enabled --overwrite",
    "linkerd": "kubectl annotate namespace {ns} linkerd.io/inject=enabled --overwrite",
    "consul": 'set consul.hashicorp.com/connect-inject: "true" on the pod templates in {ns} '
    "(or add {ns} to connectInject.k8sAllowNamespaces)",
    "gateway-api": "add {ns} to the mesh that implements GAMMA (Istio, Linkerd, ...), as that mesh documents",
    "proxy": "run smi-proxy beside the workloads of {ns} with the generated ProxyConfig",
    "smi": "add {ns} to the mesh that implements SMI",
}
_LEAVE = {
    "istio": "kubectl label namespace {ns} istio-injection-",
    "linkerd": "kubectl annotate namespace {ns} linkerd.io/inject-",
    "consul": "remove consul.hashicorp.com/connect-inject from the pod templates in {ns}",
    "gateway-api": "take {ns} out of the mesh that implemented GAMMA",
    "proxy": "stop smi-proxy for the workloads of {ns}",
    "smi": "take {ns} out of the mesh that implemented SMI",
}
_CONFIG_CHECK = {
    "istio": "istioctl analyze --all-namespaces  (no errors about the applied objects)",
    "linkerd": "linkerd check --proxy  (and: kubectl get httproute -A shows Accepted=True on every parent)",
    "consul": "kubectl get servicedefaults,servicesplitters,servicerouters,serviceresolvers,"
    "serviceintentions -A  (every object Synced=True)",
    "gateway-api": "kubectl get httproute,tcproute -A -o wide  (status.parents[].conditions Accepted=True "
    "and ResolvedRefs=True on every route)",
    "proxy": "smi-proxy --check-config <the ProxyConfig>  (the proxy loads it and reports no error)",
    "smi": "smi-bridge lint <the applied files>  (no errors)",
}


@dataclass(frozen=True)
class Verification:
    """One thing to check: what, how (a command or PromQL), and what to expect."""

    what: str
    expect: str = ""
    query: str = ""
    mesh: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"what": self.what}
        if self.expect:
            d["expect"] = self.expect
        if self.query:
            d["query"] = self.query
        if self.mesh:
            d["mesh"] = self.mesh
        return d


@dataclass
class Stage:
    number: int
    title: str
    why: str
    actions: list[str] = field(default_factory=list)
    file: str = ""
    objects: list[str] = field(default_factory=list)  # ``Kind namespace/name`` (sources: with file:line)
    verify: list[Verification] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "stage": self.number,
            "title": self.title,
            "why": self.why,
            "actions": self.actions,
        }
        if self.file:
            d["file"] = self.file
        d["objects"] = self.objects
        d["verify"] = [v.to_dict() for v in self.verify]
        return d


@dataclass(frozen=True)
class HumanItem:
    """Something that did not translate (or translated differently) and needs a decision."""

    origin: str  # "source" (import), "target" (emission) or "equivalence"
    code: str
    severity: str
    message: str
    location: str = ""
    resource: str = ""
    hint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass
class Plan:
    source: str
    target: str
    stages: list[Stage]
    human: list[HumanItem]
    files: dict[str, list[dict[str, Any]]]  # file name -> the target objects it holds, in apply order

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "stages": [s.to_dict() for s in self.stages],
            "needsHuman": [h.to_dict() for h in self.human],
            "files": {name: [_ref(o) for o in objs] for name, objs in self.files.items()},
        }

    def markdown(self) -> str:
        return "".join(_markdown(self))


# --- classification ---------------------------------------------------------------------------------


def stage_of(obj: Mapping[str, Any]) -> str:
    """``access`` or ``routing``: which apply step a target object belongs to."""
    kind = str(obj.get("kind", ""))
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    if kind in _FOUNDATION_KINDS or kind in _ACCESS_KINDS or group == _SMI_SPECS:
        return "access"
    if group == _LINKERD_POLICY:
        return "access"  # Linkerd's per-route authorization routes
    spec = obj.get("spec")
    parents = spec.get("parentRefs", []) if isinstance(spec, Mapping) else []
    if kind == "HTTPRoute" and any(isinstance(p, Mapping) and p.get("kind") == "Server" for p in parents):
        return "access"
    return "routing"


def _ref(obj: Mapping[str, Any]) -> str:
    md = obj.get("metadata") or {}
    ns = md.get("namespace")
    return f"{obj.get('kind', '')} {ns + '/' if ns else ''}{md.get('name', '')}"


def _where(origin: Origin) -> str:
    if not origin.file:
        return ""
    return f"{origin.file}:{origin.line}" if origin.line is not None else origin.file


def _namespace_groups(ir: IR) -> list[list[str]]:
    """Namespaces that must move together (linked by a TrafficTarget), each group sorted."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for ns in ir.namespaces():
        find(ns)
    for t in ir.targets:
        for s in t.sources:
            parent[find(s.namespace)] = find(t.destination.namespace)
        parent[find(t.namespace)] = find(t.destination.namespace)
    groups: dict[str, list[str]] = {}
    for ns in list(parent):
        groups.setdefault(find(ns), []).append(ns)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def _in_force(ir: IR) -> list[Split]:
    """The split that applies on each root (the first by name), as the reference meaning says."""
    seen: dict[tuple[str, str], Split] = {}
    for s in sorted(ir.splits, key=lambda s: (s.namespace, s.root, s.name)):
        seen.setdefault((s.namespace, s.root), s)
    return [seen[k] for k in sorted(seen)]


def _shares(split: Split) -> str:
    weights: dict[str, int] = {}
    for b in split.backends:
        weights[b.service] = weights.get(b.service, 0) + b.weight
    total = sum(weights.values())
    if not total:
        return f"every request to {split.root}"
    shares = ", ".join(f"{svc} {float(Fraction(w, total) * 100):.4g}%" for svc, w in weights.items())
    if split.matches is None:
        return shares
    routes = ", ".join(dict.fromkeys(m.name for m in split.matches)) or "(none)"
    return f"{shares} of the requests matching {routes}; every other request to {split.root}"


# --- verifications ---------------------------------------------------------------------------------


def _query(mesh: str, build: str, *args: Any) -> tuple[dict[str, str], str]:
    """The TrafficMetrics queries of ``mesh`` by metric name, or why there are none."""
    try:
        queries = mesh_queries(mesh)
    except UnknownMesh as exc:
        return {}, str(exc)
    plan = getattr(queries, build)(*args)
    return {q.metric: q.expr for q in plan.queries}, ""


def _namespace_checks(mesh: str, namespaces: Sequence[str], expect_denied: str) -> list[Verification]:
    out = []
    for ns in namespaces:
        queries, why = _query(mesh, "resource", NAMESPACE, None, ns, WINDOW)
        if not queries:
            out.append(Verification(f"requests into namespace {ns} on {mesh}", why, mesh=mesh))
            continue
        out.append(
            Verification(
                f"denied requests into namespace {ns} ({mesh}, last 5m)", expect_denied, queries[DENIED], mesh
            )
        )
        out.append(
            Verification(
                f"successful requests into namespace {ns} ({mesh}, last 5m)",
                "about the rate it had before the move",
                queries[SUCCESS],
                mesh,
            )
        )
    return out


def _split_checks(mesh: str, splits: Sequence[Split]) -> list[Verification]:
    out = []
    for split in splits:
        queries, why = _query(mesh, "split_backends", split, WINDOW)
        what = f"TrafficSplit {split.namespace}/{split.name}: requests to {split.root} per backend ({mesh}, last 5m)"
        out.append(
            Verification(
                what, f"shares {_shares(split)}" + (f"; {why}" if why else ""), queries.get(SUCCESS, ""), mesh
            )
        )
    return out


# --- the plan --------------------------------------------------------------------------------------


def _human_items(
    source_diagnostics: Iterable[Diagnostic], target_diagnostics: Iterable[Diagnostic], eq: Equivalence | None
) -> list[HumanItem]:
    items: list[HumanItem] = []
    seen: set[tuple[str, str, str]] = set()
    for origin, diags in (("source", source_diagnostics), ("target", target_diagnostics)):
        for d in sorted(diags, key=lambda d: (-d.severity, d.file or "", d.line or 0, d.code, d.message)):
            if d.severity < Severity.WARNING or (origin, d.code, d.message) in seen:
                continue
            seen.add((origin, d.code, d.message))
            location = d.location() if d.file else ""
            items.append(
                HumanItem(
                    origin,
                    d.code,
                    str(d.severity),
                    d.message,
                    location,
                    str(d.resource) if d.resource.kind else "",
                    d.hint,
                )
            )
    for g in eq.groups if eq is not None else ():
        status = (
            "named by " + ", ".join(sorted({d.code for d in g.explained_by})) if g.explained else "not named"
        )
        items.append(
            HumanItem(
                "equivalence",
                "explained" if g.explained else "unexplained",
                "warning" if g.explained else "error",
                f"{'+'.join(g.aspects)} differs on {g.count} request(s) ({status}), e.g. {describe_request(g.example)}: "
                f"before {describe_decision(g.before)}; after {describe_decision(g.after)}",
                resource="; ".join(f"{o.kind} {o.namespace}/{o.name}" for o in g.involved),
            )
        )
    return items


def build_plan(
    *,
    source: str,
    target: str,
    source_ir: IR,
    source_objects: Sequence[SourceObject],
    source_diagnostics: Sequence[Diagnostic],
    target_objects: Sequence[Mapping[str, Any]],
    target_diagnostics: Sequence[Diagnostic],
    equivalence: Equivalence | None,
) -> Plan:
    """The staged plan for moving from ``source`` (its IR and objects) to ``target``'s objects."""
    files: dict[str, list[dict[str, Any]]] = {ACCESS_FILE: [], ROUTING_FILE: []}
    for obj in sorted(target_objects, key=object_sort_key):
        files[ACCESS_FILE if stage_of(obj) == "access" else ROUTING_FILE].append(dict(obj))
    human = _human_items(source_diagnostics, target_diagnostics, equivalence)
    splits = _in_force(source_ir)
    groups = _namespace_groups(source_ir)
    blocking = [h for h in human if h.severity == "error"]

    stages: list[Stage] = []
    prepare = Stage(
        1,
        "Prepare",
        "Nothing is applied yet: make sure the target can take the objects, and settle what does not carry over.",
        actions=[
            f"install {target}'s control plane and CRDs for: "
            + (
                ", ".join(sorted({f"{o['kind']} ({o['apiVersion']})" for o in target_objects}))
                or "(no objects)"
            ),
            "kubectl apply --dry-run=server " + " ".join(f"-f {name}" for name, objs in files.items() if objs)
            if target_objects
            else "nothing to dry-run: the target receives no objects",
        ],
    )
    if blocking:
        prepare.actions.append(
            f"settle the {len(blocking)} error item(s) under 'Needs a human' before going on"
        )
    if equivalence is not None:
        prepare.verify.append(
            Verification(
                "equivalence check of the translated config",
                f"{equivalence.requests} requests decided alike on both sides"
                if equivalence.equivalent
                else f"{equivalence.differing} of {equivalence.requests} requests decided differently "
                f"({len(equivalence.unexplained())} way(s) not named by the lossy report): read 'Needs a human'",
            )
        )
    profiles: dict[str, list[str]] = {}
    if target == "linkerd":
        for o in source_objects:
            if o.origin.kind == "ServiceProfile":
                profiles.setdefault(o.origin.namespace, []).append(o.origin.name)
    if profiles:
        prepare.actions.append(
            "the input holds ServiceProfiles: Linkerd gives a ServiceProfile precedence over HTTPRoutes for the "
            "same Service, so stage 4 deletes each one as soon as its namespace has moved"
        )
    stages.append(prepare)

    access_objs = files[ACCESS_FILE]
    stages.append(
        Stage(
            2,
            "Apply access policy",
            "Authorization first: the target applies it only to its own workloads, so nothing changes yet, "
            "and every workload that joins later is protected from its first request.",
            actions=[f"kubectl apply -f {ACCESS_FILE}"]
            if access_objs
            else [
                f"nothing to apply: {target} receives no access objects (see 'Needs a human' for what that leaves open)"
            ],
            file=ACCESS_FILE if access_objs else "",
            objects=[_ref(o) for o in access_objs],
            verify=[Verification(f"{target} accepts the objects", "no errors", _CONFIG_CHECK.get(target, ""))]
            if access_objs
            else [],
        )
    )
    routing_objs = files[ROUTING_FILE]
    stages.append(
        Stage(
            3,
            "Apply routing",
            "Splits and routes next, still inert until workloads join.",
            actions=[f"kubectl apply -f {ROUTING_FILE}"]
            if routing_objs
            else ["nothing to apply: no routing objects"],
            file=ROUTING_FILE if routing_objs else "",
            objects=[_ref(o) for o in routing_objs],
            verify=[Verification(f"{target} accepts the objects", "no errors", _CONFIG_CHECK.get(target, ""))]
            if routing_objs
            else [],
        )
    )
    move = Stage(
        4,
        "Move workloads, one namespace group at a time",
        "mTLS identities do not cross meshes, so namespaces that a TrafficTarget links move together; "
        "after each group, watch the metrics below before moving the next.",
    )
    for number, group in enumerate(groups, 1):
        move.actions.append(f"group {number} of {len(groups)}, together: {', '.join(group)}")
        for ns in group:
            move.actions.append(_LEAVE.get(source, _LEAVE["smi"]).format(ns=ns))
            move.actions.append(_JOIN.get(target, _JOIN["smi"]).format(ns=ns))
        for ns in group:
            move.actions.append(f"kubectl rollout restart deployment,statefulset,daemonset -n {ns}")
            move.actions.extend(
                f"kubectl delete serviceprofiles.linkerd.io -n {ns} {name}" for name in profiles.get(ns, ())
            )
        move.verify.extend(
            _namespace_checks(target, group, "0, or what the source mesh denied before the move")
        )
    move.verify.extend(_split_checks(target, splits))
    stages.append(move)

    soak = Stage(
        5,
        "Soak and compare",
        "Run both meshes' queries over the same windows: the target should show the source's shares and no new denials.",
    )
    if source in ("istio", "linkerd", "consul", "proxy"):
        namespaces = [ns for g in groups for ns in g]
        soak.verify.extend(
            _namespace_checks(source, namespaces, "falls to 0 as namespaces leave the source mesh")
        )
        soak.verify.extend(_split_checks(source, splits))
    else:
        soak.actions.append(f"compare with the metrics the {source} mesh exposed before the move")
    stages.append(soak)

    contributing = _contributing(source_ir)
    delete = Stage(
        6,
        "Remove the old configuration last",
        "Only when every namespace runs on the target and the metrics hold: routing first, access last, so "
        "the old protection stays up longest.",
    )
    # routing first, then access, then the route definitions both refer to (no rule is left dangling)
    routing_first = sorted(
        (o for o in source_objects if _key(o) in contributing), key=lambda o: (_deletion_tier(o), _key(o))
    )
    for o in routing_first:
        kind, ns, name = _key(o)
        where = _where(o.origin)
        delete.objects.append(f"{kind} {ns}/{name}" + (f" ({where})" if where else ""))
        delete.actions.append(f"kubectl delete {_resource(o.origin)} -n {ns} {name}")
    groups_of_source = _SOURCE_GROUPS.get(source, ())
    for o in source_objects:
        if _key(o) in contributing or _inventory(o, source_ir):
            continue
        kind, ns, name = _key(o)
        where = _where(o.origin)
        label = f"{kind} {ns}/{name}" + (f" ({where})" if where else "")
        api_group = o.origin.api_version.rpartition("/")[0]
        if any(api_group == g or api_group.endswith("." + g) for g in groups_of_source):
            delete.verify.append(
                Verification(
                    f"{label} carried no policy into the translation",
                    f"delete it with the {source} mesh unless something outside the migrated traffic uses it",
                )
            )
        else:
            delete.verify.append(Verification(f"{label} is not {source} configuration", "left in place"))
    stages.append(delete)
    return Plan(source, target, stages, human, files)


def _resource(origin: Origin) -> str:
    """``plural.group`` for kubectl: kinds such as TCPRoute or AuthorizationPolicy exist in several groups."""
    kind = origin.kind.lower()
    plural = kind if kind.endswith("s") else kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
    group = origin.api_version.rpartition("/")[0]
    return f"{plural}.{group}" if group else plural


def _deletion_tier(o: SourceObject) -> int:
    kind = o.origin.kind
    group = o.origin.api_version.rpartition("/")[0]
    if kind in ("HTTPRouteGroup", "TCPRoute", "UDPRoute") and group.endswith("smi-spec.io"):
        return 2
    if kind in _ACCESS_KINDS or kind in _FOUNDATION_KINDS or group == _LINKERD_POLICY:
        return 1
    return 0


def _key(o: SourceObject) -> tuple[str, str, str]:
    return (o.origin.kind, o.origin.namespace, o.origin.name)


def _contributing(ir: IR) -> set[tuple[str, str, str]]:
    """Source objects some policy node of ``ir`` came from."""
    keys: set[tuple[str, str, str]] = set()

    def add(origin: Origin) -> None:
        if origin.kind:
            keys.add((origin.kind, origin.namespace, origin.name))

    for s in ir.splits:
        add(s.origin)
        for b in s.backends:
            add(b.origin)
        for m in s.matches or ():
            add(m.origin)
    for t in ir.targets:
        add(t.origin)
        for r in t.rules:
            add(r.origin)
            for m in r.matches:
                add(m.origin)
    for g in ir.route_groups:
        add(g.origin)
    for p in ir.port_routes:
        add(p.origin)
    return keys


def _inventory(o: SourceObject, ir: IR) -> bool:
    kind = o.origin.kind
    if kind in ("Service", "ServiceAccount", "Namespace", "Pod", "Endpoints", "EndpointSlice"):
        return True
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"):
        return True
    return any(p.origin.kind == kind and p.origin.name == o.origin.name for p in ir.pods)


# --- markdown --------------------------------------------------------------------------------------


def _markdown(plan: Plan) -> Iterable[str]:
    yield f"# Migration plan: {plan.source} to {plan.target}\n\n"
    errors = sum(1 for h in plan.human if h.severity == "error")
    yield (
        f"{len(plan.stages)} stages; {sum(len(v) for v in plan.files.values())} objects to apply; "
        f"{len(plan.human)} item(s) need a human ({errors} error(s)).\n"
    )
    for stage in plan.stages:
        yield f"\n## {stage.number}. {stage.title}\n\n{stage.why}\n"
        if stage.actions:
            yield "\nDo:\n\n"
            for a in stage.actions[: MAX_LISTED * 3]:
                yield f"- `{a}`\n" if a.startswith(("kubectl", "istioctl", "linkerd", "smi-")) else f"- {a}\n"
            if len(stage.actions) > MAX_LISTED * 3:
                yield f"- ... and {len(stage.actions) - MAX_LISTED * 3} more (plan.json)\n"
        if stage.objects:
            yield f"\nObjects{f' ({stage.file})' if stage.file else ''}:\n\n"
            for o in stage.objects[:MAX_LISTED]:
                yield f"- {o}\n"
            if len(stage.objects) > MAX_LISTED:
                yield f"- ... and {len(stage.objects) - MAX_LISTED} more (plan.json)\n"
        if stage.verify:
            yield "\nVerify:\n\n"
            for v in stage.verify[:MAX_LISTED]:
                yield f"- {v.what}" + (f": expect {v.expect}" if v.expect else "") + "\n"
                if v.query:
                    yield f"\n  ```\n  {v.query}\n  ```\n\n"
            if len(stage.verify) > MAX_LISTED:
                yield f"- ... and {len(stage.verify) - MAX_LISTED} more checks (plan.json)\n"
    yield "\n## Needs a human\n\n"
    if not plan.human:
        yield "Nothing: every object translated exactly and every generated request is decided alike.\n"
    for h in plan.human:
        where = f" at {h.location}" if h.location else ""
        about = f" ({h.resource})" if h.resource else ""
        yield f"- **{h.severity}** [{h.origin} {h.code}]{where}{about}: {h.message}\n"
        if h.hint:
            yield f"  - hint: {h.hint}\n"
