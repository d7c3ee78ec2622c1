"""``smi-bridge import`` and ``smi-bridge migrate``: argument parsing, output and exit codes only.

``add_parser(subparsers)`` registers both commands; each sets ``func(args) -> int``. The work is
``smi_bridge.migrate``; this module writes what it returns:

- ``import --from MESH PATHS``: SMI manifests on stdout (or ``-o`` a file or directory), the
  report on stderr. Exit 1 when the input or the SMI output has errors.
- ``migrate --from SOURCE --to TARGET PATHS``: the target's objects on stdout and the report, the
  equivalence check and a plan summary on stderr; ``-o json``: the full report as one JSON document
  on stdout; ``-o DIR``: ``01-access.yaml``, ``02-routing.yaml``, ``plan.md``, ``plan.json`` and
  ``report.txt`` in DIR (written into a temporary sibling and renamed, so never half-written).
  Exit 1 when a request is decided differently and the lossy report does not name why, or when
  anything is lossy and ``--accept-lossy`` is not given; 2 on usage errors.

A progress bar (rich, on stderr) appears when stderr is a terminal and the run takes over a second.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO

import yaml

from backends.base import Options
from smi_bridge.diagnostics import Diagnostic
from smi_bridge.emit_smi import VERSIONS, SmiVersions, VersionError
from smi_bridge.equivalence import iter_lines

if TYPE_CHECKING:
    from smi_bridge.migrate import Migration

__all__ = [
    "ProgressBar",
    "add_import_parser",
    "add_migrate_parser",
    "add_parser",
    "report_text",
    "run_import",
    "run_migrate",
    "write_migration",
]

_JSON = "json"
_PROGRESS_DELAY = 1.0  # seconds before a progress bar is worth showing


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``import`` and ``migrate`` (``smi_bridge.cli`` calls this, or the two below one by one)."""
    add_import_parser(subparsers)
    add_migrate_parser(subparsers)


def _versions_help() -> str:
    return (
        "SMI API versions to write, e.g. split=v1alpha4,access=v1alpha3,specs=v1alpha4 (default: the newest "
        "the published CRDs serve); " + "; ".join(f"{group}: {', '.join(v)}" for group, v in VERSIONS.items())
    )


def add_import_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from smi_bridge.cli import add_translation_options

    p = subparsers.add_parser(
        "import",
        help="read a mesh's configuration into SMI manifests",
        description="Read a mesh's objects (plus Services and workloads as inventory) and write them as SMI "
        "manifests that smi-bridge lint accepts. Objects go to stdout (or -o), the report of what has no "
        "SMI form, of unknown kinds and of conflicts to stderr.",
    )
    _mesh_option(p, "--from", "source", "MESH", "the input's mesh")
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or directories; '-' or a pipe for stdin")
    p.add_argument(
        "-o",
        "--output",
        default="-",
        metavar="OUT",
        help="'-' (stdout, default), a file, or a directory (one file per object)",
    )
    p.add_argument("--smi-version", default="", metavar="GROUP=VERSION,...", help=_versions_help())
    p.add_argument(
        "--headers",
        choices=["list", "map"],
        default="list",
        help="HTTPRouteGroup header form: list of one-key maps (smi-sdk-go, default) or a map",
    )
    p.add_argument("--format", choices=["yaml", "json"], default="yaml")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file or directory")
    p.add_argument("-n", "--namespace", default="default", help="namespace for documents without one")
    add_translation_options(p)
    p.set_defaults(func=run_import)


