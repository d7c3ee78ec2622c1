"""The README's rule-code tables are generated from the code registries; this test keeps them in step
(``pytest --update-golden`` rewrites the section between the markers)."""

from __future__ import annotations

import importlib
import re

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


def test_readme_lists_every_code(update_golden: bool) -> None:
    text = README.read_text("utf-8")
    assert START in text and END in text
    current = text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    wanted = code_tables()
    if update_golden and current != wanted:
        README.write_text(
            text.replace(current.rstrip("\n"), wanted.rstrip("\n"), 1)
            if current.strip()
            else text.replace(START + END, f"{START}\n{wanted}{END}"),
            "utf-8",
        )
        return
    assert current == wanted, "README rule codes are stale: pytest tests/test_readme.py --update-golden"
    assert len(set(re.findall(r"\| (SM[A-Z]\d{3}) \|", current))) == len(
        re.findall(r"\| (SM[A-Z]\d{3}) \|", current)
    )
