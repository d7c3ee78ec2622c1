"""Benchmark: ``smi-bridge lint`` against check-jsonschema and against a bare C YAML parse.

One run measures, on the same generated corpus (``benchmarks/corpus.py``, 10,000 SMI documents
by default, a few percent deliberately wrong):

* ``smi-bridge lint`` as a subprocess, wall time, best of ``--repeat`` runs, on the one-file layout
  (one multi-document stream) and on the many-files layout (one document per file);
* check-jsonschema validating the same files against the same schemas (``schemas/``, generated from
  the models): files are grouped by kind and version and check-jsonschema runs once per schema;
* the floor: PyYAML's ``CSafeLoader`` parsing the same bytes in-process (no interpreter start, no
  validation, no positions).

It prints documents per second for each, and the ratios the targets are stated in: lint at least
5,000 documents/s on the one-file corpus, at least 3x faster than check-jsonschema, and within 3x of
the bare parse. Run ``python benchmarks/lint.py --help`` for the knobs.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from corpus import write_corpus  # noqa: E402

from smi_bridge.schema import SCHEMA_DIR, schema_filename  # noqa: E402

TARGET_DOCS_PER_S = 5_000
TARGET_VS_CHECK_JSONSCHEMA = 3.0
TARGET_VS_FLOOR = 3.0


@dataclass(frozen=True)
class Measurement:
    name: str
    seconds: float  # wall time, best run
    cpu: float  # CPU time (user + system, this process and its children) of that run
    documents: int

    @property
    def rate(self) -> float:
        return self.documents / self.seconds if self.seconds > 0 else float("inf")


def _cpu() -> float:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def measure(name: str, documents: int, repeat: int, run: Callable[[], None]) -> Measurement:
    """Best wall time of ``repeat`` runs, with that run's CPU time (which a busy machine inflates less)."""
    best = Measurement(name, float("inf"), float("inf"), documents)
    for _ in range(repeat):
        cpu, start = _cpu(), time.perf_counter()
        run()
        wall, used = time.perf_counter() - start, _cpu() - cpu
        if wall < best.seconds:
            best = Measurement(name, wall, used, documents)
    print(f"  {name}: {best.seconds:.3f}s wall, {best.cpu:.3f}s CPU", flush=True)
    return best


def lint_command() -> list[str]:
    exe = shutil.which("smi-bridge", path=str(Path(sys.executable).parent))
    return [exe, "lint"] if exe else [sys.executable, "-m", "smi_bridge.cli", "lint"]


