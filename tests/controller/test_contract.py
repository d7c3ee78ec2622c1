"""The fake API server against the contract, and the fake and the real kube-apiserver against each other.

Every scenario in ``contract.py`` asserts its own expectations on the fake. With the real tier up,
the same scenario runs on kube-apiserver 1.20.2 too and both must return identical facts: a fake
that drifts from the real protocol fails CI here.
"""

from __future__ import annotations

import pytest

from tests.controller.cluster import Cluster
from tests.controller.contract import SCENARIOS


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_fake_server_meets_the_contract(scenario: str, fake_120: Cluster) -> None:
    facts = SCENARIOS[scenario](fake_120)
    assert facts


@pytest.mark.realapi
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_fake_and_real_api_servers_agree(scenario: str, fake_120: Cluster, real: Cluster) -> None:
    fake_facts = SCENARIOS[scenario](fake_120)
    real_facts = SCENARIOS[scenario](real)
    assert fake_facts == real_facts
