"""The lint pipeline as a library: registry, refinements, suppressions, --strict, options."""

from __future__ import annotations

import gc
import re

import pytest

from smi_bridge.diagnostics import Severity
from smi_bridge.lint import (
    AssumeVersionError,
    LintOptions,
    Suppression,
    SuppressionError,
    assume_versions,
    lint,
)
from smi_bridge.lint.registry import STAGES, all_checks, clashes, codes
from smi_bridge.load import load_bytes

SPLIT = b"""\
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata:
  name: reviews
  namespace: bookinfo
  annotations:
    smi-bridge.io/suppress: SMB037
spec:
  service: reviews
  backends:
  - service: reviews
    weight: 1
  - service: reviews-v2
    weight: 1
---
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata:
  name: ratings
  namespace: bookinfo
spec:
  service: ratings
  backends:
  - service: ratings
    weight: 1
"""


def codes_of(data: bytes, **options: object) -> list[tuple[str, str]]:
    report = lint(load_bytes(data, "in.yaml"), options=LintOptions(**options))  # type: ignore[arg-type]
    return [(d.code, d.resource.name) for d in report.diagnostics]


# --- the registry ---------------------------------------------------------------------------------


def test_every_code_is_declared_once_across_all_stages() -> None:
    assert clashes() == []
    declared = [c.code for checks in STAGES.values() for c in checks]
    assert len(declared) == len(set(declared)) == len(all_checks())


@pytest.mark.parametrize(
    ("stage", "low", "high"), [("load", 1, 19), ("parse", 20, 29), ("build", 30, 49), ("lint", 50, 199)]
)
def test_each_stage_uses_its_code_range(stage: str, low: int, high: int) -> None:
    for check in STAGES[stage]:
        assert re.fullmatch(r"SMB\d{3}", check.code)
        assert low <= int(check.code[3:]) <= high, check.code
        assert check.title and "\n" not in check.title


# --- refinements ----------------------------------------------------------------------------------


def test_a_refinement_replaces_only_the_schema_error_at_its_own_path() -> None:
    data = b"""\
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: s}
spec:
  backends:
  - {service: a, weight: -1}
"""
    report = lint(load_bytes(data, "in.yaml"))
    assert [(d.code, d.path) for d in report.diagnostics] == [
        ("SMB023", "spec.service"),
        ("SMB050", "spec.backends[0].weight"),
    ]


def test_header_value_refinement_also_replaces_the_other_union_alternative() -> None:
    data = b"""\
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: r}
spec:
  matches:
  - name: a
    headers:
    - x-debug: true
"""
    report = lint(load_bytes(data, "in.yaml"))
    assert [(d.code, d.path) for d in report.diagnostics] == [
        ("SMB087", "spec.matches[0].headers[0].x-debug")
    ]


def test_findings_are_sorted_by_file_line_and_column() -> None:
    report = lint(load_bytes(SPLIT, "in.yaml"))
    keys = [(d.file or "", d.line or 0, d.column or 0) for d in report.diagnostics]
    assert keys == sorted(keys)


# --- suppression ----------------------------------------------------------------------------------


def test_annotation_silences_its_codes_for_that_resource_only() -> None:
    assert codes_of(SPLIT) == [("SMB037", "ratings")]
    report = lint(load_bytes(SPLIT, "in.yaml"))
    assert report.suppressed == 1


def test_command_line_suppression_everywhere_and_by_glob() -> None:
    assert codes_of(SPLIT, suppress=(Suppression("SMB037"),)) == []
    assert codes_of(SPLIT, suppress=(Suppression("SMB037", "TrafficSplit/bookinfo/rat*"),)) == []
    assert codes_of(SPLIT, suppress=(Suppression("SMB037", "TrafficSplit/default/*"),)) == [
        ("SMB037", "ratings")
    ]


def test_suppression_parse_checks_the_code_against_the_registry() -> None:
    known = codes()
    assert Suppression.parse("smb036", known) == Suppression("SMB036")
    assert Suppression.parse("SMB036=TrafficSplit/prod/*", known) == Suppression(
        "SMB036", "TrafficSplit/prod/*"
    )
    for bad in ("SMB999", "SMB36", "weights", "SMB036="):
        with pytest.raises(SuppressionError):
            Suppression.parse(bad, known)


