"""``smi-bridge metrics query`` and ``smi-bridge metrics serve``: arguments in, exit code out.

``register(subparsers)`` adds the ``metrics`` command group to the main CLI's argparse
subparsers (each subcommand sets ``func(args) -> int``). The work is done by two library
functions the CLI and ``make demo`` call:

- ``metrics_query(...) -> (exit_code, output_text)``: one TrafficMetrics answer as a table, YAML or
  JSON. Notes (what the mesh cannot measure), ``--show-query`` PromQL and load diagnostics go to
  the ``messages`` stream; on failure ``output_text`` is the error message.
- ``metrics_serve(...) -> exit_code``: the API server until SIGINT/SIGTERM.

Exit codes: 0 answered; 1 Prometheus refused a query; 2 usage error (bad target, kind, window,
backend, a scope this mesh cannot measure, a TrafficSplit not among the manifests); 3 Prometheus
unreachable or too slow.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TextIO

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
from smi_bridge.metrics.service import Answer, Scope, ScopeError, TrafficMetricsService
from smi_bridge.metrics.window import Window, WindowError, parse_instant

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
    from smi_bridge.diagnostics import Severity
    from smi_bridge.translate import front

    pipeline = front(paths)
    errors = [d for d in pipeline.diagnostics() if d.severity >= Severity.ERROR]
    if messages is not None:
        for d in errors:
            messages.write(f"{d.location()}: error[{d.code}] {d.message}\n")
    return list(pipeline.ir.splits)


def metrics_query(
    *,
    backend: str,
    prometheus: str,
    target: str,
    namespace: str | None = "default",
    edges: bool = False,
    window: str = "30s",
    output: str = "table",
    show_query: bool = False,
    api_version: str = DEFAULT_API_VERSION,
    at: str | None = None,
    filenames: Sequence[str] = (),
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    messages: TextIO | None = None,
) -> tuple[int, str]:
    """One TrafficMetrics answer: ``(exit code, the object as text | the error message)``."""
    try:
        mesh = mesh_queries(backend)
        scope = parse_target(target, namespace)
        if edges:
            scope = Scope(scope.kind, scope.namespace, scope.name, edges=True)
        win = Window.parse(window)
        instant = parse_instant(at) if at is not None else None
        if output not in OUTPUTS:
            raise MetricsUsageError(f"unknown output {output!r} (choose {', '.join(OUTPUTS)})")
        if api_version not in API_VERSIONS:
            raise MetricsUsageError(f"unknown API version {api_version!r} (choose {', '.join(API_VERSIONS)})")
        if scope.kind is TRAFFICSPLIT and not filenames:
            raise MetricsUsageError(
                "a TrafficSplit's backends and weights come from its manifest: pass it with -f FILE|DIR"
            )
        splits = splits_from_manifests(filenames, messages)
    except (UnknownMesh, MetricsUsageError, ScopeError, WindowError) as exc:
        return EXIT_USAGE, f"error: {exc}"

    async def run() -> Answer:
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
    except ValueError as exc:  # a malformed --prometheus URL
        return EXIT_USAGE, f"error: {exc}"
    except PrometheusUnavailable as exc:
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
    window: str = "30s",
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    client_ca: str | None = None,
    messages: TextIO | None = None,
    on_ready: Callable[[str, int], None] | None = None,
) -> int:
    """Serve the metrics API until SIGINT or SIGTERM; 0 after a clean stop."""
    try:
        mesh = mesh_queries(backend)
        host, port = parse_listen(listen)
        default_window = Window.parse(window)
        if (tls_cert is None) != (tls_key is None):
            raise MetricsUsageError("--tls-cert and --tls-key go together")
        if client_ca and not tls_cert:
            raise MetricsUsageError("--client-ca needs --tls-cert and --tls-key")
        context = server_ssl_context(tls_cert, tls_key, client_ca) if tls_cert and tls_key else None
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
        async with client:
            api = MetricsAPI(TrafficMetricsService(client, mesh, splits), default_window=default_window)
            server = MetricsServer(api)
            try:
                bound_host, bound_port = await server.start(host, port, ssl_context=context)
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
                scheme = "https" if context else "http"
                messages.write(
                    f"serving metrics.smi-spec.io for {mesh.name} from {prometheus} on "
                    f"{scheme}://{bound_host}:{bound_port} ({len(splits)} TrafficSplits known)\n"
                )
                messages.flush()
            if on_ready is not None:
                on_ready(bound_host, bound_port)
            await stop.wait()
            await server.close()
        return EXIT_OK

    return asyncio.run(run())


# --- argparse ---------------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser) -> None:
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
        help="manifests holding TrafficSplits (for trafficsplit metrics); repeatable",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="deadline of each Prometheus query (default 10)",
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
    _common(q)
    q.add_argument(
        "target",
        metavar="KIND[/NAME]",
        help="deployment/NAME, statefulset/NAME, daemonset/NAME, pod/NAME, namespace/NAME, "
        "trafficsplit/NAME, or a kind alone for every object of it with traffic",
    )
    q.add_argument("-n", "--namespace", default="default", help="namespace of the object (default: default)")
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
    _common(s)
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
        namespace=None if args.all_namespaces else args.namespace,
        edges=args.edges,
        window=args.window,
        output=args.output,
        show_query=args.show_query,
        api_version=args.api_version,
        at=args.at,
        filenames=args.filename,
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
