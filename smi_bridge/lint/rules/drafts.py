"""The unreleased access v1alpha4 draft: TrafficTarget v1alpha4 and IdentityBinding.

access v1alpha4 was merged into the spec's main branch after the last release and only the
smi-controller-sdk CRDs serve it. smi-bridge reads it as experimental and does not translate it:
parse would call it an unknown version or kind, which is true of the release but not helpful, so a
warning that says what it is replaces that error. IdentityBinding's own rules (from the draft text
and the controller-sdk webhook) are checked, because the spec's example breaks both: a pod label
selector may not be combined with a service account, and SPIFFE IDs need the ``spiffe://`` scheme.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from smi_bridge.diagnostics import Check, Severity
from smi_bridge.lint.rules.base import Finding, Rule, finding, mapping, path_text, sequence, shown
from smi_bridge.model import access
from smi_bridge.parse import UNKNOWN_KIND, UNKNOWN_VERSION, Resource

EXPERIMENTAL = Check(
    "SMB070", Severity.WARNING, "access v1alpha4 draft (IdentityBinding): experimental, not translated"
)
EXCLUSIVE_SCHEMES = Check(
    "SMB071", Severity.ERROR, "IdentityBinding sets podLabelSelector and serviceAccount together"
)
SPIFFE_ID = Check("SMB072", Severity.ERROR, "IdentityBinding SPIFFE ID is not a spiffe:// URI")
NO_SCHEME = Check("SMB073", Severity.ERROR, "IdentityBinding names no identity scheme")

CHECKS: tuple[Check, ...] = (EXPERIMENTAL, EXCLUSIVE_SCHEMES, SPIFFE_ID, NO_SCHEME)

DRAFT_VERSION = "v1alpha4"
_KINDS = ((access.GROUP, "TrafficTarget"), (access.GROUP, "IdentityBinding"))
_SPIFFE = re.compile(r"spiffe://[a-z0-9._-]+(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*")


def experimental(res: Resource) -> Iterator[Finding]:
    if res.version != DRAFT_VERSION:
        return
    diag = res.diag(
        EXPERIMENTAL,
        f"{res.kind} {res.api_version} is the unreleased access v1alpha4 draft: read as experimental, not translated",
        ["apiVersion"],
        hint="translation reads access v1alpha3 (ServiceAccount subjects); `smi-bridge convert` can rewrite a "
        "TrafficTarget whose subjects are ServiceAccounts",
    )
    yield Finding(
        diag,
        (
            (UNKNOWN_VERSION.code, path_text(res, ["apiVersion"])),
            (UNKNOWN_KIND.code, path_text(res, ["kind"])),
        ),
    )


def identity_binding(res: Resource) -> Iterator[Finding]:
    if res.kind != "IdentityBinding" or res.version != DRAFT_VERSION:
        return
    spec = mapping(res.obj.get("spec"))
    schemes = mapping(spec.get("schemes")) if spec else None
    where = ("spec", "schemes")
    if not schemes:
        yield finding(
            res,
            NO_SCHEME,
            "spec.schemes is missing or empty: the binding names no workload",
            where,
            hint="set one of serviceAccount, podLabelSelector or spiffeIdentities",
        )
        return
    if schemes.get("podLabelSelector") is not None and schemes.get("serviceAccount") is not None:
        yield finding(
            res,
            EXCLUSIVE_SCHEMES,
            "podLabelSelector and serviceAccount are mutually exclusive (the spec's own example sets both)",
            (*where, "serviceAccount"),
            hint="a pod runs as exactly one ServiceAccount: keep serviceAccount, or keep podLabelSelector",
        )
    if "spiffeIdentities" in schemes:
        ids = sequence(schemes["spiffeIdentities"])
        if not ids:
            yield finding(
                res,
                NO_SCHEME,
                "spiffeIdentities is empty",
                (*where, "spiffeIdentities"),
                hint="list at least one spiffe:// ID, or remove the field",
            )
        for k, spiffe_id in enumerate(ids or ()):
            if isinstance(spiffe_id, str) and _SPIFFE.fullmatch(spiffe_id):
                continue
            if isinstance(spiffe_id, str) and not spiffe_id.startswith("spiffe://"):
                message = f"SPIFFE ID {spiffe_id!r} lacks the spiffe:// scheme"
                hint = f"write 'spiffe://{spiffe_id}'"
            else:
                message = f"SPIFFE ID {shown(spiffe_id)} is not spiffe://<trust-domain>/<path>"
                hint = "trust domains are lower-case letters, digits, '.', '-' and '_'"
            yield finding(res, SPIFFE_ID, message, (*where, "spiffeIdentities", k), hint=hint)


RULES: tuple[Rule, ...] = (
    Rule("access-v1alpha4-draft", _KINDS, (EXPERIMENTAL,), experimental),
    Rule("identity-binding-schemes", _KINDS, (EXCLUSIVE_SCHEMES, SPIFFE_ID, NO_SCHEME), identity_binding),
)
