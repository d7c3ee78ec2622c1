"""JSON Schemas for every SMI kind and version, generated from the models (the one source of truth).

``python -m smi_bridge.schema`` (re)writes ``schemas/<group>_<version>_<kind>.json``; a test fails
when the files drift from the models. ``validate(obj)`` checks one object with jsonschema, for
users who want the schema view rather than the lint view.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema

from smi_bridge.model import SMI_MODELS
from smi_bridge.resources import SCHEMA_DIR

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_filename(group: str, version: str, kind: str) -> str:
    return f"{group}_{version}_{kind.lower()}.json"


def generate() -> dict[str, dict[str, Any]]:
    """filename -> schema for every SMI (group, version, kind)."""
    out: dict[str, dict[str, Any]] = {}
    for (group, version, kind), model in sorted(SMI_MODELS.items()):
        schema = model.model_json_schema()
        schema = {
            "$schema": DIALECT,
            "$id": f"https://smi-bridge.io/schemas/{schema_filename(group, version, kind)}",
            "title": f"{kind} {group}/{version}",
            **{k: v for k, v in schema.items() if k != "title"},
        }
        # Pin apiVersion to this group/version (the model accepts any string: parse dispatches on it).
        props = schema.setdefault("properties", {})
        props["apiVersion"] = {"const": f"{group}/{version}", "type": "string"}
        out[schema_filename(group, version, kind)] = schema
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generate().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


def load_schema(group: str, version: str, kind: str, directory: Path = SCHEMA_DIR) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / schema_filename(group, version, kind)).read_text("utf-8"))
    return data


def validate(obj: dict[str, Any], directory: Path = SCHEMA_DIR) -> list[str]:
    """Schema errors (``path: message``) of one SMI object; KeyError if its kind/version is unknown."""
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    kind = str(obj.get("kind", ""))
    if (group, version, kind) not in SMI_MODELS:
        raise KeyError(f"{group}/{version} {kind}")
    validator = jsonschema.Draft202012Validator(load_schema(group, version, kind, directory))
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    ]


if __name__ == "__main__":
    for p in write(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR):
        print(p)
