"""The wheel is complete: every package, the schemas inside it, and an installed copy that works
outside the checkout (lint, translate to the proxy, and smi-proxy's config check all read schemas)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, REPO


def _declared_packages() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages: list[str] = config["tool"]["setuptools"]["packages"]
    return packages


def test_every_package_in_the_tree_is_declared() -> None:
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for top in ("smi_bridge", "backends", "proxy")
        for init in (REPO / top).rglob("__init__.py")
    }
    declared = set(_declared_packages())
    assert found - declared == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert declared - found == {"smi_bridge._schemas"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the sources (the checkout gets no build/ or egg-info)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("smi_bridge", "backends", "proxy", "schemas"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    dist = tmp_path_factory.mktemp("dist")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            ".",
        ],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (built,) = dist.glob("smi_bridge-*.whl")
    return built


def test_the_wheel_carries_every_schema(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"smi_bridge/_schemas/{p.name}" for p in (REPO / "schemas").glob("*.json")}
    assert expected and expected <= names
    assert not any(n.startswith("schemas/") for n in names), (
        "schemas/ must not land at the top of site-packages"
    )
    assert "smi_bridge/py.typed" in names


def test_an_installed_wheel_works_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    probe = (
        "import smi_bridge.resources as r, smi_bridge.schema as s, proxy.config as c\n"
        "print(r.SCHEMA_DIR)\n"
        "print(c.SCHEMA_PATH.is_file(), len(s.load_schema('split.smi-spec.io', 'v1alpha4', 'TrafficSplit')) > 0)\n"
    )
    # the installed copy first on the path, the venv's site-packages (dependencies) after it; run
    # from a directory that is not the checkout so nothing is imported from the sources
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONSAFEPATH": "1"}
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[0] == str(target / "smi_bridge" / "_schemas")
    assert lines[1] == "True True"
    cli = subprocess.run(
        [sys.executable, "-m", "smi_bridge", "translate", "--to", "proxy", str(FIXTURES / "demo")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode in (0, 1), cli.stderr[-3000:]
    assert "kind: ProxyConfig" in cli.stdout
