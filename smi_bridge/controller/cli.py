"""``smi-bridge controller``: argument parsing for the controller, and its exit codes.

``add_parser(subparsers)`` registers the subcommand (``smi_bridge.cli`` calls it); ``run(args)``
configures logging, builds the ``Controller`` and runs it until SIGTERM or SIGINT. Exit codes: 0 on
a clean shutdown, 1 when a controller loop fails, 2 for usage or configuration errors.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from smi_bridge.cli import add_translation_options
    from smi_bridge.controller.reconciler import CONTROLLER_BACKENDS

    p = subparsers.add_parser(
        "controller",
        help="watch SMI objects in a cluster and keep a mesh's configuration in step",
        description="Watch every served SMI kind plus Services, ServiceAccounts, Pods, workloads and "
        "EndpointSlices; translate them with the same pipeline as `translate`; write the result by "
        "server-side apply (field manager smi-bridge); prune what it no longer emits; report "
        "diagnostics as Events on the SMI objects.",
    )
    p.add_argument("--backend", required=True, choices=CONTROLLER_BACKENDS, help="the mesh to configure")
    p.add_argument(
        "--kubeconfig", metavar="FILE", help="kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument(
        "--watch-namespace",
        action="append",
        default=[],
        metavar="NS",
        help="watch and write only in this namespace (repeatable; default: all namespaces)",
    )
    add_translation_options(p)  # the same flags, the same Options, as translate and migrate
    p.add_argument(
        "--leader-elect", action="store_true", help="run several replicas; only the Lease holder writes"
    )
    p.add_argument(
        "--leader-election-namespace", help="namespace of the Lease (default: the Pod's namespace)"
    )
    p.add_argument("--leader-election-id", help="name of the Lease (default smi-bridge-<backend>)")
    p.add_argument("--lease-duration", type=float, default=15.0, metavar="SECONDS")
    p.add_argument("--renew-deadline", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--retry-period", type=float, default=2.0, metavar="SECONDS")
    p.add_argument(
        "--identity", help="this replica's name in the Lease (default: $POD_NAME or hostname + suffix)"
    )
    p.add_argument("--metrics-addr", default=":8080", metavar="ADDR", help="/metrics address (0 disables)")
    p.add_argument(
        "--health-addr", default=":8081", metavar="ADDR", help="/healthz and /readyz address (0 disables)"
    )
    p.add_argument(
        "--discovery-interval",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how often to look for SMI and target CRDs that appeared or went away",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run)


def _config(args: argparse.Namespace) -> tuple[object, object]:
    from smi_bridge.cli import options_from
    from smi_bridge.controller.health import parse_address
    from smi_bridge.controller.kubeapi import load_config
    from smi_bridge.controller.run import ControllerConfig, default_identity, default_namespace

    for flag in ("metrics_addr", "health_addr"):
        parse_address(getattr(args, flag))  # ValueError: a usage error
    if not args.retry_period < args.renew_deadline < args.lease_duration:
        raise ValueError("--retry-period < --renew-deadline < --lease-duration is required")
    options = options_from(args)
    cluster = load_config(args.kubeconfig, args.context)
    config = ControllerConfig(
        backend=args.backend,
        options=options,
        namespaces=tuple(dict.fromkeys(args.watch_namespace)) or None,
        leader_elect=args.leader_elect,
        lease_namespace=args.leader_election_namespace or default_namespace(),
        lease_name=args.leader_election_id or f"smi-bridge-{args.backend}",
        identity=args.identity or default_identity(),
        lease_duration=args.lease_duration,
        renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
        metrics_addr=args.metrics_addr,
        health_addr=args.health_addr,
        discovery_interval=args.discovery_interval,
    )
    return cluster, config


async def _serve(cluster: object, config: object) -> int:
    from smi_bridge.controller.kubeapi import ClusterConfig, KubeClient
    from smi_bridge.controller.run import Controller, ControllerConfig

    assert isinstance(cluster, ClusterConfig) and isinstance(config, ControllerConfig)
    client = KubeClient(cluster)
    controller = Controller(client, config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, controller.stop)
    try:
        return await controller.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await client.aclose()


def run(args: argparse.Namespace) -> int:
    from smi_bridge.controller.kubeapi import ConfigError

    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        cluster, config = _config(args)
    except (ValueError, ConfigError) as exc:
        print(f"smi-bridge controller: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_serve(cluster, config))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m smi_bridge.controller``: the subcommand without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="smi-bridge")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["controller", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)
    return code


__all__ = ["add_parser", "main", "run"]