def add_migrate_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from smi_bridge.cli import add_translation_options
    from smi_bridge.migrate import DEFAULT_MAX_REQUESTS

    m = subparsers.add_parser(
        "migrate",
        help="move one mesh's configuration to another, prove it means the same, and plan the cut-over",
        description="Read SOURCE's configuration (SMI or a mesh), translate it through the IR to TARGET, read "
        "TARGET's objects back with TARGET's importer, and decide generated requests on both: every "
        "difference is shown with an example request and the objects involved. Writes a staged plan "
        "(plan.md, plan.json) with -o DIR.",
    )
    _mesh_option(m, "--from", "source", "SOURCE", "the input's mesh")
    _mesh_option(m, "--to", "target", "TARGET", "the mesh to move to")
    m.add_argument("paths", nargs="*", metavar="PATH", help="files or directories; '-' or a pipe for stdin")
    m.add_argument(
        "-o",
        "--output",
        default="-",
        metavar="DIR|json|-",
        help="'-' (default): objects on stdout, report on stderr; 'json': the full report as JSON on "
        "stdout; a directory: 01-access.yaml, 02-routing.yaml, plan.md, plan.json, report.txt "
        "(write ./json for a directory of that name)",
    )
    m.add_argument(
        "--accept-lossy",
        action="store_true",
        help="exit 0 when every difference is one the lossy report names",
    )
    m.add_argument(
        "--max-requests",
        type=_positive,
        default=DEFAULT_MAX_REQUESTS,
        metavar="N",
        help=f"decide at most N generated requests, evenly thinned (default {DEFAULT_MAX_REQUESTS})",
    )
    m.add_argument(
        "--smi-version", default="", metavar="GROUP=VERSION,...", help="with --to smi: " + _versions_help()
    )
    m.add_argument("--headers", choices=["list", "map"], default="list", help="with --to smi: header form")
    m.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    m.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="progress bar on stderr: auto (a terminal, runs over a second), always, never",
    )
    m.add_argument("-n", "--namespace", default="default", help="namespace for documents without one")
    add_translation_options(m)
    m.set_defaults(func=run_migrate)


