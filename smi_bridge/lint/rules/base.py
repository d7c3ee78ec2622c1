"""What every rule module shares: the ``Rule`` record, ``Finding``, and careful reads of raw objects.

Rules read the object as loaded (``Resource.obj``), never only the validated model: the interesting
cases are exactly the ones the strict model refused. Every read is defensive (``mapping``,
``sequence``) because a document may hold any YAML at any place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from smi_bridge.diagnostics import Check, Diagnostic, Severity
from smi_bridge.load import json_path
from smi_bridge.parse import SCHEMA, Resource

Path = Sequence[str | int]


@dataclass(frozen=True, slots=True)
class Finding:
    """A diagnostic, and the ``(code, path)`` of the resource's own diagnostics it replaces."""

    diagnostic: Diagnostic
    supersedes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule over single resources of the given ``(group, kind)`` pairs.

    ``only_invalid``: the rule only refines schema errors, so a resource whose model validated
    cannot trigger it and is skipped (this keeps clean documents cheap).
    """

    name: str
    kinds: tuple[tuple[str, str], ...]
    checks: tuple[Check, ...]
    run: Callable[[Resource], Iterator[Finding]]
    only_invalid: bool = False


@dataclass(frozen=True, slots=True)
class InputRule:
    """One rule over the whole input (duplicates, annotations, misplaced kinds)."""

    name: str
    checks: tuple[Check, ...]
    run: Callable[[Sequence[Resource]], Iterator[tuple[Resource | None, Finding]]]


def mapping(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def sequence(value: Any) -> list[Any] | None:
    return value if isinstance(value, list) else None


def is_int(value: Any) -> bool:
    """A YAML integer (``true`` is a bool, not 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


_ITEM_STEP = re.compile(r"([^.\[]+)\[(\d+)\]")


def path_text(res: Resource, path: Path) -> str:
    """The JSON path ``Resource.diag`` writes for ``path`` (items of a ``List`` keep their prefix).

    ``item_path`` is ``items[2]``, or ``items[2].items[0]`` for a List inside a List.
    """
    prefix: list[str | int] = []
    for name, index in _ITEM_STEP.findall(res.doc.item_path):
        prefix += [name, int(index)]
    return json_path([*prefix, *path]) if path or prefix else ""


def finding(
    res: Resource,
    check: Check,
    message: str,
    path: Path = (),
    *,
    hint: str = "",
    severity: Severity | None = None,
) -> Finding:
    return Finding(res.diag(check, message, path, hint=hint, severity=severity))


def refinement(
    res: Resource,
    check: Check,
    message: str,
    path: Path,
    *,
    hint: str = "",
    also: Sequence[tuple[str, Path]] = (),
) -> Finding:
    """A specific finding that replaces the generic schema error (SMB023) at ``path``.

    ``also`` names further ``(code, path)`` diagnostics it replaces, e.g. the error the other
    alternative of a union reports one level up.
    """
    diag = res.diag(check, message, path, hint=hint)
    replaced = ((SCHEMA.code, diag.path), *((code, path_text(res, p)) for code, p in also))
    return Finding(diag, replaced)


def shown(value: Any) -> str:
    """A short rendering of a user's value for a message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
