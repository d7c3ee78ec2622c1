"""Benchmark: ``smi-bridge translate`` to every target against ``smi-bridge lint``, same corpus, same run.

The corpus is the lint benchmark's (``benchmarks/corpus.py``: 10,000 mixed SMI documents of every
kind and version, a few percent deliberately wrong), as one multi-document file. Each command runs
as a subprocess (interpreter start included, as a user sees it), best of ``--repeat`` wall times.
It prints documents per second per target and the ratio of each target's time to lint's; the
target is every ratio at most 1.5.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from corpus import write_corpus  # noqa: E402

SMI = [sys.executable, "-m", "smi_bridge.cli"]
TARGETS = ("istio", "linkerd", "consul", "gateway-api", "proxy")


def best_of(cmd: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        elapsed = time.perf_counter() - start
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
        best = min(best, elapsed)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--documents", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="smi-bench-") as tmp:
        info = write_corpus(tmp, n=args.documents)
        corpus = str(info.one_file)
        lint_s = best_of([*SMI, "lint", corpus], args.repeat)
        rows = [("lint", lint_s)]
        for target in TARGETS:
            out = str(Path(tmp) / f"out-{target}.yaml")
            rows.append(
                (
                    f"translate --to {target}",
                    best_of(
                        [*SMI, "translate", "--to", target, corpus, "-o", out, "--overwrite"], args.repeat
                    ),
                )
            )
    n = info.documents
    print(f"corpus: {n} documents, {info.bytes / 1e6:.1f} MB, one file; best of {args.repeat}")
    print(f"{'command':32} {'seconds':>8} {'docs/s':>9} {'vs lint':>8}")
    worst = 0.0
    for name, secs in rows:
        ratio = secs / lint_s
        if name != "lint":
            worst = max(worst, ratio)
        print(f"{name:32} {secs:8.2f} {n / secs:9.0f} {ratio:7.2f}x")
    print(f"slowest target / lint: {worst:.2f}x (target: at most 1.5x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
