"""``smi-bridge import`` and ``smi-bridge migrate`` run as real processes: outputs, reports, exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from smi_bridge.migrate_cli import ProgressBar
from tests.conftest import FIXTURES, REPO

MIGRATE = FIXTURES / "migrate"
ISTIO = MIGRATE / "istio-bookstore"
SMI_BOOKSTORE = MIGRATE / "smi-bookstore"

# The commands are registered by ``smi_bridge.cli`` (``migrate_cli.add_parser``); until that line is in,
# the process registers them itself, exactly as cli.py will.
_ENTRY = """
import sys
from smi_bridge import cli, migrate_cli
parser = cli.build_parser()
commands = next(a for a in parser._actions if a.dest == "command").choices
if "migrate" not in commands:
    cli.COMMANDS["import"] = migrate_cli.add_import_parser
    cli.COMMANDS["migrate"] = migrate_cli.add_migrate_parser
sys.exit(cli.main(sys.argv[1:]))
"""


def smi_bridge(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _ENTRY, *map(str, args)],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_migrate_writes_objects_to_stdout_and_the_report_to_stderr() -> None:
    run = smi_bridge("migrate", "--from", "istio", "--to", "linkerd", ISTIO)
    assert run.returncode == 1, run.stderr  # explained differences, but --accept-lossy not given
    kinds = {d["kind"] for d in yaml.safe_load_all(run.stdout) if d}
    assert kinds == {"Server", "MeshTLSAuthentication", "HTTPRoute", "AuthorizationPolicy"}
    assert "istio.yaml:4: warning[SMX106]" in run.stderr
    assert "not named by the lossy report" in run.stderr and "named by SMT230" in run.stderr
    assert "e.g. GET / from warehouse/bookwarehouse to warehouse/mysql:3307" in run.stderr
    assert "plan: 6 stages" in run.stderr


def test_migrate_accepts_named_losses_on_request() -> None:
    run = smi_bridge("migrate", "--from", "istio", "--to", "linkerd", "--accept-lossy", ISTIO)
    assert run.returncode == 0, run.stderr


def test_migrate_to_a_directory_writes_stage_files_plan_and_report(tmp_path: Path) -> None:
    out = tmp_path / "cutover"
    run = smi_bridge("migrate", "--from", "smi", "--to", "gateway-api", "-o", out, SMI_BOOKSTORE)
    assert run.returncode == 1
    assert sorted(p.name for p in out.iterdir()) == ["02-routing.yaml", "plan.json", "plan.md", "report.txt"]
    routes = [d for d in yaml.safe_load_all((out / "02-routing.yaml").read_text()) if d]
    assert {r["kind"] for r in routes} == {"HTTPRoute"}
    plan = (out / "plan.md").read_text()
    assert plan.startswith("# Migration plan: smi to gateway-api")
    assert "## 6. Remove the old configuration last" in plan and "smi.yaml:" in plan
    assert json.loads((out / "plan.json").read_text())["target"] == "gateway-api"
    assert "SMT411" in (out / "report.txt").read_text()
    assert f"to {out}" in run.stderr

    again = smi_bridge("migrate", "--from", "smi", "--to", "gateway-api", "-o", out, SMI_BOOKSTORE)
    assert again.returncode == 2 and "pass --overwrite" in again.stderr
    replaced = smi_bridge("migrate", "--from", "smi", "--to", "smi", "-o", out, "--overwrite", SMI_BOOKSTORE)
    assert replaced.returncode == 0, replaced.stderr
    assert (out / "01-access.yaml").exists() and not (out / "report.txt").read_text().count("SMT411")


def test_migrate_json_is_the_full_report() -> None:
    run = smi_bridge("migrate", "--from", "istio", "--to", "linkerd", "-o", "json", ISTIO)
    assert run.returncode == 1 and run.stderr == ""
    data = json.loads(run.stdout)
    assert data["source"] == "istio" and data["target"] == "linkerd"
    assert data["equivalence"]["unexplained"] == 0 and data["equivalence"]["differences"]
    assert {f["code"] for f in data["findings"]} >= {"SMX106", "SMT230", "SMX901"}
    assert len(data["plan"]["stages"]) == 6 and data["objects"]


def test_migrate_shows_conflicts_and_unknown_kinds_with_their_locations() -> None:
    run = smi_bridge(
        "migrate",
        "--from",
        "istio",
        "--to",
        "linkerd",
        MIGRATE / "conflicts" / "istio-two-virtualservices.yaml",
    )
    assert "istio-two-virtualservices.yaml:24: warning[SMX105]" in run.stderr
    assert "istio-two-virtualservices.yaml:34" in run.stderr  # the other VirtualService
    assert "info[SMX100]" in run.stderr and "Gateway shop/shop-ingress" in run.stderr


def test_migrate_usage_errors_exit_2() -> None:
    unknown = smi_bridge("migrate", "--from", "osm", "--to", "istio", ISTIO)
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
    versions = smi_bridge("migrate", "--from", "istio", "--to", "smi", "--smi-version", "split=v9", ISTIO)
    assert versions.returncode == 2 and "--smi-version" in versions.stderr


def test_import_writes_smi_that_the_linter_accepts(tmp_path: Path) -> None:
    run = smi_bridge("import", "--from", "istio", ISTIO)
    assert run.returncode == 0, run.stderr
    kinds = sorted({d["kind"] for d in yaml.safe_load_all(run.stdout) if d})
    assert kinds == ["HTTPRouteGroup", "TCPRoute", "TrafficSplit", "TrafficTarget"]
    assert "warning[SMX106]" in run.stderr  # the retry policy has no SMI form
    imported = tmp_path / "imported.yaml"
    imported.write_text(run.stdout)
    lint = smi_bridge("lint", imported, ISTIO / "inventory.yaml")
    assert lint.returncode == 0, lint.stdout


def test_import_at_chosen_versions_and_header_form(tmp_path: Path) -> None:
    out = tmp_path / "smi"
    run = smi_bridge(
        "import",
        "--from",
        "istio",
        "--smi-version",
        "split=v1alpha3,access=v1alpha2,specs=v1alpha3",
        "--headers",
        "map",
        "-o",
        f"{out}/",
        ISTIO,
    )
    assert run.returncode == 0, run.stderr
    docs = [yaml.safe_load(p.read_text()) for p in sorted(out.iterdir())]
    versions = {d["kind"]: d["apiVersion"] for d in docs}
    assert versions["TrafficSplit"] == "split.smi-spec.io/v1alpha3"
    assert versions["TrafficTarget"] == "access.smi-spec.io/v1alpha2"
    headers = [
        m["headers"]
        for d in docs
        if d["kind"] == "HTTPRouteGroup"
        for m in d["spec"]["matches"]
        if "headers" in m
    ]
    assert headers and all(isinstance(h, dict) for h in headers)


def test_import_reads_stdin() -> None:
    text = (ISTIO / "istio.yaml").read_text() + "---\n" + (ISTIO / "inventory.yaml").read_text()
    run = smi_bridge("import", "--from", "istio", "-", stdin=text)
    assert run.returncode == 0, run.stderr
    assert "TrafficSplit" in run.stdout and "<stdin>" in run.stderr


def test_progress_bar_waits_a_second_then_draws_every_phase() -> None:
    now = [0.0]
    stream = io.StringIO()
    bar = ProgressBar(stream, enabled=True, clock=lambda: now[0])
    bar("generate", 10, 100)
    assert not bar.shown and stream.getvalue() == ""
    now[0] = 1.5
    bar("generate", 50, 100)
    bar("decide", 100, 100)
    assert bar.shown
    bar.close()
    assert "generating requests" in stream.getvalue() or "deciding requests" in stream.getvalue()


def test_progress_bar_stays_silent_when_disabled() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, enabled=False, clock=lambda: 99.0)
    bar("decide", 1, 2)
    bar.close()
    assert not bar.shown and stream.getvalue() == ""


@pytest.mark.parametrize("target", ["istio", "consul", "proxy"])
def test_migrate_from_smi_runs_for_each_mesh(target: str) -> None:
    run = smi_bridge(
        "migrate", "--from", "smi", "--to", target, "--accept-lossy", "-o", "json", SMI_BOOKSTORE
    )
    assert run.returncode == 0, run.stdout[-2000:]
    assert json.loads(run.stdout)["equivalence"]["unexplained"] == 0