def run_lint(target: Path) -> None:
    proc = subprocess.run(
        [*lint_command(), "-o", "json", str(target)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    # 1 = findings (the corpus has deliberate mistakes); anything else is a broken run
    if proc.returncode not in (0, 1) or proc.stderr:
        raise SystemExit(f"smi-bridge lint {target} failed ({proc.returncode}): {proc.stderr.decode()[:500]}")


def schema_groups(files: Sequence[Path]) -> dict[Path, list[Path]]:
    """schema file -> the corpus files of that kind and version (set-up, not timed)."""
    groups: dict[Path, list[Path]] = defaultdict(list)
    for path in files:
        doc = yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
        group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
        schema = SCHEMA_DIR / schema_filename(group, version, str(doc.get("kind", "")))
        if not schema.exists():
            raise SystemExit(f"no schema {schema.name} for {path.name}; run python -m smi_bridge.schema")
        groups[schema].append(path)
    return groups


def run_check_jsonschema(groups: dict[Path, list[Path]]) -> None:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or "check-jsonschema"
    for schema, files in sorted(groups.items()):
        proc = subprocess.run(
            [exe, "--schemafile", str(schema), *map(str, files)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        if proc.returncode not in (0, 1):
            raise SystemExit(
                f"check-jsonschema {schema.name} failed ({proc.returncode}): {proc.stderr.decode()[:500]}"
            )


def parse_floor(data: bytes) -> None:
    for _ in yaml.load_all(data, Loader=yaml.CSafeLoader):
        pass


def parse_floor_files(files: Sequence[Path]) -> None:
    for path in files:
        yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)


def n_rate(m: Measurement) -> float:
    return m.documents / m.cpu if m.cpu > 0 else float("inf")


def report(rows: list[Measurement], lint_one: Measurement, cj: Measurement | None, floor: Measurement) -> str:
    lines = [f"{'what':<46} {'wall s':>8} {'CPU s':>8} {'documents/s':>12}"]
    lines += [f"{r.name:<46} {r.seconds:>8.3f} {r.cpu:>8.3f} {r.rate:>12,.0f}" for r in rows]
    lines.append("")
    verdict = "ok" if lint_one.rate >= TARGET_DOCS_PER_S else "MISSED"
    lines.append(
        f"lint, one file: {lint_one.rate:,.0f} documents/s (target >= {TARGET_DOCS_PER_S:,}): {verdict}"
    )
    if cj is not None:
        speedup = cj.seconds / lint_one.seconds
        verdict = "ok" if speedup >= TARGET_VS_CHECK_JSONSCHEMA else "MISSED"
        lines.append(
            f"lint vs check-jsonschema: {speedup:.1f}x faster (target >= {TARGET_VS_CHECK_JSONSCHEMA:g}x): {verdict}"
        )
    slowdown = lint_one.seconds / floor.seconds
    verdict = "ok" if slowdown <= TARGET_VS_FLOOR else "MISSED"
    lines.append(
        f"lint vs bare CSafeLoader parse: {slowdown:.2f}x the floor's time (target <= {TARGET_VS_FLOOR:g}x): {verdict}"
    )
    # On a shared machine wall time includes waiting for a core; CPU time shows the work itself.
    by_cpu = f"by CPU time: lint {lint_one.documents / lint_one.cpu:,.0f} documents/s, {lint_one.cpu / floor.cpu:.2f}x the floor"
    if cj is not None:
        by_cpu += f", {cj.cpu / lint_one.cpu:.1f}x less than check-jsonschema"
    lines.append(by_cpu)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--n", type=int, default=10_000, help="documents in the corpus (default 10,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per measurement; the best counts (default 3)"
    )
    parser.add_argument(
        "--corpus", type=Path, help="write (or reuse) the corpus here instead of a temporary dir"
    )
    parser.add_argument("--skip-check-jsonschema", action="store_true", help="leave out the slowest peer")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="smi-bridge-bench-") as tmp:
        where = args.corpus or Path(tmp)
        if not (where / "one" / "corpus.yaml").exists():
            write_corpus(where, n=args.n, seed=args.seed)
        one = where / "one" / "corpus.yaml"
        many = sorted((where / "many").glob("*.yaml"))
        n = len(many)
        data = one.read_bytes()
        print(f"corpus: {n:,} documents, {len(data) / 1e6:.1f} MB, in {where}", flush=True)

        lint_one = measure("smi-bridge lint, one file", n, args.repeat, lambda: run_lint(one))
        lint_many = measure(f"smi-bridge lint, {n:,} files", n, args.repeat, lambda: run_lint(where / "many"))
        floor = measure(
            "PyYAML CSafeLoader parse, one stream (floor)", n, args.repeat, lambda: parse_floor(data)
        )
        floor_many = measure(
            f"PyYAML CSafeLoader parse, {n:,} files", n, args.repeat, lambda: parse_floor_files(many)
        )
        rows = [lint_one, lint_many, floor, floor_many]
        cj: Measurement | None = None
        if not args.skip_check_jsonschema:
            groups = schema_groups(many)
            name = f"check-jsonschema, {n:,} files, {len(groups)} schemas"
            cj = measure(name, n, 1, lambda: run_check_jsonschema(groups))
            rows.insert(2, cj)
        print()
        print(report(rows, lint_one, cj, floor))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
