"""Every lint rule against its fixtures: ``fixtures/lint/<CODE>-<case>/{positive,negative}.yaml``.

A positive fixture names what it must produce in ``# expect: CODE json.path`` lines; the finding
must be there, at that path, and the generic schema error it refines (SMB023) must not be. The
negative fixture is the same manifest written the way the hint says, and must not produce the code.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smi_bridge.diagnostics import Severity
from smi_bridge.lint import LintReport, lint
from smi_bridge.lint.rules import CHECKS as RULE_CHECKS
from smi_bridge.lint.suppression import CHECKS as SUPPRESSION_CHECKS
from smi_bridge.parse import SCHEMA
from tests.conftest import FIXTURES

LINT_FIXTURES = FIXTURES / "lint"
CASES = sorted(p for p in LINT_FIXTURES.iterdir() if p.is_dir())
_EXPECT = re.compile(r"^# expect: (SMB\d{3}) (\S+)$", re.MULTILINE)


def expectations(case: Path) -> list[tuple[str, str]]:
    return _EXPECT.findall((case / "positive.yaml").read_text())


def codes_at(report: LintReport) -> set[tuple[str, str]]:
    return {(d.code, d.path) for d in report.diagnostics}


def test_every_lint_check_has_a_fixture_case() -> None:
    covered = {case.name[:6] for case in CASES}
    missing = sorted(c.code for c in (*RULE_CHECKS, *SUPPRESSION_CHECKS) if c.code not in covered)
    assert missing == []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule_reports_its_positive_fixture_at_the_stated_path(case: Path) -> None:
    expected = expectations(case)
    assert expected, f"{case.name}/positive.yaml has no '# expect:' line"
    report = lint([case / "positive.yaml"])
    found = codes_at(report)
    for code, path in expected:
        assert (code, path) in found, f"{code} at {path} not in {sorted(found)}"
        assert (SCHEMA.code, path) not in found, f"the generic {SCHEMA.code} at {path} was not replaced"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule_is_silent_on_its_negative_fixture(case: Path) -> None:
    code = case.name[:6]
    report = lint([case / "negative.yaml"])
    assert code not in {d.code for d in report.diagnostics}
    # the fixed manifest is clean of errors too, so the fix the hint suggests is a real fix
    assert report.at_or_above(Severity.ERROR) == []


def _one(case: str, code: str) -> str:
    report = lint([LINT_FIXTURES / case / "positive.yaml"])
    [finding] = [d for d in report.diagnostics if d.code == code]
    return f"{finding.message} | {finding.hint}"


def test_negative_weight_in_v1alpha2_is_a_specific_error_not_a_schema_error() -> None:
    assert "-200" in _one("SMB050-negative-weight", "SMB050")


def test_quantity_weight_in_v1alpha2_hints_at_split_v1alpha1_and_convert() -> None:
    text = _one("SMB051-quantity-in-v1alpha2", "SMB051")
    assert "v1alpha1" in text and "smi-bridge convert" in text


def test_mixed_scale_quantities_report_the_ratio_the_sdk_would_compute() -> None:
    text = _one("SMB054-sdk-misreads-mixed-scales", "SMB054")
    assert "2:1" in text and "1:500" in text


def test_lookahead_is_not_re2() -> None:
    assert "look-ahead" in _one("SMB080-lookahead-path-regex", "SMB080")


def test_backreference_in_a_header_is_not_re2() -> None:
    assert "backreference" in _one("SMB080-backreference-in-header", "SMB080")


def test_unanchored_header_suggests_both_anchored_forms() -> None:
    text = _one("SMB081-unanchored-header-pattern", "SMB081")
    assert "'^Firefox$'" in text and "'.*Firefox.*'" in text


def test_lower_case_method_names_the_upper_case_spelling() -> None:
    assert "write HEAD" in _one("SMB084-lowercase-method", "SMB084")


def test_unknown_method_lists_the_allowed_set() -> None:
    assert "PATCH" in _one("SMB085-unknown-method", "SMB085")


def test_unquoted_header_number_says_how_to_quote_it() -> None:
    assert 'x-debug: "1"' in _one("SMB087-header-value-is-a-number", "SMB087")


def test_udproute_rule_in_access_v1alpha2_names_the_version_that_has_it() -> None:
    assert "v1alpha3" in _one("SMB062-udproute-rule-in-v1alpha2", "SMB062")


def test_spiffe_id_without_scheme_shows_the_fixed_id() -> None:
    assert "spiffe://cluster.local/ns/default/sa/service-a" in _one(
        "SMB072-spiffe-id-without-scheme", "SMB072"
    )


def test_duplicate_object_names_where_the_first_one_is() -> None:
    assert "positive.yaml:2 " in _one("SMB100-object-defined-twice", "SMB100")


def test_access_v1alpha4_draft_is_a_warning_not_an_unknown_version_error() -> None:
    report = lint([LINT_FIXTURES / "SMB070-access-v1alpha4-draft" / "positive.yaml"])
    assert [(d.code, d.severity) for d in report.diagnostics] == [("SMB070", Severity.WARNING)]


def test_quoted_port_says_to_write_it_unquoted() -> None:
    assert "unquoted: 8080" in _one("SMB090-quoted-destination-port", "SMB090")
