"""``smi-bridge lint [PATHS|-]``: the subcommand's options, and ``run(args) -> exit code``.

``add_parser`` registers the subcommand on the top-level parser (``smi_bridge.cli``); ``run`` turns
the options into ``LintOptions``, calls the library and writes the report to stdout. Exit codes are
the same for every output format: 0 nothing at or above ``--fail-on``, 1 findings at or above it
(unreadable input is a finding), 2 usage errors, which print one line to stderr. Values argparse
would reject with a two-line usage message (``-o``, ``--fail-on``, ``--color``) are checked here
instead, so every usage error reads the same.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from smi_bridge.diagnostics import Severity
from smi_bridge.lint.engine import AssumeVersionError, LintOptions, assume_versions, lint
from smi_bridge.lint.formatters import FORMATTERS, RenderOptions, render_checks
from smi_bridge.lint.registry import all_checks, codes
from smi_bridge.lint.suppression import Suppression, SuppressionError
from smi_bridge.load import UsageError as LoadUsageError

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
COLOR_MODES = ("auto", "always", "never")
FAIL_ON = ("error", "warning", "info")


class LintUsageError(Exception):
    """A bad option value; ``run`` prints it as one line and returns 2."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "lint",
        help="check SMI manifests (every version) for schema, reference and semantic problems",
        description="Lint SMI manifests of every version (and the Services/workloads beside them). "
        "Exit status: 0 nothing at or above --fail-on, 1 findings at or above it, 2 usage errors.",
    )
    configure(p)


def configure(p: argparse.ArgumentParser) -> None:
    """Add the lint options to ``p`` (the subcommand parser, or a standalone one)."""
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or directories; '-' (or a pipe) reads stdin"
    )
    p.add_argument(
        "-o",
        "--output",
        default="text",
        metavar="{" + ",".join(FORMATTERS) + "}",
        help="output format (default text)",
    )
    p.add_argument("--summary", action="store_true", help="text: append the counts of findings and inputs")
    p.add_argument(
        "--fail-on",
        default="error",
        metavar="{" + ",".join(FAIL_ON) + "}",
        help="lowest severity that makes the exit status 1 (default error)",
    )
    p.add_argument(
        "--suppress",
        action="append",
        default=[],
        metavar="CODE[=Kind/namespace/name]",
        help="silence a check everywhere, or for objects matching the glob (repeatable)",
    )
    p.add_argument("-n", "--namespace", default="default", help="namespace for documents without one")
    p.add_argument(
        "--assume-version",
        action="append",
        default=[],
        metavar="[KIND=]GROUP/VERSION",
        help="apiVersion for documents that have none, e.g. split.smi-spec.io/v1alpha4 (repeatable)",
    )
    p.add_argument("--strict", action="store_true", help="unknown fields and duplicate keys are errors")
    p.add_argument(
        "--color",
        default="auto",
        metavar="{" + ",".join(COLOR_MODES) + "}",
        help="colour the text output (auto: on a terminal unless NO_COLOR is set)",
    )
    p.add_argument(
        "--list-checks", action="store_true", help="print every check code, severity and description"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return execute(args, stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr, environ=os.environ)


def execute(
    args: argparse.Namespace,
    *,
    stdin: TextIO | None,
    stdout: TextIO,
    stderr: TextIO,
    environ: Any,
) -> int:
    try:
        return _execute(args, stdin, stdout, environ)
    except LintUsageError as exc:
        stderr.write(f"smi-bridge lint: error: {exc}\n")
        return EXIT_USAGE


def _execute(args: argparse.Namespace, stdin: TextIO | None, stdout: TextIO, environ: Any) -> int:
    output = args.output
    if output not in FORMATTERS:
        raise LintUsageError(f"-o {output!r}: choose one of {', '.join(FORMATTERS)}")
    if args.list_checks:
        stdout.write(render_checks(all_checks(), output))
        return EXIT_OK
    options = _options(args)
    color = _color(args.color, stdout, environ)
    paths = list(args.paths) or ["-"]
    if "-" in paths and (stdin is None or stdin.isatty()):
        raise LintUsageError("no input: give files or directories, or pipe manifests to stdin (or '-')")
    binary = stdin.buffer if stdin is not None and "-" in paths else None
    try:
        report = lint(paths, options=options, stdin=binary)
    except LoadUsageError as exc:
        raise LintUsageError(str(exc)) from None
    stdout.write(FORMATTERS[output](report, RenderOptions(color=color, summary=args.summary)))
    return report.exit_code()


def _options(args: argparse.Namespace) -> LintOptions:
    if args.fail_on.lower() not in FAIL_ON:
        raise LintUsageError(f"--fail-on {args.fail_on!r}: choose one of {', '.join(FAIL_ON)}")
    known = codes()
    try:
        suppress = tuple(Suppression.parse(s, known) for s in args.suppress)
        assumed = assume_versions(args.assume_version) if args.assume_version else None
    except (SuppressionError, AssumeVersionError) as exc:
        raise LintUsageError(str(exc)) from None
    if not args.namespace:
        raise LintUsageError("-n: the namespace must not be empty")
    return LintOptions(
        default_namespace=args.namespace,
        assume_version=assumed,
        suppress=suppress,
        strict=args.strict,
        fail_on=Severity.parse(args.fail_on),
    )


def _color(mode: str, stdout: TextIO, environ: Any) -> bool:
    if mode not in COLOR_MODES:
        raise LintUsageError(f"--color {mode!r}: choose one of {', '.join(COLOR_MODES)}")
    if mode != "auto":
        return mode == "always"
    # https://no-color.org: a set, non-empty NO_COLOR turns colour off unless asked for explicitly
    return bool(stdout.isatty()) and not environ.get("NO_COLOR")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m smi_bridge.lint.cli``: the lint subcommand on its own."""
    parser = argparse.ArgumentParser(prog="smi-bridge lint", description="Lint SMI manifests.")
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
