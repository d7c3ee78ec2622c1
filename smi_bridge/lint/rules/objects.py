"""Rules over the whole input: objects defined twice.

``build`` indexes objects by kind, namespace and name and keeps the first of two with the same key;
``kubectl apply`` of the same files keeps the last. Saying so is the only way that choice is not
silent (a directory of samples with one file per API version of the same object is the common case).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from smi_bridge.diagnostics import Check, Severity
from smi_bridge.lint.rules.base import Finding, InputRule, finding
from smi_bridge.model import INVENTORY_MODELS
from smi_bridge.parse import Resource

DUPLICATE_OBJECT = Check(
    "SMB100", Severity.WARNING, "the same object (kind, namespace, name) is defined twice"
)

CHECKS: tuple[Check, ...] = (DUPLICATE_OBJECT,)


def duplicates(resources: Sequence[Resource]) -> Iterator[tuple[Resource | None, Finding]]:
    first: dict[tuple[str, str, str, str], Resource] = {}
    for res in resources:
        if not res.name or not (res.smi or (res.group, res.kind) in INVENTORY_MODELS):
            continue
        key = (res.group, res.kind, res.namespace, res.name)
        earlier = first.setdefault(key, res)
        if earlier is res:
            continue
        where = (
            f"{earlier.doc.file}:{earlier.doc.line}"
            if earlier.doc.file
            else f"document {earlier.doc.index + 1}"
        )
        versions = (
            f" (at {earlier.version}, this one at {res.version})" if earlier.version != res.version else ""
        )
        yield (
            res,
            finding(
                res,
                DUPLICATE_OBJECT,
                f"{res.kind} {res.namespace}/{res.name} is already defined at {where}{versions}; smi-bridge uses the "
                "first, kubectl apply would keep the last",
                ["metadata", "name"],
                hint="keep one definition per object (or lint the files that are applied together separately)",
            ),
        )


RULES: tuple[InputRule, ...] = (InputRule("duplicate-objects", (DUPLICATE_OBJECT,), duplicates),)
