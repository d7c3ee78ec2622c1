"""The data plane stands on the IR and its meaning only (and where the schemas are): it never imports
kubernetes, backends or lint."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PROXY = Path(__file__).resolve().parent.parent / "proxy"

ALLOWED_PROJECT = {
    "smi_bridge.ir",
    "smi_bridge.semantics",
    "smi_bridge.regex",
    "smi_bridge.diagnostics",
    "smi_bridge.resources",  # where schemas/ is
}
FORBIDDEN_LIBRARIES = {"kubernetes"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # ``from smi_bridge import semantics`` imports the module smi_bridge.semantics
            names += [
                f"{node.module}.{alias.name}" if node.module == "smi_bridge" else node.module
                for alias in node.names
            ]
    return names


def test_proxy_imports_only_the_ir_its_meaning_and_libraries() -> None:
    files = sorted(PROXY.glob("*.py"))
    assert files, "no proxy modules found"
    offending = []
    for file in files:
        for name in _imports(file):
            top = name.split(".")[0]
            if top == "proxy" or top in sys.stdlib_module_names:
                continue
            if top in ("smi_bridge", "backends"):
                if name not in ALLOWED_PROJECT:
                    offending.append(f"{file.name}: {name}")
                continue
            if top in FORBIDDEN_LIBRARIES:
                offending.append(f"{file.name}: {name}")
    assert offending == []


def test_the_import_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from smi_bridge import translate\nimport backends.istio\nfrom smi_bridge.ir import IR\n")
    assert _imports(bad) == ["smi_bridge.translate", "backends.istio", "smi_bridge.ir"]
