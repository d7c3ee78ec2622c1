"""The one registry of every diagnostic code ``smi-bridge lint`` can report.

Codes come from each stage that reports them: loading (SMB001-SMB019), parsing (SMB020-SMB029),
building the IR (SMB030-SMB049) and the lint rules and suppressions (SMB050-SMB199). Each stage
declares its ``Check`` constants in a ``CHECKS`` tuple; this module only gathers them, so a code is
defined exactly once, next to the code that reports it. ``--list-checks``, ``--suppress``
validation and the SARIF rule table all read ``all_checks()``.
"""

from __future__ import annotations

from functools import cache

from smi_bridge import build, load, parse
from smi_bridge.diagnostics import Check
from smi_bridge.lint import rules, suppression

STAGES: dict[str, tuple[Check, ...]] = {
    "load": load.CHECKS,
    "parse": parse.CHECKS,
    "build": build.CHECKS,
    "lint": (*rules.CHECKS, *suppression.CHECKS),
}


@cache
def all_checks() -> tuple[Check, ...]:
    """Every check of every stage, sorted by code (the first declaration wins on a clash)."""
    by_code: dict[str, Check] = {}
    for checks in STAGES.values():
        for check in checks:
            by_code.setdefault(check.code, check)
    return tuple(sorted(by_code.values(), key=lambda c: c.code))


@cache
def codes() -> frozenset[str]:
    return frozenset(c.code for c in all_checks())


def lookup(code: str) -> Check | None:
    return _by_code().get(code)


@cache
def _by_code() -> dict[str, Check]:
    return {c.code: c for c in all_checks()}


def clashes() -> list[str]:
    """Codes declared by more than one check (a registry invariant; tests keep it empty)."""
    seen: dict[str, Check] = {}
    out: list[str] = []
    for checks in STAGES.values():
        for check in checks:
            if check.code in seen and seen[check.code] is not check:
                out.append(check.code)
            seen.setdefault(check.code, check)
    return sorted(set(out))