def _mesh_option(p: argparse.ArgumentParser, flag: str, dest: str, metavar: str, what: str) -> None:
    from smi_bridge.migrate import endpoints

    names = list(endpoints())
    p.add_argument(
        flag, dest=dest, required=True, metavar=metavar, choices=names, help=f"{what}: {', '.join(names)}"
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _usage(message: str) -> Exception:
    from smi_bridge.cli import UsageError

    return UsageError(message)


def _versions(text: str) -> SmiVersions:
    try:
        return SmiVersions.parse(text)
    except VersionError as exc:
        raise _usage(f"--smi-version: {exc}") from None


def _common(args: argparse.Namespace) -> tuple[list[str], Options]:
    from smi_bridge.cli import options_from, paths_or_stdin

    return paths_or_stdin(args.paths), options_from(args)


def _render(diagnostics: Sequence[Diagnostic], stream: TextIO) -> None:
    from smi_bridge.cli import render_report

    render_report(diagnostics, stream)


# --- import ---------------------------------------------------------------------------------------


def run_import(args: argparse.Namespace) -> int:
    from smi_bridge.migrate import import_mesh
    from smi_bridge.translate import OutputExists, write_output

    paths, options = _common(args)
    versions = _versions(args.smi_version)
    result = import_mesh(
        args.source,
        paths,
        options,
        stdin=sys.stdin.buffer if "-" in paths else None,
        default_namespace=args.namespace,
        smi_versions=versions,
        headers=args.headers,
    )
    try:
        write_output(
            [result.output],
            args.output,
            args.format,
            stdout=sys.stdout,
            per_target_dirs=False,
            overwrite=args.overwrite,
        )
    except OutputExists as exc:
        raise _usage(str(exc)) from None
    except OSError as exc:
        raise _usage(f"cannot write {args.output}: {exc.strerror or exc}") from None
    _render(result.report(), sys.stderr)
    return result.exit_code()


# --- migrate --------------------------------------------------------------------------------------


class ProgressBar:
    """A rich progress bar on ``stream`` that appears only once a run has taken ``delay`` seconds."""

    def __init__(
        self,
        stream: IO[str],
        *,
        enabled: bool,
        delay: float = _PROGRESS_DELAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.enabled = enabled
        self.delay = delay
        self.clock = clock
        self.started = clock()
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._progress is None:
            if self.clock() - self.started < self.delay:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            console = Console(file=self.stream, force_terminal=True)
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self._progress.start()
        task = self._tasks.get(phase)
        if task is None:
            label = {
                "read": "reading input",
                "emit": "translating",
                "generate": "generating requests",
                "decide": "deciding requests",
            }.get(phase, phase)
            task = self._tasks[phase] = self._progress.add_task(label, total=total)
        self._progress.update(task, completed=done, total=total)

    @property
    def shown(self) -> bool:
        return self._progress is not None

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def run_migrate(args: argparse.Namespace) -> int:
    from smi_bridge.migrate import migrate

    paths, options = _common(args)
    versions = _versions(args.smi_version)
    out = args.output
    target_dir = None if out in ("-", _JSON) else Path(out)
    if (
        target_dir is not None
        and target_dir.exists()
        and not args.overwrite
        and (not target_dir.is_dir() or any(target_dir.iterdir()))
    ):
        raise _usage(f"{target_dir} exists; pass --overwrite to replace it")
    enabled = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    bar = ProgressBar(sys.stderr, enabled=enabled)
    try:
        result = migrate(
            args.source,
            args.target,
            paths,
            options,
            stdin=sys.stdin.buffer if "-" in paths else None,
            default_namespace=args.namespace,
            smi_versions=versions,
            headers=args.headers,
            max_requests=args.max_requests,
            progress=bar,
        )
    finally:
        bar.close()

    report = report_text(result)
    if out == _JSON:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif target_dir is not None:
        try:
            written = write_migration(result, target_dir, report)
        except OSError as exc:
            raise _usage(f"cannot write {target_dir}: {exc.strerror or exc}") from None
        sys.stderr.write(report)
        sys.stderr.write(f"wrote {', '.join(p.name for p in written)} to {target_dir}\n")
    else:
        sys.stdout.write(_yaml(result.output.objects))
        sys.stderr.write(report)
        sys.stderr.write("plan: " + _plan_summary(result) + " (write it with -o DIR)\n")
    return result.exit_code(accept_lossy=args.accept_lossy)


def _yaml(objects: Iterable[Mapping[str, Any]]) -> str:
    return yaml.dump_all(list(objects), Dumper=yaml.CSafeDumper, sort_keys=False, explicit_start=True)


def _plan_summary(result: Migration) -> str:
    plan = result.plan
    errors = sum(1 for h in plan.human if h.severity == "error")
    return f"{len(plan.stages)} stages, {len(plan.human)} item(s) need a human ({errors} error(s))"


def report_text(result: Migration) -> str:
    """The report as the CLI writes it: the findings, then every difference with its example request."""
    from smi_bridge.migrate import DIFFERENCE_NAMED, DIFFERENCE_UNNAMED

    buf = io.StringIO()
    # the differences are written in full below, with their example requests
    skip = (DIFFERENCE_NAMED.code, DIFFERENCE_UNNAMED.code)
    _render([d for d in result.report() if d.code not in skip], buf)
    for line in iter_lines(result.equivalence):
        buf.write(line + "\n")
    return buf.getvalue()


def write_migration(result: Migration, directory: Path, report_text: str) -> list[Path]:
    """Stage files, plan and report into ``directory`` (replaced whole, never half-written)."""
    plan = result.plan
    files: dict[str, str] = {}
    for name, objects in plan.files.items():
        if objects:
            files[name] = _yaml(objects)
    files["plan.md"] = plan.markdown()
    files["plan.json"] = json.dumps(plan.to_dict(), indent=2) + "\n"
    files["report.txt"] = report_text
    directory = directory.resolve()
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
        if directory.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
            os.rename(directory, old / "old")
            os.rename(staging, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [directory / name for name in files]
