"""``smi-bridge metrics query`` and ``smi-bridge metrics serve``: arguments in, exit code out.

``register(subparsers)`` adds the ``metrics`` command group to the main CLI's argparse
subparsers (each subcommand sets ``func(args) -> int``). The work is done by two library
functions the CLI and ``make demo`` call:

- ``metrics_query(...) -> (exit_code, output_text)``: one TrafficMetrics answer as a table, YAML or
  JSON. Notes (what the mesh cannot measure), ``--show-query`` PromQL and load diagnostics go to
  the ``messages`` stream; on failure ``output_text`` is the error message.
- ``metrics_serve(...) -> exit_code``: the API server until SIGINT/SIGTERM.

TrafficSplits (for ``trafficsplit/NAME``) come from manifests (``-f``) or, with ``--kubeconfig``
and/or ``--context``, from the cluster's API server (``ClusterSplits``: ``query`` lists the
namespace's TrafficSplits once, ``serve`` at every request). Both go through the same parse and
build (``splits_from_manifests``, ``splits_from_cluster_objects``). ``-f`` together with
``--kubeconfig``/``--context`` is a usage error: the split would have two sources.

Exit codes: 0 answered; 1 Prometheus refused a query; 2 usage error (bad target, kind, window,
backend, a scope this mesh cannot measure, a TrafficSplit not among the manifests or not in the
cluster's namespace, a cluster that serves no TrafficSplits, an unusable kubeconfig, ``-f`` with
``--kubeconfig``); 3 Prometheus or the Kubernetes API server unreachable, too slow, or refusing
us (401, 403, 5xx).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TextIO

import yaml

from smi_bridge import ir
from smi_bridge.metrics.kinds import NAMESPACE, TRAFFICSPLIT, UnknownKind, resolve_kind
from smi_bridge.metrics.model import (
    API_VERSIONS,
    DEFAULT_API_VERSION,
    DENIED,
    FAILURE,
    P50,
    P90,
    P99,
    SUCCESS,
    TrafficMetrics,
    TrafficMetricsList,
)
from smi_bridge.metrics.prometheus import (
    DEFAULT_TIMEOUTS,
    PrometheusClient,
    PrometheusUnavailable,
    QueryFailed,
    Timeouts,
)
from smi_bridge.metrics.queries import LOOKUP, MESHES, UnknownMesh, mesh_queries
from smi_bridge.metrics.server import MetricsAPI, MetricsServer, server_ssl_context
from smi_bridge.metrics.service import Answer, Scope, ScopeError, SplitsUnavailable, TrafficMetricsService
from smi_bridge.metrics.window import Window, WindowError, parse_instant

if TYPE_CHECKING:
    from smi_bridge.controller.kubeapi import ClusterConfig, KubeClient, ResourceType
    from smi_bridge.diagnostics import Diagnostic
    from smi_bridge.load import LoadResult

EXIT_OK, EXIT_QUERY, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
OUTPUTS = ("table", "yaml", "json")


class MetricsUsageError(ValueError):
    pass


def parse_target(target: str, namespace: str | None) -> Scope:
    """``deployment/web``, ``deploy/web``, ``ns/shop``, ``trafficsplit/web`` or a bare kind (a list)."""
    kind_text, sep, name = target.partition("/")
    if not kind_text or (sep and not name) or "/" in name:
        raise MetricsUsageError(f"{target!r} is not KIND/NAME or KIND (e.g. deployment/web, ns/shop, ts/web)")
    try:
        kind = resolve_kind(kind_text)
    except UnknownKind as exc:
        raise MetricsUsageError(str(exc)) from None
    if kind is NAMESPACE:
        return Scope(kind, None, name or None)
    return Scope(kind, namespace, name or None)


def splits_from_manifests(paths: Sequence[str], messages: TextIO | None) -> list[ir.Split]:
    """TrafficSplits (any SMI version) from manifests, through the same load/parse/build as lint."""
    if not paths:
        return []
    from smi_bridge.load import load

    splits, errors = _built_splits(load(paths))
    _report(errors, messages)
    return splits


def splits_from_cluster_objects(
    objects: Sequence[Mapping[str, Any]],
) -> tuple[list[ir.Split], list[Diagnostic]]:
    """TrafficSplits from live objects: each becomes a Document as the controller makes them
    (``desired.document_for``), then the parse and build ``-f`` manifests go through; plus the
    error findings."""
    from smi_bridge.controller.desired import document_for
    from smi_bridge.load import LoadResult

    loaded = LoadResult(
        documents=[document_for(o) for o in objects], diagnostics=[], files=0, skipped_documents=0
    )
    splits, errors = _built_splits(loaded)
    # Only TrafficSplits are read from the cluster, so the HTTPRouteGroups a split's matches name are
    # not in this input; they do not change which backends are measured, so that is no error here.
    return splits, [d for d in errors if d.code != "SMB030"]


def _built_splits(loaded: LoadResult) -> tuple[list[ir.Split], list[Diagnostic]]:
    """``translate.front`` after its load (the parse and build of lint and translate): the
    TrafficSplits, and the findings at error severity."""
    from smi_bridge.build import build
    from smi_bridge.diagnostics import Severity
    from smi_bridge.parse import parse_documents
    from smi_bridge.translate import Pipeline

    parsed = parse_documents(loaded.documents, default_namespace="default")
    pipeline = Pipeline(loaded, parsed, build(parsed.resources))
    errors = [d for d in pipeline.diagnostics() if d.severity >= Severity.ERROR]
    return list(pipeline.ir.splits), errors


def _report(errors: Sequence[Diagnostic], messages: TextIO | None) -> None:
    if messages is not None:
        for d in errors:
            messages.write(f"{d.location()}: error[{d.code}] {d.message}\n")


# --- TrafficSplits from the cluster -------------------------------------------------------------------

SPLIT_GROUP = "split.smi-spec.io"


class ClusterSplits:
    """The TrafficSplits of a namespace, listed from the cluster's API server at every call.

    Discovery (cached until a list answers 404) finds the ``split.smi-spec.io`` versions served; the
    list uses the first one in the server's preference order that smi-bridge reads, as the
    controller does (every served version shows the same stored objects). The items then go
    through ``splits_from_cluster_objects``. Failures are one-line messages naming the server:
    ``ScopeError`` (404) when the cluster serves no TrafficSplits or lacks the split,
    ``SplitsUnavailable`` when the API cannot be reached or refuses us.
    """

    def __init__(
        self, client: KubeClient, *, timeout: float | None = None, messages: TextIO | None = None
    ) -> None:
        self.client = client
        self.server = client.config.host
        self.timeout = timeout  # the client's deadline, for the message when it passes
        self.messages = messages  # error findings of the listed objects go here (None: nowhere)
        self._type: ResourceType | None = None

    async def split(self, namespace: str, name: str) -> ir.Split:
        """The TrafficSplit ``namespace/name`` as the cluster holds it now."""
        splits, listed, errors = await self.read(namespace)
        for split in splits:
            if (split.namespace, split.name) == (namespace, name):
                return split
        if name in listed:
            why = [d.message for d in errors if d.resource.kind == "TrafficSplit" and d.resource.name == name]
            raise ScopeError(
                f"TrafficSplit {namespace}/{name} on the Kubernetes API server at {self.server} cannot be "
                f"measured: {_one_line(why[0]) if why else 'it does not build'}",
                404,
            )
        there = ", ".join(sorted(listed)) or "none"
        raise ScopeError(
            f"TrafficSplit {namespace}/{name} not found on the Kubernetes API server at {self.server} "
            f"(TrafficSplits in namespace {namespace}: {there})",
            404,
        )

    async def read(self, namespace: str) -> tuple[list[ir.Split], list[str], list[Diagnostic]]:
        """The namespace's TrafficSplits that build, the names of every one listed, the errors."""
        rt, objects = await self._list(namespace)
        # CRD list items carry apiVersion and kind; set them in case a server leaves them out
        objects = [{"apiVersion": rt.api_version, "kind": rt.kind, **o} for o in objects]
        splits, errors = splits_from_cluster_objects(objects)
        _report(errors, self.messages)
        names = [str((o.get("metadata") or {}).get("name", "")) for o in objects]
        return splits, names, errors

    async def resource_type(self) -> ResourceType:
        """The served TrafficSplit version to list (ScopeError 404 when none is served)."""
        if self._type is not None:
            return self._type
        from smi_bridge.controller.kubeapi import ApiError
        from smi_bridge.model import KIND_VERSIONS

        try:
            discovery = await self.client.discover([SPLIT_GROUP])
        except (ApiError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise self._unavailable(exc, f"discovery of {SPLIT_GROUP}") from None
        served = discovery.kinds_in(SPLIT_GROUP).get("TrafficSplit", [])
        if not served:
            raise ScopeError(
                f"the Kubernetes API server at {self.server} does not serve TrafficSplits "
                f"({SPLIT_GROUP}): is the SMI TrafficSplit CRD installed?",
                404,
            )
        known = KIND_VERSIONS.get((SPLIT_GROUP, "TrafficSplit"), ())
        self._type = next((rt for rt in served if rt.version in known), served[0])
        return self._type

    async def _list(self, namespace: str) -> tuple[ResourceType, list[dict[str, Any]]]:
        from smi_bridge.controller.kubeapi import ApiError

        for attempt in (1, 2):
            rt = await self.resource_type()
            doing = f"list of {rt.plural}.{rt.group}/{rt.version} in namespace {namespace}"
            items: list[dict[str, Any]] = []
            token: str | None = None
            try:
                while True:
                    page = await self.client.list_objects(rt, namespace, limit=500, continue_=token)
                    items += [o for o in page.get("items") or [] if isinstance(o, dict)]
                    token = (page.get("metadata") or {}).get("continue") or None
                    if not token:
                        return rt, items
            except ApiError as exc:
                if exc.status == 404 and attempt == 1:
                    self._type = None  # the CRD, or this version of it, went away: discover again
                    continue
                raise self._unavailable(exc, doing) from None
            except (ValueError, TypeError, AttributeError) as exc:
                raise self._unavailable(exc, doing) from None
        raise AssertionError("unreachable")

    def _unavailable(self, exc: Exception, doing: str) -> SplitsUnavailable:
        from smi_bridge.controller.kubeapi import ApiError

        where = f"the Kubernetes API server at {self.server}"
        if not isinstance(exc, ApiError):
            text = f"{where} gave an unreadable answer to the {doing}: {exc}"
        elif exc.status == 0:
            text = f"{where} {_no_answer(exc.message, self.timeout)}"
        elif exc.status == 401:
            text = f"{where} did not accept our credentials for the {doing} (401 Unauthorized: {exc.message})"
        elif exc.status == 403:
            text = f"{where} forbids the {doing} (403 Forbidden: {exc.message})"
        else:
            text = f"{where} failed the {doing}: {exc.status} {exc.reason}: {exc.message}"
        return SplitsUnavailable(_one_line(text))


def _no_answer(message: str, timeout: float | None) -> str:
    """KubeClient's ``ConnectError: ...`` / ``ReadTimeout: ...`` as the rest of a sentence."""
    kind, _, detail = message.partition(": ")
    if "Timeout" in kind:
        return f"did not answer within {timeout:g}s" if timeout else "did not answer in time"
    if kind == "ConnectError" and detail in ("", "All connection attempts failed"):
        return "is unreachable: cannot connect"
    return f"is unreachable: {message}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def cluster_config(kubeconfig: str | None, context: str | None) -> ClusterConfig:
    """The kubeconfig (``$KUBECONFIG`` or ~/.kube/config when only ``--context`` is given), or
    MetricsUsageError saying what is wrong with it."""
    from smi_bridge.controller.kubeapi import ConfigError, load_config

    try:
        return load_config(kubeconfig, context)
    except ConfigError as exc:
        raise MetricsUsageError(str(exc)) from None


def kube_client(cfg: ClusterConfig, timeouts: Timeouts) -> KubeClient:
    """The controller's API client, with the metrics CLI's deadline and few retries."""
    from smi_bridge.controller.kubeapi import KubeClient

    try:
        return KubeClient(cfg, timeout=timeouts.request, retries=1, max_connections=8)
    except OSError as exc:  # an unreadable client certificate or CA file
        raise MetricsUsageError(f"cannot use the credentials for {cfg.host}: {exc}") from None


# metrics_query's namespace when -n is not given (never a valid namespace name, so never a user's)
CONTEXT_NAMESPACE = ":context:"


def _split_source(
    filenames: Sequence[str], kubeconfig: str | None, context: str | None
) -> ClusterConfig | None:
    """The cluster TrafficSplits are read from (None: from ``filenames``, if any)."""
    if kubeconfig is None and context is None:
        return None
    if filenames:
        flag = "--kubeconfig" if kubeconfig is not None else "--context"
        raise MetricsUsageError(
            f"-f and {flag} are two sources for the TrafficSplits: pass the manifests (-f) "
            "or read them from the cluster (--kubeconfig/--context), not both"
        )
    return cluster_config(kubeconfig, context)


def metrics_query(
    *,
    backend: str,
    prometheus: str,
    target: str,
    namespace: str | None = "default",  # None: every namespace; CONTEXT_NAMESPACE: see below
    edges: bool = False,
    window: str = "30s",
    output: str = "table",
    show_query: bool = False,
    api_version: str = DEFAULT_API_VERSION,
    at: str | None = None,
    filenames: Sequence[str] = (),
    kubeconfig: str | None = None,
    context: str | None = None,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    messages: TextIO | None = None,
) -> tuple[int, str]:
    """One TrafficMetrics answer: ``(exit code, the object as text | the error message)``.

    A TrafficSplit comes from ``filenames``, or from the cluster when ``kubeconfig`` or ``context``
    is given (both at once is a usage error). ``namespace=CONTEXT_NAMESPACE`` is what kubectl does
    without ``-n``: the namespace of the kubeconfig context in use, else ``default``.
    """
    try:
        mesh = mesh_queries(backend)
        cfg = _split_source(filenames, kubeconfig, context)
        if namespace == CONTEXT_NAMESPACE:
            namespace = (cfg.namespace if cfg is not None else None) or "default"
        scope = parse_target(target, namespace)
        if edges:
            scope = Scope(scope.kind, scope.namespace, scope.name, edges=True)
        win = Window.parse(window)
        instant = parse_instant(at) if at is not None else None
        if output not in OUTPUTS:
            raise MetricsUsageError(f"unknown output {output!r} (choose {', '.join(OUTPUTS)})")
        if api_version not in API_VERSIONS:
            raise MetricsUsageError(f"unknown API version {api_version!r} (choose {', '.join(API_VERSIONS)})")
        if scope.kind is TRAFFICSPLIT:
            if not filenames and cfg is None:
                raise MetricsUsageError(
                    "a TrafficSplit's backends and weights come from its manifest: pass it with -f FILE|DIR, "
                    "or read it from the cluster with --kubeconfig FILE or --context NAME"
                )
            if scope.namespace is None:
                raise MetricsUsageError(
                    "a TrafficSplit is read from one namespace: give -n NAMESPACE, not -A/--all-namespaces"
                )
        splits = splits_from_manifests(filenames, messages)
    except (UnknownMesh, MetricsUsageError, ScopeError, WindowError) as exc:
        return EXIT_USAGE, f"error: {exc}"

    async def run() -> Answer:
        if cfg is not None and scope.kind is TRAFFICSPLIT:
            assert scope.namespace is not None and scope.name is not None
            kube = kube_client(cfg, timeouts)
            try:
                cluster = ClusterSplits(kube, timeout=timeouts.request, messages=messages)
                splits.append(await cluster.split(scope.namespace, scope.name))
            finally:
                await kube.aclose()
        async with PrometheusClient(prometheus, timeouts=timeouts) as client:
            service = TrafficMetricsService(client, mesh, splits, api_version=api_version)
            if show_query and messages is not None:
                plans, _ = service.plan(scope, win)
                for plan in plans:
                    if plan.lookup is not None:
                        messages.write(
                            f"# lookup (direction {plan.direction}): its {plan.lookup.label} values replace "
                            f"{LOOKUP} below\n{plan.lookup.expr}\n"
                        )
                    for q in plan.queries:
                        messages.write(
                            f"# {q.metric} (direction {plan.direction}, {plan.side} side)\n{q.expr}\n"
                        )
            return await service.answer(scope, win, instant)

    try:
        answer = asyncio.run(run())
    except ScopeError as exc:
        return EXIT_USAGE, f"error: {exc}"
    except ValueError as exc:  # a malformed --prometheus URL, unusable cluster credentials
        return EXIT_USAGE, f"error: {exc}"
    except (PrometheusUnavailable, SplitsUnavailable) as exc:
        return EXIT_UNAVAILABLE, f"error: {exc}"
    except QueryFailed as exc:
        return EXIT_QUERY, f"error: {exc}\nquery: {exc.expr}"
    if messages is not None:
        for note in answer.notes:
            messages.write(f"note: {note}\n")
    return EXIT_OK, render(answer.obj, output, api_version)


def render(
    obj: TrafficMetrics | TrafficMetricsList, output: str, api_version: str = DEFAULT_API_VERSION
) -> str:
    if output == "json":
        return json.dumps(obj.wire(api_version), indent=2) + "\n"
    if output == "yaml":
        return str(yaml.safe_dump(obj.wire(api_version), sort_keys=False))
    return table(obj)


def table(obj: TrafficMetrics | TrafficMetricsList) -> str:
    """A kubectl-style table: one row per item, latencies in ms, success rate over answered requests."""
    items = obj.items or [] if isinstance(obj, TrafficMetricsList) else [obj]
    split = any(i.backend is not None for i in items)
    edges = any(i.edge is not None and i.edge.resource is not None for i in items)
    header = ["NAMESPACE", "NAME"]
    if split:
        header += ["BACKEND", "WEIGHT"]
    if edges:
        header += ["DIRECTION", "PEER"]
    header += ["SUCCESS", "FAILURE", "DENIED", "SUCCESS%", "P50", "P90", "P99", "WINDOW"]
    rows = [header]
    for i in items:
        res = i.resource
        row = [(res.namespace if res else None) or "-", (res.name if res else None) or "-"]
        if split:
            row += [i.backend.name, str(i.backend.weight)] if i.backend else ["-", "-"]
        if edges:
            peer = i.edge.resource if i.edge else None
            row += [i.edge.direction if i.edge else "-", str(peer) if peer else "-"]
        ok, bad = i.value(SUCCESS), i.value(FAILURE)
        rate = f"{float(ok * 100 / (ok + bad)):.2f}%" if ok + bad else "-"
        row += [str(i.value(SUCCESS)), str(i.value(FAILURE)), str(i.value(DENIED)), rate]
        row += [_ms(i, name) for name in (P50, P90, P99)]
        row.append(i.window or "-")
        rows.append(row)
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    return "".join(
        "   ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in rows
    )


def _ms(item: TrafficMetrics, name: str) -> str:
    value = item.value(name)
    text = f"{Decimal(value.numerator) / Decimal(value.denominator):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}ms"


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` (every interface)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise MetricsUsageError(f"--listen {text!r} is not HOST:PORT")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def metrics_serve(
    *,
    backend: str,
    prometheus: str,
    listen: str = "127.0.0.1:8080",
    filenames: Sequence[str] = (),
    kubeconfig: str | None = None,
    context: str | None = None,
    window: str = "30s",
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    client_ca: str | None = None,
    messages: TextIO | None = None,
    on_ready: Callable[[str, int], None] | None = None,
) -> int:
    """Serve the metrics API until SIGINT or SIGTERM; 0 after a clean stop.

    With ``kubeconfig`` or ``context`` every TrafficSplit request reads the split from the cluster
    (an API failure answers 503); otherwise the splits are those of ``filenames``.
    """
    try:
        mesh = mesh_queries(backend)
        host, port = parse_listen(listen)
        default_window = Window.parse(window)
        if (tls_cert is None) != (tls_key is None):
            raise MetricsUsageError("--tls-cert and --tls-key go together")
        if client_ca and not tls_cert:
            raise MetricsUsageError("--client-ca needs --tls-cert and --tls-key")
        tls = server_ssl_context(tls_cert, tls_key, client_ca) if tls_cert and tls_key else None
        cfg = _split_source(filenames, kubeconfig, context)
        splits = splits_from_manifests(filenames, messages)
    except (UnknownMesh, MetricsUsageError, WindowError, OSError) as exc:
        if messages is not None:
            messages.write(f"error: {exc}\n")
        return EXIT_USAGE

    async def run() -> int:
        try:
            client = PrometheusClient(prometheus, timeouts=timeouts)
        except ValueError as exc:
            if messages is not None:
                messages.write(f"error: {exc}\n")
            return EXIT_USAGE
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(client.aclose)
            kube: KubeClient | None = None
            if cfg is not None:
                try:
                    kube = kube_client(cfg, timeouts)
                except MetricsUsageError as exc:
                    if messages is not None:
                        messages.write(f"error: {exc}\n")
                    return EXIT_USAGE
                stack.push_async_callback(kube.aclose)
            source = ClusterSplits(kube, timeout=timeouts.request).split if kube is not None else None
            service = TrafficMetricsService(client, mesh, splits, split_source=source)
            server = MetricsServer(MetricsAPI(service, default_window=default_window))
            try:
                bound_host, bound_port = await server.start(host, port, ssl_context=tls)
            except OSError as exc:
                if messages is not None:
                    messages.write(f"error: cannot listen on {listen}: {exc}\n")
                return EXIT_USAGE
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            if messages is not None:
                scheme = "https" if tls else "http"
                known = (
                    f"TrafficSplits from the Kubernetes API server at {kube.config.host}"
                    if kube is not None
                    else f"{len(splits)} TrafficSplits known"
                )
                messages.write(
                    f"serving metrics.smi-spec.io for {mesh.name} from {prometheus} on "
                    f"{scheme}://{bound_host}:{bound_port} ({known})\n"
                )
                messages.flush()
            if on_ready is not None:
                on_ready(bound_host, bound_port)
            await stop.wait()
            await server.close()
        return EXIT_OK

    return asyncio.run(run())


# --- argparse ---------------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser, *, serve: bool) -> None:
    p.add_argument(
        "--backend", required=True, metavar="MESH", help=f"whose metrics to read: {', '.join(MESHES)}"
    )
    p.add_argument(
        "--prometheus", required=True, metavar="URL", help="Prometheus base URL, e.g. http://127.0.0.1:9090"
    )
    p.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        metavar="PATH",
        help="manifests holding TrafficSplits (for trafficsplit metrics); repeatable; "
        "not together with --kubeconfig/--context (a usage error: two sources for one split)",
    )
    where = "the namespace of each request" if serve else "the -n namespace"
    p.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help=f"read TrafficSplits from this kubeconfig's cluster instead of -f: the served "
        f"split.smi-spec.io version, listed in {where}",
    )
    p.add_argument(
        "--context",
        metavar="NAME",
        help="the kubeconfig context to use; alone, it reads TrafficSplits from that context of "
        "$KUBECONFIG or ~/.kube/config",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="deadline of each Prometheus query and Kubernetes API request (default 10)",
    )
    p.add_argument(
        "--connect-timeout",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="deadline for connecting to Prometheus (default 2)",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``metrics query`` and ``metrics serve`` to the main CLI."""
    group = subparsers.add_parser(
        "metrics", help="TrafficMetrics (metrics.smi-spec.io) from a mesh's Prometheus"
    )
    sub = group.add_subparsers(dest="metrics_command", metavar="SUBCOMMAND", required=True)

    q = sub.add_parser(
        "query", help="the TrafficMetrics of one object, its edges, or a TrafficSplit's backends"
    )
    _common(q, serve=False)
    q.add_argument(
        "target",
        metavar="KIND[/NAME]",
        help="deployment/NAME, statefulset/NAME, daemonset/NAME, pod/NAME, namespace/NAME, "
        "trafficsplit/NAME, or a kind alone for every object of it with traffic",
    )
    q.add_argument(
        "-n",
        "--namespace",
        help="namespace of the object (default: the kubeconfig context's with --kubeconfig/--context, else default)",
    )
    q.add_argument("-A", "--all-namespaces", action="store_true", help="with a kind alone: every namespace")
    q.add_argument("--edges", action="store_true", help="the object's edges: traffic from and to each peer")
    q.add_argument("--window", default="30s", help="Go duration the metrics cover, ending now (default 30s)")
    q.add_argument("--at", metavar="TIME", help="end of the window (RFC 3339 or Unix seconds; default now)")
    q.add_argument("-o", "--output", choices=OUTPUTS, default="table")
    q.add_argument(
        "--api-version", choices=API_VERSIONS, default=DEFAULT_API_VERSION, help="v1alpha2 adds edge.side"
    )
    q.add_argument("--show-query", action="store_true", help="print the PromQL (to stderr) before running it")
    q.set_defaults(func=_run_query)

    s = sub.add_parser("serve", help="serve the metrics.smi-spec.io API (kubectl get --raw, an APIService)")
    _common(s, serve=True)
    s.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT", help="default 127.0.0.1:8080")
    s.add_argument("--window", default="30s", help="window when a request has no ?t= (default 30s)")
    s.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    s.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    s.add_argument("--client-ca", metavar="FILE", help="require client certificates signed by this CA")
    s.set_defaults(func=_run_serve)


def _timeouts(args: argparse.Namespace) -> Timeouts:
    return Timeouts(connect=args.connect_timeout, request=args.timeout)


def _run_query(args: argparse.Namespace) -> int:
    code, text = metrics_query(
        backend=args.backend,
        prometheus=args.prometheus,
        target=args.target,
        namespace=None if args.all_namespaces else (args.namespace or CONTEXT_NAMESPACE),
        edges=args.edges,
        window=args.window,
        output=args.output,
        show_query=args.show_query,
        api_version=args.api_version,
        at=args.at,
        filenames=args.filename,
        kubeconfig=args.kubeconfig,
        context=args.context,
        timeouts=_timeouts(args),
        messages=sys.stderr,
    )
    (sys.stdout if code == EXIT_OK else sys.stderr).write(text if text.endswith("\n") else text + "\n")
    return code


def _run_serve(args: argparse.Namespace) -> int:
    return metrics_serve(
        backend=args.backend,
        prometheus=args.prometheus,
        listen=args.listen,
        filenames=args.filename,
        kubeconfig=args.kubeconfig,
        context=args.context,
        window=args.window,
        timeouts=_timeouts(args),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        client_ca=args.client_ca,
        messages=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m smi_bridge.metrics.cli query|serve ...`` (the same as ``smi-bridge metrics ...``)."""
    parser = argparse.ArgumentParser(prog="smi-bridge")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["metrics", *(sys.argv[1:] if argv is None else argv)])
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
