"""``smi-proxy``: the command line of the reference data plane.

    smi-proxy --config proxy.yaml [--identity mtls|source-address|header:NAME]
              [--ca CA --cert CERT --key KEY] [--http-listen ADDR] [--admin 127.0.0.1:15000]

``main`` parses arguments and calls ``run``, which returns the exit code: 0 after a clean drain
on SIGTERM/SIGINT, 1 when the config at start is invalid or a fixed listener cannot be bound,
2 for bad options. SIGHUP (or a change of the config file) reloads. ``--check-config`` only
loads, validates and compiles the config, reports what is wrong, and exits (0 or 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import resource
import signal
import ssl
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import uvloop

from proxy.admin import start_admin
from proxy.config import ConfigError, load_config
from proxy.dataplane import DataPlane, Limits
from proxy.identity import IdentityMode, server_tls_context
from proxy.listener import ListenerSet
from proxy.metrics import ProxyMetrics
from proxy.reload import ConfigReloader

log = logging.getLogger("smi-proxy")


@dataclass(frozen=True)
class ProxyOptions:
    config: Path
    check_only: bool
    identity: IdentityMode
    ca: str | None
    cert: str | None
    key: str | None
    http_listen: tuple[str, int] | None
    admin: tuple[str, int]
    watch_interval: float
    limits: Limits


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smi-proxy", description="The smi-bridge reference data plane.")
    p.add_argument(
        "--config", required=True, type=Path, help="ProxyConfig file (smi-bridge translate --to proxy)"
    )
    p.add_argument(
        "--identity",
        default="mtls",
        help="caller identity: mtls (default), source-address, or header:NAME (insecure, for demos)",
    )
    p.add_argument("--ca", help="CA bundle that signs client certificates (mtls)")
    p.add_argument("--cert", help="the proxy's certificate (mtls)")
    p.add_argument("--key", help="the proxy's private key (mtls)")
    p.add_argument("--http-listen", metavar="ADDR", help="an extra HTTP listener that routes by Host")
    p.add_argument(
        "--admin", default="127.0.0.1:15000", metavar="ADDR", help="admin listener (default %(default)s)"
    )
    p.add_argument(
        "--watch-interval", type=float, default=1.0, help="seconds between config file checks; 0: off"
    )
    d = Limits()
    p.add_argument(
        "--header-timeout", type=float, default=d.header_timeout, help="seconds to receive request headers"
    )
    p.add_argument(
        "--idle-timeout", type=float, default=d.idle_timeout, help="seconds a connection may stay idle"
    )
    p.add_argument(
        "--connect-timeout", type=float, default=d.connect_timeout, help="seconds to connect upstream"
    )
    p.add_argument(
        "--response-timeout", type=float, default=d.response_timeout, help="seconds to a response's headers"
    )
    p.add_argument("--upstream-idle-timeout", type=float, default=d.upstream_idle_timeout)
    p.add_argument(
        "--drain-timeout", type=float, default=d.drain_timeout, help="seconds to finish requests on SIGTERM"
    )
    p.add_argument("--max-request-line", type=int, default=d.max_request_line, help="bytes of request target")
    p.add_argument(
        "--max-header-bytes", type=int, default=d.max_header_bytes, help="bytes of all request headers"
    )
    p.add_argument("--max-headers", type=int, default=d.max_headers, help="number of request headers")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--check-config",
        action="store_true",
        help="load, validate and compile the config, then exit (0: valid)",
    )
    return p


def parse_options(argv: Sequence[str] | None) -> tuple[ProxyOptions | None, str, str]:
    """``(options, error, log level)``; options is None when ``error`` says what is wrong."""
    args = build_parser().parse_args(argv)
    try:
        identity = IdentityMode.parse(args.identity)
        admin = parse_address(args.admin)
        http_listen = parse_address(args.http_listen) if args.http_listen else None
    except ValueError as exc:
        return None, str(exc), args.log_level
    if identity.kind == "mtls" and not (args.ca and args.cert and args.key) and not args.check_config:
        return None, "--identity mtls needs --ca, --cert and --key", args.log_level
    limits = Limits(
        max_request_line=args.max_request_line,
        max_header_bytes=args.max_header_bytes,
        max_headers=args.max_headers,
        header_timeout=args.header_timeout,
        idle_timeout=args.idle_timeout,
        connect_timeout=args.connect_timeout,
        response_timeout=args.response_timeout,
        upstream_idle_timeout=args.upstream_idle_timeout,
        drain_timeout=args.drain_timeout,
    )
    options = ProxyOptions(
        config=args.config,
        check_only=args.check_config,
        identity=identity,
        ca=args.ca,
        cert=args.cert,
        key=args.key,
        http_listen=http_listen,
        admin=admin,
        watch_interval=args.watch_interval,
        limits=limits,
    )
    return options, "", args.log_level


def raise_file_limit() -> None:
    """Each proxied connection holds two descriptors: allow as many as the hard limit does."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def serve(options: ProxyOptions) -> int:
    try:
        cfg = load_config(options.config, "1")
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("%s", problem)
        return 1
    for note in cfg.notes:
        log.warning("%s", note)
    tls: ssl.SSLContext | None = None
    if options.identity.kind == "mtls":
        assert options.cert and options.key and options.ca
        try:
            tls = server_tls_context(options.cert, options.key, options.ca)
        except (OSError, ssl.SSLError) as exc:
            log.error("cannot load the TLS material: %s", exc)
            return 2
    elif options.identity.kind == "header":
        log.warning(
            "INSECURE: caller identity is taken from the %r request header, which any client can set; "
            "use this for demos only",
            options.identity.header.decode(),
        )
    metrics = ProxyMetrics()
    metrics.set_config(cfg.version, cfg.digest)
    plane = DataPlane(cfg, options.identity, options.limits, metrics)
    listeners = ListenerSet(plane, tls, options.http_listen)
    try:
        await listeners.start_host_router()
        admin = await start_admin(plane, *options.admin, ready=lambda: listeners.ready)
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        listeners.close()
        return 1
    await listeners.reconcile(cfg)
    settle_heap()
    plane.start()
    reloader = ConfigReloader(options.config, plane, listeners, options.watch_interval, on_swap=settle_heap)
    loop = plane.loop
    stop = asyncio.Event()
    background: set[asyncio.Task[bool]] = set()

    def on_hup() -> None:
        task = loop.create_task(reloader.reload("SIGHUP"))
        background.add(task)
        task.add_done_callback(background.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    watcher = loop.create_task(reloader.watch())
    log.info(
        "serving %s version %s (%s): %d listeners, identity %s, admin %s:%d",
        options.config,
        cfg.version,
        cfg.digest,
        len(cfg.listeners),
        options.identity,
        *options.admin,
    )
    await stop.wait()
    log.info("draining")
    watcher.cancel()
    listeners.close()
    await plane.drain()
    admin.close()
    log.info("stopped")
    return 0


def settle_heap() -> None:
    """Move everything alive now (the config, the routing tables) out of the collector's sight.

    A full collection walks every tracked object; with a large config that is a pause of tens of
    milliseconds in the middle of requests. Frozen objects are skipped, so collections only see
    what requests allocate. Called at start and after each reload.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def check_config(path: Path) -> int:
    """``--check-config``: 0 when the config would be served, 1 (with every problem logged) if not."""
    try:
        cfg = load_config(path, "1")
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("%s", problem)
        return 1
    for note in cfg.notes:
        log.warning("%s", note)
    log.info(
        "%s is valid: %d listeners, %d splits, %d traffic targets (%s)",
        path,
        len(cfg.listeners),
        len(cfg.ir.splits),
        len(cfg.ir.targets),
        cfg.digest,
    )
    return 0


def run(options: ProxyOptions) -> int:
    if options.check_only:
        return check_config(options.config)
    raise_file_limit()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(serve(options))


def main(argv: Sequence[str] | None = None) -> int:
    options, error, level = parse_options(argv)
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s smi-proxy %(levelname)s %(message)s", stream=sys.stderr
    )
    if options is None:
        log.error("%s", error)
        return 2
    return run(options)


if __name__ == "__main__":
    sys.exit(main())
