"""Validate objects against CustomResourceDefinitions (their ``openAPIV3Schema``).

Used by ``translate --validate-with CRD_DIR`` and by the test that checks every emitted object
against the vendors' published CRDs. What a structural schema can say is checked with jsonschema;
CEL rules (``x-kubernetes-validations``) are not evaluated, and the report says so once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml


@dataclass
class CRDIndex:
    """``(group, version, kind) -> schema`` for every CRD found."""

    schemas: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    files: dict[tuple[str, str, str], str] = field(default_factory=dict)
    _validators: dict[tuple[str, str, str], jsonschema.Draft7Validator] = field(default_factory=dict)

    @classmethod
    def from_paths(cls, paths: Iterable[Path]) -> CRDIndex:
        index = cls()
        for root in paths:
            files = sorted(root.rglob("*.y*ml")) if root.is_dir() else [root]
            for file in files:
                with file.open("rb") as fh:
                    for doc in yaml.load_all(fh, Loader=yaml.CSafeLoader):
                        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                            index.add(doc, str(file))
        return index

    def add(self, crd: Mapping[str, Any], file: str = "") -> None:
        spec = crd.get("spec", {})
        group = spec.get("group", "")
        kind = spec.get("names", {}).get("kind", "")
        shared = spec.get("validation", {}).get("openAPIV3Schema")  # apiextensions v1beta1
        for version in spec.get("versions", []):
            schema = (version.get("schema") or {}).get("openAPIV3Schema") or shared
            if schema is None:
                continue
            key = (group, version["name"], kind)
            self.schemas[key] = schema
            self.files[key] = file

    def has(self, api_version: str, kind: str) -> bool:
        return self._key(api_version, kind) in self.schemas

    @staticmethod
    def _key(api_version: str, kind: str) -> tuple[str, str, str]:
        group, _, version = api_version.rpartition("/")
        return (group, version, kind)

    def validate(self, obj: Mapping[str, Any]) -> list[str]:
        """Error messages (``path: message``) for ``obj``; [] when valid.

        Raises ``KeyError`` when no CRD for the object's apiVersion and kind is known.
        """
        key = self._key(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        validator = self._validators.get(key)
        if validator is None:
            validator = jsonschema.Draft7Validator(_kubernetes_to_jsonschema(self.schemas[key]))
            self._validators[key] = validator
        errors = []
        for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            where = ".".join(str(p) for p in err.absolute_path) or "<root>"
            errors.append(f"{where}: {err.message}")
        return errors


def _kubernetes_to_jsonschema(schema: Any) -> Any:
    """Translate the OpenAPI v3 dialect of CRDs into JSON Schema draft 7.

    ``nullable: true`` admits null; ``x-kubernetes-int-or-string`` admits an int or a string;
    ``metadata`` is checked by the API server, not the CRD, so it is left open.
    """
    if isinstance(schema, list):
        return [_kubernetes_to_jsonschema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _kubernetes_to_jsonschema(v) for k, v in schema.items()}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        t = out["type"]
        out["type"] = [*t, "null"] if isinstance(t, list) else [t, "null"]
    return out
