"""Golden tests: every fixture case translated to every target matches ``expected/`` exactly.

``pytest --update-golden`` rewrites the expected files; a mismatch shows a unified diff.
The same run proves that every emitted object validates against the vendor's published CRD.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from backends import REGISTRY
from smi_bridge.crdcheck import CRDIndex
from smi_bridge.translate import emit
from tests.conftest import REPO
from tests.translate_cases import Case, cases, notes_text

CASES = cases()
TARGETS = list(REGISTRY)


def _dump(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False, explicit_start=True)


def _compare(path: Path, actual: str, update: bool) -> None:
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing; run pytest --update-golden"
    expected = path.read_text(encoding="utf-8")
    if path.suffix == ".yaml":
        same = list(yaml.safe_load_all(expected)) == list(yaml.safe_load_all(actual))
    else:
        same = expected == actual
    if not same:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True), actual.splitlines(keepends=True), str(path), "actual"
            )
        )
        pytest.fail(f"{path.relative_to(REPO)} differs (pytest --update-golden to accept):\n{diff}")


def test_there_are_at_least_twenty_cases() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("target", TARGETS)
def test_translation_matches_golden(case: Case, target: str, update_golden: bool) -> None:
    built, input_diags = case.build()
    out = emit(built.ir, target, case.options)
    _compare(case.path / "expected" / f"{target}.yaml", _dump(out.objects), update_golden)
    _compare(case.path / "expected" / f"{target}.notes", notes_text(out.diagnostics), update_golden)
    if target == TARGETS[0]:
        _compare(case.path / "expected" / "input.notes", notes_text(input_diags), update_golden)


@pytest.fixture(scope="module")
def proxy_schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REPO / "schemas" / "proxy-config.schema.json").read_text("utf-8"))
    return data


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("target", TARGETS)
def test_every_emitted_object_validates_against_the_vendor_crd(
    case: Case, target: str, vendor_crds: CRDIndex, proxy_schema: dict[str, Any]
) -> None:
    built, _ = case.build()
    out = emit(built.ir, target, case.options)
    for obj in out.objects:
        api, kind = obj["apiVersion"], obj["kind"]
        if api.startswith("proxy.smi-bridge.io/"):
            validator = jsonschema.validators.validator_for(proxy_schema)(proxy_schema)
            errors = [e.message for e in validator.iter_errors(obj)]
        else:
            assert vendor_crds.has(api, kind), f"no published CRD for {api} {kind}"
            errors = vendor_crds.validate(obj)
        assert errors == [], f"{kind} {obj['metadata'].get('name')} ({case.name}, {target}): {errors}"
