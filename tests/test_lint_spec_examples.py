"""The SMI spec's own examples and real-world manifests, linted.

Spec examples mostly lack ``apiVersion``: the version is taken from the file name, which names the
spec document's version(s) (``trafficsplit-v1alpha3-v1alpha4-...`` is linted once as each), and
specs objects inside an access or split document get the specs version that document pairs with.
Examples that reference routes from another example of the same document are linted together with
it. Every example the spec presents as valid lints without errors; the files named as doc bugs
produce the finding that names the bug.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smi_bridge.diagnostics import Severity
from smi_bridge.lint import LintOptions, assume_versions, lint
from tests.conftest import ANCHORS

EXAMPLES = ANCHORS / "smi" / "examples"
SPEC_FILES = sorted((EXAMPLES / "spec-docs").rglob("*.yaml")) + sorted(
    (EXAMPLES / "spec-docs-v0.6.0-headers-list-form").glob("*.yaml")
)
REAL_WORLD = EXAMPLES / "real-world"

# The specs version each access/split document is written against (smi-spec.md, section 0).
PAIRED_SPECS = {
    ("access.smi-spec.io", "v1alpha1"): "v1alpha2",
    ("access.smi-spec.io", "v1alpha2"): "v1alpha3",
    ("access.smi-spec.io", "v1alpha3"): "v1alpha4",
    ("access.smi-spec.io", "v1alpha4"): "v1alpha4",
    ("split.smi-spec.io", "v1alpha3"): "v1alpha3",
    ("split.smi-spec.io", "v1alpha4"): "v1alpha4",
}

# file name -> (code, path) findings that name the example's documented bug
DOC_BUGS: dict[str, set[tuple[str, str]]] = {
    "httproutegroup-v1alpha1-everything-bad-apiversion.yaml": {("SMB029", "apiVersion")},
    "apiresourcelist-v1alpha1-discovery-elided-NOT-VALID-YAML.yaml": {("SMB001", "")},
    "trafficsplit-v1alpha3-v1alpha4-ab-test-with-httproutegroup.yaml": {("SMB025", "matches")},
    "trafficsplit-v1alpha3-v1alpha4-ab-test-with-httproutegroup-list-form.yaml": {("SMB025", "matches")},
    "identitybinding-v1alpha4-draft-service-a-schemes.yaml": {
        ("SMB071", "spec.schemes.serviceAccount"),
        ("SMB072", "spec.schemes.spiffeIdentities[0]"),
        ("SMB072", "spec.schemes.spiffeIdentities[1]"),
    },
}
# Not objects: fragments of a TrafficMetrics (no apiVersion, no kind). Their findings say so.
ELIDED: dict[str, set[tuple[str, str]]] = {
    "trafficmetrics-v1alpha1-fragment-edge-from-server-empty-resource.yaml": {("SMB020", "")},
    "trafficmetrics-v1alpha1-fragment-edge-from-server.yaml": {("SMB020", "")},
    "trafficmetrics-v1alpha1-fragment-edge-to-client.yaml": {("SMB020", "")},
}
# Warnings the spec's text itself discusses, which must be reported for these examples.
DISCUSSED: dict[str, set[str]] = {
    "trafficsplit-v1alpha1-tradeoff-self-referential.yaml": {"SMB037"},
    "trafficsplit-v1alpha2-tradeoff-self-referential.yaml": {"SMB037"},
    "trafficsplit-v1alpha3-v1alpha4-tradeoff-self-referential.yaml": {"SMB037"},
    "trafficsplit-v1alpha1-workflow-2-shift-1-and-500m.yaml": {"SMB054"},
    "traffictarget-v1alpha4-draft-bundle-l4-identitybinding.yaml": {"SMB070"},
    "traffictarget-v1alpha4-draft-bundle-l7-identitybinding.yaml": {"SMB070"},
    "traffictarget-v1alpha4-draft-path-specific-identitybinding.yaml": {"SMB070"},
    "identitybinding-v1alpha4-draft-service-a-schemes.yaml": {"SMB070"},
}


def document_group(name: str) -> str:
    if "-in-access-" in name or name.startswith(("traffictarget", "identitybinding")):
        return "access.smi-spec.io"
    if name.startswith("trafficsplit"):
        return "split.smi-spec.io"
    if name.startswith(("trafficmetrics", "apiresourcelist", "apiservice", "role-")):
        return "metrics.smi-spec.io"
    return "specs.smi-spec.io"


def versions_of(path: Path) -> list[str]:
    return re.findall(r"v1alpha\d", path.name) or ["v1alpha1"]


def assumed(path: Path, version: str) -> dict[str, str]:
    group = document_group(path.name)
    specs = [f"{group}/{version}"]
    if (group, version) in PAIRED_SPECS:
        specs.append(f"specs.smi-spec.io/{PAIRED_SPECS[(group, version)]}")
    return assume_versions(specs)


def companions(path: Path, version: str) -> list[Path]:
    """Route examples of the same access document, which this example's rules reference."""
    if not path.name.startswith("traffictarget"):
        return []
    return [p for p in path.parent.glob(f"*-in-access-*{version}*.yaml") if p != path]


SPEC_CASES = [(p, v) for p in SPEC_FILES for v in versions_of(p)]


@pytest.mark.parametrize(("path", "version"), SPEC_CASES, ids=[f"{p.name}@{v}" for p, v in SPEC_CASES])
def test_spec_example_lints_as_the_spec_describes_it(path: Path, version: str) -> None:
    report = lint(
        [path, *companions(path, version)], options=LintOptions(assume_version=assumed(path, version))
    )
    found = {(d.code, d.path) for d in report.diagnostics}
    errors = {(d.code, d.path) for d in report.diagnostics if d.severity >= Severity.ERROR}
    named = DOC_BUGS.get(path.name, set()) | ELIDED.get(path.name, set())
    assert named <= found
    if path.name in DOC_BUGS:
        assert errors, "a doc bug must be an error or a named finding"
    else:
        assert errors <= named, f"unexpected errors: {sorted(errors - named)}"
    assert DISCUSSED.get(path.name, set()) <= {code for code, _ in found}


