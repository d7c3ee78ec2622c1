"""Shared test fixtures: where the anchors are, the ``--update-golden`` switch, the CRD index."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smi_bridge.crdcheck import CRDIndex

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


def anchors_dir() -> Path:
    """../shared/anchors beside the checkout (SMI_BRIDGE_ANCHORS overrides)."""
    env = os.environ.get("SMI_BRIDGE_ANCHORS")
    path = Path(env) if env else REPO.parent / "shared" / "anchors"
    if not path.is_dir():
        raise RuntimeError(f"anchor data not found at {path}; set SMI_BRIDGE_ANCHORS")
    return path


ANCHORS = anchors_dir()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files under fixtures/")


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="session")
def vendor_crds() -> CRDIndex:
    return CRDIndex.from_paths([ANCHORS / "crds"])
