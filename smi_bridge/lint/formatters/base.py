"""What every formatter shares: render options, severity words, and a finding's resource label."""

from __future__ import annotations

from dataclasses import dataclass

from smi_bridge.diagnostics import Diagnostic, ResourceRef


@dataclass(frozen=True, slots=True)
class RenderOptions:
    color: bool = False
    summary: bool = False


def resource_label(ref: ResourceRef) -> str:
    """``Kind namespace/name`` (empty when the finding is about no object, e.g. unreadable YAML)."""
    return str(ref) if ref.kind or ref.name else ""


def resource_key(ref: ResourceRef) -> str:
    """``Kind/namespace/name``: the form ``--suppress`` globs and the source annotation use."""
    return f"{ref.kind}/{ref.namespace}/{ref.name}"


def headline(d: Diagnostic) -> str:
    """The message, with the object it is about in parentheses."""
    label = resource_label(d.resource)
    return f"{d.message} ({label})" if label else d.message
