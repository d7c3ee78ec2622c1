"""Lint rules: what ``smi-bridge lint`` reports beyond what parse and build already say.

A rule reads one typed ``Resource`` (its raw object, so that it still speaks when the strict model
rejected the object) and yields ``Finding`` values. A finding may *supersede* a generic diagnostic of
the same resource: the models reject a lower-case method or a negative weight with a plain schema
error (SMB023), and the rule that knows the specific case replaces it at the same JSON path, so the
user reads one precise, hinted finding instead of two.

Rules are indexed by ``(group, kind)`` so that each document only meets the rules of its kind; rules
over the whole input (objects defined twice) run once. ``RULES`` and ``INPUT_RULES`` are the one
explicit list of every rule; ``CHECKS`` is every code they can report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from smi_bridge.diagnostics import Check, Diagnostic
from smi_bridge.lint.rules import access, drafts, objects, specs, split
from smi_bridge.lint.rules.base import Finding, InputRule, Rule
from smi_bridge.parse import Resource

RULES: tuple[Rule, ...] = (*split.RULES, *access.RULES, *specs.RULES, *drafts.RULES)
INPUT_RULES: tuple[InputRule, ...] = objects.RULES

CHECKS: tuple[Check, ...] = tuple(
    sorted(
        {
            c.code: c for c in (*split.CHECKS, *access.CHECKS, *specs.CHECKS, *drafts.CHECKS, *objects.CHECKS)
        }.values(),
        key=lambda c: c.code,
    )
)

_BY_KIND: dict[tuple[str, str], tuple[Rule, ...]] = {}


def _index() -> dict[tuple[str, str], tuple[Rule, ...]]:
    if not _BY_KIND:
        grouped: dict[tuple[str, str], list[Rule]] = defaultdict(list)
        for rule in RULES:
            for key in rule.kinds:
                grouped[key].append(rule)
        _BY_KIND.update({k: tuple(v) for k, v in grouped.items()})
    return _BY_KIND


@dataclass
class RuleOutcome:
    """Every finding of every rule, and which generic diagnostics they replace."""

    findings: list[Diagnostic] = field(default_factory=list)
    # id(Resource) -> {(code, path)} of that resource's diagnostics that a finding replaces
    superseded: dict[int, set[tuple[str, str]]] = field(default_factory=dict)

    def add(self, resource: Resource | None, found: Iterable[Finding]) -> None:
        for f in found:
            self.findings.append(f.diagnostic)
            if f.supersedes and resource is not None:
                self.superseded.setdefault(id(resource), set()).update(f.supersedes)

    def replaced(self, resource: Resource) -> Iterator[Diagnostic]:
        """The diagnostics of ``resource`` that some finding supersedes."""
        keys = self.superseded.get(id(resource))
        if keys:
            yield from (d for d in resource.diagnostics if (d.code, d.path) in keys)


def run_rules(resources: Sequence[Resource]) -> RuleOutcome:
    """Apply every rule of each resource's kind, then the rules over the whole input."""
    index = _index()
    outcome = RuleOutcome()
    for res in resources:
        for rule in index.get((res.group, res.kind), ()):
            if rule.only_invalid and res.model is not None:
                continue  # the model accepted the object: this rule only refines schema errors
            outcome.add(res, rule.run(res))
    for input_rule in INPUT_RULES:
        for about, found in input_rule.run(resources):
            outcome.add(about, (found,))
    return outcome


__all__ = ["CHECKS", "INPUT_RULES", "RULES", "Finding", "InputRule", "Rule", "RuleOutcome", "run_rules"]
