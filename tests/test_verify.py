"""``smi_bridge.verify``: scenario files run through the real smi-proxy, pass/fail per group."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from smi_bridge.verify import ScenarioError, demo, load_scenario, run
from tests.conftest import FIXTURES

SCENARIOS = FIXTURES / "scenarios"


def test_at_least_fifteen_scenarios_ship_and_each_has_groups() -> None:
    files = sorted(SCENARIOS.glob("*.yaml"))
    assert len(files) >= 15
    for file in files:
        scenario = load_scenario(file)
        assert scenario.groups and scenario.description, file.name


def test_every_shipped_scenario_passes_through_the_real_proxy() -> None:
    out = io.StringIO()
    code = run([SCENARIOS], out=out)
    text = out.getvalue()
    assert code == 0, text
    count = len(list(SCENARIOS.glob("*.yaml")))
    assert f"{count} scenarios: {count} passed, 0 failed" in text
    assert "FAIL" not in text
    assert "checkout-v1 90 (90.0%), checkout-v2 10 (10.0%)" in text


WRONG = """apiVersion: verify.smi-bridge.io/v1alpha1
kind: Scenario
metadata: {name: wrong-expectation}
spec:
  description: expects 50/50 of a 90/10 split, and 200 where access denies
  groups:
  - name: the split is not even
    from: shop/web-0
    to: checkout.shop:8080
    count: 20
    expect: {status: 200, backends: {checkout-v1: 50, checkout-v2: 50}}
  - name: the stranger is not allowed
    from: unauthenticated
    to: checkout.shop:8080
    count: 3
    expect: {allowed: true}
"""


def test_a_wrong_expectation_fails_and_shows_what_was_observed(tmp_path: Path) -> None:
    manifests = (SCENARIOS / "split-90-10.yaml").read_text().split("---\n", 1)[1]
    scenario = tmp_path / "wrong.yaml"
    scenario.write_text(WRONG + "---\n" + manifests)
    out = io.StringIO()
    assert run([scenario], out=out) == 1
    text = out.getvalue()
    assert "FAIL  the split is not even" in text
    assert "checkout-v1 18 (90.0%), checkout-v2 2 (10.0%)" in text
    assert "backend checkout-v1: 90.0% observed, 50% expected (tolerance 0)" in text
    assert "FAIL  the stranger is not allowed" in text and "3 requests were denied (403)" in text
    assert "1 scenarios: 0 passed, 1 failed" in text


def test_a_malformed_scenario_is_reported_with_file_and_line(tmp_path: Path) -> None:
    scenario = tmp_path / "broken.yaml"
    scenario.write_text(
        "apiVersion: verify.smi-bridge.io/v1alpha1\nkind: Scenario\nmetadata: {name: broken}\n"
        "spec:\n  groups:\n  - name: nowhere\n    from: shop/web-0\n    expect: {status: 200}\n"
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(scenario)
    assert info.value.problems == [
        f"{scenario}:6: spec.groups[0] (nowhere): to must be 'service.namespace:port', not ''"
    ]
    out = io.StringIO()
    assert run([scenario], out=out) == 1
    assert f"{scenario}:6:" in out.getvalue()


def test_no_scenario_is_a_usage_error(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run([tmp_path], out=out) == 2
    assert "no scenario files" in out.getvalue()


def test_demo_prints_the_observed_split_and_the_denied_count() -> None:
    out = io.StringIO()
    assert demo(FIXTURES / "demo", out=out, requests=300) == 0
    text = out.getvalue()
    assert "smi-proxy demo: 300 requests" in text
    assert "denied by access policy (403):" in text
    denied = int(text.split("denied by access policy (403):")[1].split()[0])
    assert f'smi_proxy_requests_total{{denied="true"}}: {denied}' in text