# file -> every (code, path) linting it alone must report
REAL_WORLD_FINDINGS: dict[str, set[tuple[str, str]]] = {
    "consul-smi-controller/smi.yml": set(),
    "linkerd-smi/traffic-split-leaf-weights.yaml": {("SMB037", "spec.backends[0].service")},
    "linkerd-smi/updated-traffic-split-leaf-weights.yaml": {("SMB037", "spec.backends[0].service")},
    "smi-adapter-istio/docs-trafficsplit-04-traffic-split-900-100.yaml": set(),
    # its HTTPRouteGroup is in the sibling docs file
    "smi-adapter-istio/docs-traffictarget-traffictarget-reviews-v2.yaml": {("SMB030", "specs[0].name")},
    "smi-adapter-istio/docs-traffictarget-traffictarget.yaml": {("SMB086", "matches[0].pathRegex")},
    "smi-adapter-istio/test-manual-02-traffic-split-1000-0-output.yaml": set(),
    "smi-adapter-istio/test-manual-02-traffic-split-1000-0.yaml": set(),
    "smi-adapter-istio/test-manual-04-traffic-split-1000-500-output.yaml": set(),
    "smi-adapter-istio/test-manual-04-traffic-split-1000-500.yaml": set(),
    "smi-adapter-istio/test-manual-05-traffic-split-0-1000-output.yaml": set(),
    "smi-adapter-istio/test-manual-05-traffic-split-0-1000.yaml": set(),
    "smi-controller-sdk-samples/access_v1alpha1_traffictarget.yaml": {
        ("SMB030", "specs[0].name"),
        ("SMB041", "destination.port"),
    },
    "smi-controller-sdk-samples/access_v1alpha2_traffictarget.yaml": {
        ("SMB030", "spec.rules[0].name"),
        ("SMB041", "spec.destination.port"),
    },
    "smi-controller-sdk-samples/access_v1alpha3_traffictarget.yaml": {
        ("SMB030", "spec.rules[0].name"),
        ("SMB030", "spec.rules[1].name"),
        ("SMB042", "spec.rules"),
    },
    "smi-controller-sdk-samples/access_v1alpha4_identitybinding.yaml": {
        ("SMB070", "apiVersion"),
        ("SMB072", "spec.schemes.spiffeIdentities[0]"),
        ("SMB072", "spec.schemes.spiffeIdentities[1]"),
    },
    "smi-controller-sdk-samples/access_v1alpha4_traffictarget.yaml": {
        ("SMB030", "spec.rules[0].name"),
        ("SMB030", "spec.rules[1].name"),
        ("SMB042", "spec.rules"),
    },
    "smi-controller-sdk-samples/specs_v1alpha1_httproutegroup.yaml": set(),
    "smi-controller-sdk-samples/specs_v1alpha1_tcproute.yaml": set(),
    "smi-controller-sdk-samples/specs_v1alpha2_httproutegroup.yaml": set(),
    "smi-controller-sdk-samples/specs_v1alpha2_tcproute.yaml": set(),
    "smi-controller-sdk-samples/specs_v1alpha3_httproutegroup.yaml": set(),
    "smi-controller-sdk-samples/specs_v1alpha3_tcproute.yaml": set(),
    # x-debug: 1 is a YAML integer, which no SMI schema accepts as a header pattern
    "smi-controller-sdk-samples/specs_v1alpha4_httproutegroup.yaml": {
        ("SMB087", "spec.matches[0].headers.x-debug")
    },
    # the sample is indented by one space after its first line: not YAML
    "smi-controller-sdk-samples/specs_v1alpha4_tcproute.yaml": {("SMB001", "")},
    "smi-controller-sdk-samples/specs_v1alpha4_udproute.yaml": {
        ("SMB023", "spec.matches"),
        ("SMB024", "spec.foo"),
    },
    "smi-controller-sdk-samples/split_v1alpha1_trafficsplit.yaml": set(),
    "smi-controller-sdk-samples/split_v1alpha2_trafficsplit.yaml": set(),
    "smi-controller-sdk-samples/split_v1alpha3_trafficsplit.yaml": set(),
    "smi-controller-sdk-samples/split_v1alpha4_trafficsplit.yaml": {
        ("SMB081", "spec.matches[0].headers.x-debug")
    },
}


def test_every_real_world_file_has_expected_findings() -> None:
    files = {p.relative_to(REAL_WORLD).as_posix() for p in REAL_WORLD.rglob("*") if p.is_file()}
    assert files == set(REAL_WORLD_FINDINGS)


@pytest.mark.parametrize("name", sorted(REAL_WORLD_FINDINGS))
def test_real_world_manifest_gets_exactly_the_expected_findings(name: str) -> None:
    report = lint([REAL_WORLD / name])
    assert {(d.code, d.path) for d in report.diagnostics} == REAL_WORLD_FINDINGS[name]


def test_real_world_directory_lints_as_one_input_and_reports_redefined_objects() -> None:
    report = lint([REAL_WORLD])
    redefined = {d.resource.name for d in report.diagnostics if d.code == "SMB100"}
    # the controller-sdk samples define the same objects once per API version
    assert {"path-specific", "the-routes", "tcp-route", "trafficsplit-sample", "ab-test"} <= redefined
    assert report.documents > 30
