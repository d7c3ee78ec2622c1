"""Property: whatever goes in (random values, mutated real manifests, raw bytes), only findings come out.

No exception escapes ``lint``; every finding has a registered code, a severity, a message and a
sane position; every output format renders it into a well-formed document.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from functools import cache
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smi_bridge.diagnostics import Diagnostic, Severity
from smi_bridge.lint import LintReport, lint
from smi_bridge.lint.formatters import FORMATTERS, RenderOptions
from smi_bridge.lint.registry import codes
from smi_bridge.load import load_bytes
from smi_bridge.model import KIND_VERSIONS
from tests.conftest import ANCHORS, FIXTURES

API_VERSIONS = [
    *sorted({f"{g}/{v}" for (g, _), versions in KIND_VERSIONS.items() for v in versions}),
    "access.smi-spec.io/v1alpha4",
    "spec.smi-spec.io/v1alpha1",
    "v1alpha1",
    "v1",
]
KINDS = [*sorted({k for _, k in KIND_VERSIONS}), "IdentityBinding", "Service", "List", "Deployment"]
KEYS = [
    "apiVersion", "kind", "metadata", "name", "namespace", "annotations", "spec", "service", "backends",
    "weight", "matches", "pathRegex", "methods", "headers", "destination", "sources", "rules", "specs",
    "port", "ports", "schemes", "spiffeIdentities", "serviceAccount", "podLabelSelector", "items",
    "smi-bridge.io/suppress",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "",
            "*",
            "GET",
            "get",
            ".*",
            "(?!x)",
            "^(a)\\1$",
            "500m",
            "-1",
            "1e999",
            "SMB037,SMB999",
            "spiffe://td/x",
            "svc.ns.svc.cluster.local",
            "HTTPRouteGroup",
            "ServiceAccount",
        ]
    ),
    st.text(max_size=12),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=8))
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)
objects = st.fixed_dictionaries(
    {"apiVersion": st.sampled_from(API_VERSIONS), "kind": st.sampled_from(KINDS)},
    optional={
        "metadata": st.dictionaries(keys, values, max_size=4),
        "spec": values,
        "matches": values,
        "destination": values,
        "sources": values,
        "specs": values,
        "items": values,
    },
)


@cache
def seeds() -> tuple[Any, ...]:
    """Real manifests to mutate: the lint fixtures and the SMI spec's examples."""
    out: list[Any] = []
    paths = [
        *sorted((FIXTURES / "lint").rglob("*.yaml")),
        *sorted((ANCHORS / "smi" / "examples").rglob("*.yaml")),
    ]
    for path in paths:
        try:
            out.extend(d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict))
        except yaml.YAMLError:
            continue
    return tuple(out)


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    doc = json.loads(json.dumps(draw(st.sampled_from(seeds())), default=str))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        node, parent, key = doc, None, None
        for _ in range(draw(st.integers(min_value=0, max_value=6))):
            if isinstance(node, dict) and node:
                k = draw(st.sampled_from(sorted(node)))
            elif isinstance(node, list) and node:
                k = draw(st.integers(min_value=0, max_value=len(node) - 1))
            else:
                break
            parent, key, node = node, k, node[k]
        action = draw(st.sampled_from(["replace", "delete", "version"]))
        if action == "version":
            doc["apiVersion"] = draw(st.sampled_from(API_VERSIONS))
        elif parent is None:
            doc = draw(objects)
        elif action == "delete" and isinstance(parent, dict):
            del parent[key]
        else:
            parent[key] = draw(values)
    return doc


def check_report(report: LintReport) -> None:
    known = codes()
    for d in report.diagnostics:
        assert isinstance(d, Diagnostic)
        assert d.code in known, d.code
        assert isinstance(d.severity, Severity)
        assert isinstance(d.message, str) and d.message
        assert d.line is None or d.line >= 1
        assert d.column is None or d.column >= 1
    for fmt, render in FORMATTERS.items():
        text = render(report, RenderOptions(color=True, summary=True))
        if fmt in ("json", "sarif"):
            json.loads(text)
        elif fmt == "junit":
            ET.fromstring(text)


def dump(docs: list[Any]) -> bytes:
    return yaml.safe_dump_all(docs, allow_unicode=True).encode()


SETTINGS = settings(
    max_examples=int(__import__("os").environ.get("LINT_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(st.lists(objects, min_size=1, max_size=4))
def test_random_objects_only_produce_findings(docs: list[Any]) -> None:
    check_report(lint(load_bytes(dump(docs), "random.yaml")))


@SETTINGS
@given(st.lists(mutated(), min_size=1, max_size=3))
def test_mutated_real_manifests_only_produce_findings(docs: list[Any]) -> None:
    check_report(lint(load_bytes(dump(docs), "mutated.yaml")))


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_produce_findings(data: bytes) -> None:
    check_report(lint(load_bytes(data, "bytes.yaml")))


@SETTINGS
@given(st.lists(mutated(), min_size=1, max_size=3))
def test_mutated_manifests_as_json_only_produce_findings(docs: list[Any]) -> None:
    data = json.dumps(docs[0] if len(docs) == 1 else {"apiVersion": "v1", "kind": "List", "items": docs})
    check_report(lint(load_bytes(data.encode(), "mutated.json")))
