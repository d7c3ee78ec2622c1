"""The README's generated sections (rule codes, PromQL) come from the code; this test keeps them in
step (``pytest --update-golden`` rewrites the text between the markers)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

import pytest

from smi_bridge.lint.registry import all_checks
from tests.conftest import REPO

README = REPO / "README.md"
START, END = "<!-- codes:start -->", "<!-- codes:end -->"
MODULES = (
    "smi_bridge.translate",
    "smi_bridge.convert",
    "smi_bridge.migrate",
    "smi_bridge.equivalence",
    "smi_bridge.emit_smi",
    "backends.istio",
    "backends.linkerd",
    "backends.consul",
    "backends.gateway_api",
    "backends.gamma",
    "backends.proxy",
)


def _row(code: str, severity: object, title: str) -> str:
    return f"| {code} | {severity} | {title.replace('|', '/')} |"


def code_tables() -> str:
    lines = [
        "### Lint (`smi-bridge lint --list-checks`)",
        "",
        "| code | severity | what it finds |",
        "|---|---|---|",
    ]
    lines += [_row(c.code, c.severity, c.title) for c in all_checks()]
    lines += [
        "",
        "### Conversion, translation, import and migration",
        "",
        "| code | severity | meaning |",
        "|---|---|---|",
    ]
    seen: set[str] = set()
    for name in MODULES:
        for c in getattr(importlib.import_module(name), "CHECKS", ()):
            if c.code not in seen:
                seen.add(c.code)
                lines.append(_row(c.code, c.severity, c.title))
    return "\n".join(lines) + "\n"


def promql_section() -> str:
    from smi_bridge.metrics import kinds
    from smi_bridge.metrics.queries import MESHES
    from smi_bridge.metrics.window import Window

    lines = []
    for name, mesh in MESHES.items():
        plan = mesh.resource(kinds.DEPLOYMENT, "shop", "web-v1", Window.parse("30s"))
        lines += [
            f"<details><summary><code>--backend {name}</code>: {mesh.description}</summary>",
            "",
            "```promql",
        ]
        for q in plan.queries:
            lines += [f"# {q.metric}", q.expr]
        lines += ["```", "", "</details>", ""]
    return "\n".join(lines)


def _section(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n") + "\n"


@pytest.mark.parametrize(
    ("start", "end", "generate"),
    [(START, END, code_tables), ("<!-- promql:start -->", "<!-- promql:end -->", promql_section)],
    ids=["codes", "promql"],
)
def test_readme_generated_sections_are_current(
    start: str, end: str, generate: Callable[[], str], update_golden: bool
) -> None:
    text = README.read_text("utf-8")
    assert start in text and end in text
    current = _section(text, start, end)
    wanted = generate()
    if update_golden and current != wanted:
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1]
        README.write_text(f"{head}{start}\n{wanted}{end}{tail}", "utf-8")
        return
    assert current == wanted, "README section is stale: pytest tests/test_readme.py --update-golden"


def test_readme_lists_each_code_once() -> None:
    codes = re.findall(r"\| (SM[A-Z]\d{3}) \|", _section(README.read_text("utf-8"), START, END))
    assert len(codes) > 200
    assert len(set(codes)) == len(codes)
