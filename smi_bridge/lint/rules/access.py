"""TrafficTarget rules: empty targets, rule and subject kinds, destination ports.

A TrafficTarget switches its destination to deny-by-default, so one with no rules or no sources
denies everything it names: v1alpha3 forbids that outright (the model's error is made specific
here), v1alpha1/v1alpha2 allow it and get a warning. Rule kinds, subject kinds and
``destination.port`` are refused by the models with a generic schema error; the rules here say which
version has the kind and how to write the port.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from smi_bridge.diagnostics import Check, Severity
from smi_bridge.lint.rules.base import Finding, Path, Rule, finding, mapping, refinement, sequence, shown
from smi_bridge.lint.rules.specs import BAD_PORT, port_finding
from smi_bridge.model import access
from smi_bridge.parse import Resource

EMPTY_TARGET = Check(
    "SMB060",
    Severity.WARNING,
    "TrafficTarget v1alpha1/v1alpha2 has no rules or no sources (it allows nothing)",
)
REQUIRED_IN_V1ALPHA3 = Check(
    "SMB061", Severity.ERROR, "TrafficTarget v1alpha3 needs at least one rule and one source"
)
RULE_KIND = Check(
    "SMB062", Severity.ERROR, "TrafficTarget rule names a kind that is not a traffic spec of its version"
)
SUBJECT_KIND = Check("SMB063", Severity.ERROR, "TrafficTarget destination or source is not a ServiceAccount")

CHECKS: tuple[Check, ...] = (EMPTY_TARGET, REQUIRED_IN_V1ALPHA3, RULE_KIND, SUBJECT_KIND)

_KIND = ((access.GROUP, "TrafficTarget"),)
_RULE_KINDS = {
    "v1alpha1": ("HTTPRouteGroup", "TCPRoute"),
    "v1alpha2": ("HTTPRouteGroup", "TCPRoute"),
    "v1alpha3": ("HTTPRouteGroup", "TCPRoute", "UDPRoute"),
}


def _layout(res: Resource) -> tuple[dict[str, Any] | None, Path, str]:
    """The mapping that holds destination/rules/sources, its path, and the name of the rules list."""
    if res.version == "v1alpha1":
        return res.obj, (), "specs"
    return mapping(res.obj.get("spec")), ("spec",), "rules"


def empty_target(res: Resource) -> Iterator[Finding]:
    if res.version not in ("v1alpha1", "v1alpha2"):
        return
    body, base, rules_key = _layout(res)
    if body is None or (res.version == "v1alpha1" and "spec" in res.obj):
        return  # a wrong shape is parse's finding (SMB025); the fields are elsewhere
    dest = mapping(body.get("destination"))
    who = f"{dest.get('name')}" if dest and isinstance(dest.get("name"), str) else "its destination"
    for key, what in ((rules_key, "rules"), ("sources", "sources")):
        value = body.get(key)
        if value is None or (isinstance(value, list) and not value):
            path: Path = (*base, key) if key in body else base
            state = "is empty" if key in body else "is missing"
            yield finding(
                res,
                EMPTY_TARGET,
                f"{json_key(base, key)} {state}: this TrafficTarget allows nothing, and {who} becomes "
                "deny-by-default once any TrafficTarget names it",
                path,
                hint=f"list the {what} to allow (access v1alpha3 requires at least one of each)",
            )


def json_key(base: Path, key: str) -> str:
    return ".".join([*map(str, base), key])


def required_in_v1alpha3(res: Resource) -> Iterator[Finding]:
    if res.version != "v1alpha3":
        return
    spec = mapping(res.obj.get("spec"))
    if spec is None:
        return
    for key, what in (("rules", "rule"), ("sources", "source")):
        value = spec.get(key)
        if value is None or (isinstance(value, list) and not value):
            yield refinement(
                res,
                REQUIRED_IN_V1ALPHA3,
                f"spec.{key} {'is empty' if key in spec else 'is missing'}: access v1alpha3 requires at least one {what}",
                ("spec", key),
                hint="a TrafficTarget that allows nothing only makes its destination deny-by-default; "
                f"add a {what} or delete the TrafficTarget",
            )


def rule_kinds(res: Resource) -> Iterator[Finding]:
    allowed = _RULE_KINDS.get(res.version)
    body, base, rules_key = _layout(res)
    if allowed is None or body is None:
        return
    for i, rule in enumerate(sequence(body.get(rules_key)) or ()):
        if not isinstance(rule, dict) or "kind" not in rule or rule["kind"] in allowed:
            continue
        kind = rule["kind"]
        if kind == "UDPRoute":
            hint = "UDPRoute rules need access v1alpha3 (with specs v1alpha4)"
        elif isinstance(kind, str) and kind.lower() in {k.lower() for k in _RULE_KINDS["v1alpha3"]}:
            hint = f"kinds are case-sensitive: write {next(k for k in allowed if k.lower() == kind.lower())}"
        else:
            hint = f"access {res.version} rules name {' or '.join(allowed)}"
        yield refinement(
            res,
            RULE_KIND,
            f"{rules_key}[{i}].kind {shown(kind)} is not a traffic spec kind of access {res.version}",
            (*base, rules_key, i, "kind"),
            hint=hint,
        )


def subject_kinds(res: Resource) -> Iterator[Finding]:
    body, base, _ = _layout(res)
    if body is None or res.version not in _RULE_KINDS:
        return
    subjects: list[tuple[Path, Any]] = [((*base, "destination"), body.get("destination"))]
    subjects += [((*base, "sources", i), s) for i, s in enumerate(sequence(body.get("sources")) or ())]
    for path, subject in subjects:
        if not isinstance(subject, dict) or "kind" not in subject or subject["kind"] == "ServiceAccount":
            continue
        kind = subject["kind"]
        if kind == "IdentityBinding":
            hint = "IdentityBinding subjects exist only in the unreleased access v1alpha4 draft; name the ServiceAccount"
        elif isinstance(kind, str) and kind.lower() == "serviceaccount":
            hint = "kinds are case-sensitive: write ServiceAccount"
        else:
            hint = "identities are ServiceAccounts: kind: ServiceAccount, name, namespace"
        yield refinement(
            res,
            SUBJECT_KIND,
            f"{json_key(path[len(base) :], 'kind')} {shown(kind)} is not ServiceAccount",
            (*path, "kind"),
            hint=hint,
        )


def destination_port(res: Resource) -> Iterator[Finding]:
    if res.version not in ("v1alpha1", "v1alpha2"):
        return  # v1alpha3 has no destination.port: parse reports it as a shape mismatch
    body, base, _ = _layout(res)
    dest = mapping(body.get("destination")) if body else None
    if dest is None or "port" not in dest or dest["port"] is None:
        return
    found = port_finding(res, dest["port"], (*base, "destination", "port"))
    if found is not None:
        yield found


RULES: tuple[Rule, ...] = (
    Rule("access-empty-target", _KIND, (EMPTY_TARGET,), empty_target),
    Rule("access-v1alpha3-required", _KIND, (REQUIRED_IN_V1ALPHA3,), required_in_v1alpha3, only_invalid=True),
    Rule("access-rule-kinds", _KIND, (RULE_KIND,), rule_kinds, only_invalid=True),
    Rule("access-subject-kinds", _KIND, (SUBJECT_KIND,), subject_kinds, only_invalid=True),
    Rule("access-destination-port", _KIND, (BAD_PORT,), destination_port, only_invalid=True),
)
