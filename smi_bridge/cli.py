"""The ``smi-bridge`` command line (also ``kubectl smi-bridge``): parsing and exit codes only.

Every command is a library call that returns an exit code: 0 success, 1 findings at or above the
threshold (or a lossy translation under ``--strict``), 2 usage errors. Nothing below this module
prints or exits.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from backends import REGISTRY
from backends.base import Options
from smi_bridge import __version__
from smi_bridge.diagnostics import Diagnostic, Report, Severity
from smi_bridge.load import UsageError as LoadUsageError

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


# Short-lived commands that load input, work on it and exit (not the servers).
BATCH_COMMANDS = frozenset({"lint", "convert", "translate", "import", "migrate"})


class UsageError(Exception):
    pass


def _prog() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "smi-bridge"
    return "kubectl smi-bridge" if name.startswith("kubectl-") else "smi-bridge"


def render_report(diagnostics: Sequence[Diagnostic], stream: TextIO) -> None:
    """The report as ``file:line:col: severity[CODE] message (Kind ns/name)`` lines with hints."""
    from smi_bridge.lint.formatters import render_text

    stream.write(render_text(sorted(diagnostics, key=_diag_key), color=False))


def _diag_key(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.file or "", d.line or 0, d.column or 0, d.code)


def paths_or_stdin(paths: Sequence[str]) -> list[str]:
    """No paths: read piped stdin; an interactive terminal is a usage error."""
    if paths:
        return list(paths)
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("no input: give files or directories, or pipe manifests to stdin (or '-')")
    return ["-"]


# --- translate ------------------------------------------------------------------------------------


def _add_translate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "translate",
        help="translate SMI manifests to a mesh's configuration",
        description="Translate SMI manifests (any version, plus Services/workloads as inventory) through "
        "the IR into a target's objects. Objects go to stdout (or -o), the report of what did not "
        "translate exactly to stderr.",
    )
    p.add_argument(
        "--to",
        required=True,
        metavar="TARGET",
        choices=[*REGISTRY, "all"],
        help=f"target: {', '.join(REGISTRY)} or all",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or directories; '-' or a pipe for stdin")
    p.add_argument(
        "-o",
        "--output",
        default="-",
        metavar="OUT",
        help="'-' (stdout, default), a file (one stream), or a directory (one file per object; "
        "--to all: one subdirectory per target)",
    )
    p.add_argument("--format", choices=["yaml", "json"], default="yaml")
    p.add_argument("--strict", action="store_true", help="exit 1 if any part was not translated exactly")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file or directory")
    add_translation_options(p)
    p.add_argument("-n", "--namespace", default="default", help="namespace for documents without one")
    p.add_argument(
        "--validate-with",
        action="append",
        default=[],
        metavar="CRD_DIR",
        type=Path,
        help="check every emitted object against the CRDs in this directory (repeatable)",
    )
    p.set_defaults(func=_run_translate)


def add_translation_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trust-domain", default="cluster.local", help="SPIFFE trust domain (default cluster.local)"
    )
    p.add_argument("--cluster-domain", default="cluster.local", help="Kubernetes cluster domain")
    p.add_argument(
        "--access-mode",
        choices=["enforce", "permissive"],
        default="enforce",
        help="identities with no TrafficTarget: enforce = denied (SMI default), permissive = allowed",
    )
    p.add_argument(
        "--linkerd-split",
        choices=["httproute", "serviceprofile"],
        default="httproute",
        help="linkerd target: splits as Gateway API HTTPRoute (default) or ServiceProfile dstOverrides",
    )
    p.add_argument(
        "--linkerd-control-plane-ns", default="linkerd", help="linkerd target: control-plane namespace"
    )
    p.add_argument(
        "--consul-namespaces",
        action="store_true",
        help="consul target: Consul Enterprise namespace mirroring (keep source namespaces)",
    )


def options_from(args: argparse.Namespace) -> Options:
    return Options(
        trust_domain=args.trust_domain,
        cluster_domain=args.cluster_domain,
        access_mode=args.access_mode,
        linkerd_split=args.linkerd_split,
        linkerd_control_plane_ns=args.linkerd_control_plane_ns,
        consul_namespaces=args.consul_namespaces,
    )


def _run_translate(args: argparse.Namespace) -> int:
    from smi_bridge.translate import OutputExists, targets_for, translate, write_output

    paths = paths_or_stdin(args.paths)
    for d in args.validate_with:
        if not d.exists():
            raise UsageError(f"--validate-with {d}: no such file or directory")
    targets = targets_for(args.to)
    result = translate(
        paths,
        targets,
        options_from(args),
        stdin=sys.stdin.buffer if "-" in paths else None,
        default_namespace=args.namespace,
        validate_with=args.validate_with,
    )
    try:
        write_output(
            result.outputs,
            args.output,
            args.format,
            stdout=sys.stdout,
            per_target_dirs=args.to == "all" and args.output != "-",
            overwrite=args.overwrite,
        )
    except OutputExists as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    render_report(result.report.diagnostics, sys.stderr)
    return translation_exit_code(result.report, strict=args.strict)


def translation_exit_code(report: Report, *, strict: bool) -> int:
    if report.at_or_above(Severity.ERROR):
        return EXIT_FINDINGS
    if strict and report.at_or_above(Severity.WARNING):
        return EXIT_FINDINGS
    return EXIT_OK


# --- convert --------------------------------------------------------------------------------------


def _add_convert(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "convert",
        help="convert SMI objects to another API version",
        description="Convert SMI objects to another version of the same kind. Lossy steps are reported "
        "and refused unless --allow-lossy. Without --in-place the converted manifests go to stdout.",
    )
    p.add_argument(
        "--to-version",
        action="append",
        required=True,
        metavar="VERSION",
        help="GROUP/VERSION (e.g. split.smi-spec.io/v1alpha4) or VERSION for every group that "
        "has it; repeatable",
    )
    p.add_argument("--in-place", action="store_true", help="rewrite the files (comments and key order kept)")
    p.add_argument("--allow-lossy", action="store_true", help="convert even when a step loses meaning")
    p.add_argument("-n", "--namespace", default="default", help="namespace for documents without one")
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.set_defaults(func=_run_convert)


def _run_convert(args: argparse.Namespace) -> int:
    from smi_bridge.convert import ConversionError, convert_paths, parse_targets

    paths = paths_or_stdin(args.paths)
    try:
        targets = parse_targets(args.to_version)
        data = sys.stdin.buffer.read() if "-" in paths else None
        result = convert_paths(
            paths,
            targets,
            allow_lossy=args.allow_lossy,
            in_place=args.in_place,
            default_namespace=args.namespace,
            stdin_data=data,
        )
    except ConversionError as exc:
        raise UsageError(str(exc)) from None
    if not args.in_place:
        texts = list(result.outputs.values())
        for i, text in enumerate(texts):
            if i and not text.startswith("---"):
                sys.stdout.write("---\n")
            sys.stdout.write(text)
    render_report(result.diagnostics, sys.stderr)
    return EXIT_FINDINGS if any(d.severity >= Severity.ERROR for d in result.diagnostics) else EXIT_OK


# --- the command table ----------------------------------------------------------------------------

# name -> function adding the subcommand; each sets ``func`` (args -> exit code) on its parser.
COMMANDS: dict[str, Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = {
    "translate": _add_translate,
    "convert": _add_convert,
}


def _register_lint(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from smi_bridge.lint.cli import add_parser

    add_parser(sub)


COMMANDS["lint"] = _register_lint


def _register_metrics(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from smi_bridge.metrics.cli import register

    register(sub)


COMMANDS["metrics"] = _register_metrics


def _add_verify(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify",
        help="run scenario files against the real smi-proxy",
        description="Run scenario files (fixtures/scenarios/README.md): start an echo upstream per pod, "
        "translate to the proxy, start smi-proxy, send each request group from its identity and judge "
        "the observed outcomes. --demo runs the bundled demo instead.",
    )
    p.add_argument("paths", nargs="*", metavar="SCENARIO", help="scenario files or directories")
    p.add_argument(
        "--demo", metavar="PATH", help="run the demo on these manifests and print what was observed"
    )
    p.add_argument("--requests", type=int, default=1000, help="requests the demo sends (default 1000)")
    p.set_defaults(func=_run_verify)


def _run_verify(args: argparse.Namespace) -> int:
    from smi_bridge.verify import demo, run

    if args.demo:
        return demo(args.demo, requests=args.requests)
    if not args.paths:
        raise UsageError("give scenario files or directories (or --demo PATH)")
    return run(args.paths)


COMMANDS["verify"] = _add_verify


def _register_import(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from smi_bridge.migrate_cli import add_import_parser

    add_import_parser(sub)


def _register_migrate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from smi_bridge.migrate_cli import add_migrate_parser

    add_migrate_parser(sub)


COMMANDS["import"] = _register_import
COMMANDS["migrate"] = _register_migrate


def _register_controller(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from smi_bridge.controller.cli import add_parser

    add_parser(sub)


COMMANDS["controller"] = _register_controller


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that subcommand is registered (each registration imports its
    command's modules, so a ``lint`` run does not pay for the metrics client or the planner)."""
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="Lint, convert and translate SMI (Service Mesh Interface) traffic policy.",
    )
    parser.add_argument("--version", action="version", version=f"smi-bridge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in sorted(COMMANDS):
        if only is None or name == only:
            COMMANDS[name](sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    func: Callable[[argparse.Namespace], int] = args.func
    if args.command in BATCH_COMMANDS:
        # A batch run builds millions of small objects and frees them at exit; the cyclic
        # collector would rescan them all again and again (8x slower parsing measured on the
        # 10,000-document corpus). Reference counting still frees what is dropped.
        gc.disable()
    try:
        return func(args)
    except (UsageError, LoadUsageError) as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed early (``| head``): not an error of ours
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:  # a bug of ours: one clear line, the traceback only when asked
        if os.environ.get("SMI_BRIDGE_DEBUG"):
            raise
        print(
            f"{parser.prog} {args.command}: internal error: {type(exc).__name__}: {exc} "
            "(set SMI_BRIDGE_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
