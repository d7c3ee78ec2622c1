"""The ``smi-proxy`` command line: options, exit codes, ``--check-config``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from backends.base import Options
from backends.proxy import ProxyBackend
from proxy.main import main, parse_address
from smi_bridge.verify import free_port, ir_from_manifests
from tests.conftest import FIXTURES


@pytest.fixture
def config(tmp_path: Path) -> Path:
    manifests = (FIXTURES / "scenarios" / "split-with-access.yaml").read_text().split("---\n", 1)[1]
    (obj,) = ProxyBackend().emit(ir_from_manifests(manifests), Options()).objects
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump(obj, sort_keys=False))
    return path


def test_check_config_accepts_a_valid_config(config: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="smi-proxy")
    assert main(["--config", str(config), "--check-config"]) == 0
    assert "is valid: 3 listeners, 1 splits, 1 traffic targets" in caplog.text


def test_check_config_reports_every_problem_with_its_line(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = (
        config.read_text()
        .replace("weight: 90", "weight: -90")
        .replace("accessMode: enforce", "accessMode: open")
    )
    config.write_text(text)
    assert main(["--config", str(config), "--check-config"]) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("spec.accessMode:" in e and f"{config}:" in e for e in errors)
    assert any("spec.ir.splits[0].backends[0].weight:" in e for e in errors)


@pytest.mark.parametrize(
    "argv",
    [
        ["--identity", "mtls"],  # no --ca/--cert/--key
        ["--identity", "ip"],
        ["--identity", "header:"],
        ["--admin", "nowhere"],
        ["--http-listen", "127.0.0.1:99999"],
    ],
)
def test_bad_options_exit_with_2(config: Path, argv: list[str]) -> None:
    assert main(["--config", str(config), *argv]) == 2


def test_an_invalid_config_at_start_exits_with_1_before_listening(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "proxy.main",
            "--config",
            str(bad),
            "--identity",
            "source-address",
            "--admin",
            f"127.0.0.1:{free_port()}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"{bad}: no ProxyConfig" in result.stderr


@pytest.mark.parametrize(
    ("text", "address"),
    [("127.0.0.1:15000", ("127.0.0.1", 15000)), ("[::1]:80", ("::1", 80)), (":8080", ("0.0.0.0", 8080))],
)
def test_addresses_are_host_and_port(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text) == address