def test_annotation_with_an_unknown_code_is_reported_and_the_known_ones_still_apply() -> None:
    data = SPLIT.replace(b"smi-bridge.io/suppress: SMB037", b"smi-bridge.io/suppress: SMB037, SMB998")
    assert codes_of(data) == [("SMB110", "reviews"), ("SMB037", "ratings")]


# --- options --------------------------------------------------------------------------------------


def test_strict_makes_unknown_fields_errors_and_leaves_the_rest() -> None:
    data = b"apiVersion: specs.smi-spec.io/v1alpha4\nkind: UDPRoute\nmetadata: {name: u}\nspec: {matches: {ports: []}, extra: 1}\n"
    loose = lint(load_bytes(data, "in.yaml"))
    strict = lint(load_bytes(data, "in.yaml"), options=LintOptions(strict=True))
    assert [(d.code, d.severity) for d in loose] == [("SMB024", Severity.WARNING)]
    assert [(d.code, d.severity) for d in strict] == [("SMB024", Severity.ERROR)]
    assert (loose.exit_code(), strict.exit_code()) == (0, 1)


def test_exit_code_follows_fail_on() -> None:
    report = lint(load_bytes(SPLIT, "in.yaml"), options=LintOptions(fail_on=Severity.WARNING))
    assert report.exit_code() == 1
    assert report.exit_code(Severity.ERROR) == 0


def test_assume_versions_by_group_version_and_by_kind() -> None:
    assert assume_versions(["split.smi-spec.io/v1alpha4"]) == {"TrafficSplit": "split.smi-spec.io/v1alpha4"}
    assert assume_versions(["specs.smi-spec.io/v1alpha4"]) == {
        "HTTPRouteGroup": "specs.smi-spec.io/v1alpha4",
        "TCPRoute": "specs.smi-spec.io/v1alpha4",
        "UDPRoute": "specs.smi-spec.io/v1alpha4",
    }
    assert assume_versions(["TCPRoute=specs.smi-spec.io/v1alpha1"]) == {
        "TCPRoute": "specs.smi-spec.io/v1alpha1"
    }
    assert assume_versions(["access.smi-spec.io/v1alpha4"]) == {
        "TrafficTarget": "access.smi-spec.io/v1alpha4",
        "IdentityBinding": "access.smi-spec.io/v1alpha4",
    }
    for bad in ("v1alpha4", "split.smi-spec.io/v7", "Pod=split.smi-spec.io/v1alpha4"):
        with pytest.raises(AssumeVersionError):
            assume_versions([bad])


def test_an_assumed_version_never_overrides_a_written_one() -> None:
    data = b"apiVersion: split.smi-spec.io/v1alpha1\nkind: TrafficSplit\nmetadata: {name: s}\nspec:\n  service: a\n  backends: [{service: b, weight: 500m}]\n"
    options = LintOptions(assume_version=assume_versions(["split.smi-spec.io/v1alpha4"]))
    assert list(lint(load_bytes(data, "in.yaml"), options=options)) == []


def test_library_accepts_paths_or_a_load_result_with_the_same_findings(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "in.yaml"
    path.write_bytes(SPLIT)
    by_path = lint([path])
    by_load = lint(load_bytes(SPLIT, str(path)))
    assert by_path.diagnostics == by_load.diagnostics
    assert (by_path.documents, by_path.resources, by_path.files) == (2, 2, 1)


def test_lint_leaves_the_garbage_collector_as_it_found_it() -> None:
    assert gc.isenabled()
    lint(load_bytes(SPLIT, "in.yaml"))
    assert gc.isenabled()
    gc.disable()
    try:
        lint(load_bytes(SPLIT, "in.yaml"))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_every_rule_check_belongs_to_a_registered_rule() -> None:
    from smi_bridge.lint.rules import CHECKS, INPUT_RULES, RULES

    declared = {c.code for rule in (*RULES, *INPUT_RULES) for c in rule.checks}
    assert declared == {c.code for c in CHECKS}
