"""The translation fixture cases under ``fixtures/translate/<NN-case>/``.

A case is ``case.yaml`` (a description, anchor files from ../shared/anchors/smi/examples to read,
and ``assume_version`` for spec examples that omit apiVersion) plus an optional ``input.yaml`` of
its own (inventory, traps). Expected output per target lives in ``expected/<target>.yaml`` (the
objects) and ``expected/<target>.notes`` (the report: one ``CODE severity message`` line each).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from backends.base import Options
from smi_bridge.build import BuildResult, build
from smi_bridge.diagnostics import Diagnostic
from smi_bridge.load import load
from smi_bridge.parse import parse_documents
from tests.conftest import ANCHORS, FIXTURES, REPO

CASES_DIR = FIXTURES / "translate"


@dataclass
class Case:
    name: str
    path: Path
    description: str
    inputs: list[Path]
    assume_version: dict[str, str]
    options: Options

    def build(self) -> tuple[BuildResult, list[Diagnostic]]:
        # Relative to the checkout, so that origins (file paths in the proxy config) are the same
        # in every clone: fixtures/... and ../shared/anchors/...
        here = os.getcwd()
        os.chdir(REPO)
        try:
            loaded = load([os.path.relpath(p, REPO) for p in self.inputs])
        finally:
            os.chdir(here)
        parsed = parse_documents(loaded.documents, assume_version=self.assume_version)
        built = build(parsed.resources)
        return built, [*loaded.diagnostics, *parsed.diagnostics, *built.diagnostics]


def cases() -> list[Case]:
    out = []
    for d in sorted(CASES_DIR.iterdir()):
        if not (d / "case.yaml").is_file():
            continue
        spec: dict[str, Any] = yaml.safe_load((d / "case.yaml").read_text("utf-8"))
        inputs = [ANCHORS / "smi" / "examples" / a for a in spec.get("anchors", [])]
        if (d / "input.yaml").is_file():
            inputs.append(d / "input.yaml")
        out.append(
            Case(
                name=d.name,
                path=d,
                description=spec.get("description", ""),
                inputs=inputs,
                assume_version=spec.get("assume_version", {}) or {},
                options=Options(**(spec.get("options") or {})),
            )
        )
    return out


def notes_text(diagnostics: list[Diagnostic]) -> str:
    """The report as stable text (no file paths, which differ between checkouts)."""
    lines = []
    for d in sorted(
        diagnostics,
        key=lambda d: (d.code, d.resource.kind, d.resource.namespace, d.resource.name, d.path, d.message),
    ):
        res = f" ({d.resource})" if d.resource.kind else ""
        lines.append(f"{d.code} {d.severity} {d.message}{res}")
    return "\n".join(lines) + ("\n" if lines else "")
