"""Data flows one way (ARCHITECTURE.md): model -> ir -> build/semantics -> backends -> translate/migrate
-> controller/cli. This test reads every module's imports and fails on a reach back."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

STDLIB = set(sys.stdlib_module_names) | {"__future__"}

# package prefix -> project modules it may import (prefix match); third-party allowances separately.
RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "smi_bridge.model": (("smi_bridge.model",), ("pydantic",)),
    "smi_bridge.ir": ((), ()),
    "smi_bridge.diagnostics": (("smi_bridge.ir",), ()),
    "smi_bridge.regex": ((), ()),
    "smi_bridge.resources": ((), ()),  # where schemas/ is; anything may ask
    "smi_bridge.semantics": (("smi_bridge.ir", "smi_bridge.regex"), ()),
    "smi_bridge.probes": (("smi_bridge.ir", "smi_bridge.regex", "smi_bridge.semantics"), ()),
    "backends": (
        (
            "backends",
            "smi_bridge.ir",
            "smi_bridge.diagnostics",
            "smi_bridge.regex",
            "smi_bridge.semantics",
            "smi_bridge.model.quantity",
            "smi_bridge.resources",
            "smi_bridge",
        ),
        ("jsonschema",),
    ),
    "proxy": (
        (
            "proxy",
            "smi_bridge.ir",
            "smi_bridge.semantics",
            "smi_bridge.regex",
            "smi_bridge.diagnostics",
            "smi_bridge.resources",
            "smi_bridge",
        ),
        ("uvloop", "httptools", "prometheus_client", "jsonschema", "yaml", "cryptography"),
    ),
}
# Modules a backend must never import even though they live under smi_bridge (no reaching forward).
BACKEND_FORBIDDEN = (
    "smi_bridge.load",
    "smi_bridge.parse",
    "smi_bridge.build",
    "smi_bridge.lint",
    "smi_bridge.translate",
    "smi_bridge.migrate",
    "smi_bridge.controller",
    "smi_bridge.cli",
)


def modules() -> list[tuple[str, Path]]:
    out = []
    for top in ("smi_bridge", "backends", "proxy"):
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out.append((".".join(parts), path))
    return out


def imports_of(path: Path, module: str) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                names.append(".".join([*base, node.module] if node.module else base))
            elif node.module:
                names.append(node.module)
    return names


def rule_for(module: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    best = None
    for prefix in RULES:
        if (module == prefix or module.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return RULES[best] if best else None


# The package root holds only __version__: importing it is fine anywhere, its submodules are not.
EXACT = {"smi_bridge"}


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or (p not in EXACT and name.startswith(p + ".")) for p in prefixes)


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_follow_the_layers(module: str, path: Path) -> None:
    rule = rule_for(module)
    if rule is None:
        return  # top layers (translate, lint, migrate, controller, cli) may import everything below
    allowed_project, allowed_third = rule
    bad = []
    for name in imports_of(path, module):
        top = name.split(".")[0]
        if top in STDLIB:
            continue
        if top in ("smi_bridge", "backends", "proxy"):
            if module.startswith("backends") and _under(name, BACKEND_FORBIDDEN):
                bad.append(name)
            elif not _under(name, allowed_project):
                bad.append(name)
        elif not _under(name, allowed_third):
            bad.append(name)
    assert bad == [], f"{module} imports {bad}, which its layer may not"
