"""Traffic spec rules: HTTPRouteGroup routes (names, regexes, methods, headers) and TCP/UDP ports.

Regexes: SMI names no dialect and every implementation is RE2, so patterns RE2 cannot compile
(look-around, backreferences, ...) are errors (``smi_bridge.regex.check_re2`` says why). Header
values are matched in full here (ARCHITECTURE.md, "Meanings we decided"); the spec leaves that
open, so a pattern with no ``^``/``$``/``.*`` at an end reads differently in a mesh that searches,
and gets a warning. Route names are the key ``TrafficTarget.rules[].matches`` selects by, so a
repeated name is an error. Methods and ports are refused by the models with a generic schema error;
the rules here replace it with the specific case.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from smi_bridge.diagnostics import Check, Severity
from smi_bridge.lint.rules.base import (
    Finding,
    Path,
    Rule,
    finding,
    is_int,
    mapping,
    refinement,
    sequence,
    shown,
)
from smi_bridge.model import specs
from smi_bridge.parse import SCHEMA, Resource
from smi_bridge.regex import check_re2

NOT_RE2 = Check("SMB080", Severity.ERROR, "regex that RE2 cannot compile (look-around, backreferences, ...)")
UNANCHORED_HEADER = Check(
    "SMB081", Severity.WARNING, "header pattern has no ^, $ or .* at an end (anchoring differs by mesh)"
)
DUPLICATE_ROUTE = Check("SMB082", Severity.ERROR, "two routes of one HTTPRouteGroup have the same name")
DUPLICATE_HEADER = Check(
    "SMB083", Severity.WARNING, "a route names one header twice (header names are case-insensitive)"
)
LOWERCASE_METHOD = Check("SMB084", Severity.ERROR, "HTTP method written in lower case")
UNKNOWN_METHOD = Check("SMB085", Severity.ERROR, "HTTP method outside the set SMI allows")
EMPTY_PATH_REGEX = Check("SMB086", Severity.INFO, "empty pathRegex (read as: every path)")
HEADER_NOT_STRING = Check("SMB087", Severity.ERROR, "header value is not a string (a YAML number or boolean)")
REDUNDANT_METHODS = Check("SMB088", Severity.INFO, "methods lists '*' together with other methods")
BAD_PORT = Check("SMB090", Severity.ERROR, "port is not an integer from 1 to 65535")

CHECKS: tuple[Check, ...] = (
    NOT_RE2,
    UNANCHORED_HEADER,
    DUPLICATE_ROUTE,
    DUPLICATE_HEADER,
    LOWERCASE_METHOD,
    UNKNOWN_METHOD,
    EMPTY_PATH_REGEX,
    HEADER_NOT_STRING,
    REDUNDANT_METHODS,
    BAD_PORT,
)

_HRG = ((specs.GROUP, "HTTPRouteGroup"),)
_PORT_ROUTES = ((specs.GROUP, "TCPRoute"), (specs.GROUP, "UDPRoute"))
_METHODS = frozenset(specs.METHODS)
_LEADING_FLAGS = re.compile(r"(?:\(\?[a-zA-Z]+\))+")


def _routes(res: Resource) -> Iterator[tuple[Path, list[Any]]]:
    """Each route list with its path: top-level ``matches`` (v1alpha1/v1alpha2) and ``spec.matches``.

    Both are read whatever the version: a list in the other version's place is already a shape
    finding (SMB025), and what it holds is still worth checking.
    """
    top = sequence(res.obj.get("matches"))
    if top is not None:
        yield ("matches",), top
    spec = mapping(res.obj.get("spec"))
    inner = sequence(spec.get("matches")) if spec else None
    if inner is not None:
        yield ("spec", "matches"), inner


def http_routes(res: Resource) -> Iterator[Finding]:
    """Every route of an HTTPRouteGroup, read once: names, pathRegex, methods, headers."""
    for base, routes in _routes(res):
        yield from _duplicate_names(res, base, routes)
        for i, route in enumerate(routes):
            if not isinstance(route, dict):
                continue
            at: Path = (*base, i)
            pattern = route.get("pathRegex")
            if isinstance(pattern, str):
                yield from _path_regex(res, at, pattern)
            listed = route.get("methods")
            if isinstance(listed, list) and listed:
                yield from _methods(res, at, listed)
            if route.get("headers") is not None:
                yield from _headers(res, at, route["headers"])


def _duplicate_names(res: Resource, base: Path, routes: list[Any]) -> Iterator[Finding]:
    first: dict[str, int] = {}
    for i, route in enumerate(routes):
        name = route.get("name") if isinstance(route, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            yield finding(
                res,
                DUPLICATE_ROUTE,
                f"route name {name!r} is already used by {_fmt(base)}[{first[name]}]",
                (*base, i, "name"),
                hint="route names are the key TrafficTarget rules[].matches select by; rename one",
            )
        else:
            first[name] = i


def _path_regex(res: Resource, at: Path, pattern: str) -> Iterator[Finding]:
    path = (*at, "pathRegex")
    if pattern == "":
        yield finding(
            res,
            EMPTY_PATH_REGEX,
            "pathRegex is empty: the route matches every path",
            path,
            hint="omit pathRegex (or write '.*') to say so explicitly",
        )
        return
    reason = check_re2(pattern)
    if reason is not None:
        yield finding(
            res,
            NOT_RE2,
            f"pathRegex {pattern!r}: {reason}",
            path,
            hint="SMI meshes match with RE2 (Go regexp, Envoy safe_regex)",
        )


def _methods(res: Resource, at: Path, listed: list[Any]) -> Iterator[Finding]:
    written = [m for m in listed if isinstance(m, str)]
    for k, method in enumerate(listed):
        if not isinstance(method, str) or method in _METHODS:
            continue
        path = (*at, "methods", k)
        if method.upper() in _METHODS:
            yield refinement(
                res,
                LOWERCASE_METHOD,
                f"method {method!r} is lower-case",
                path,
                hint=f"methods are upper-case: write {method.upper()}",
            )
        else:
            yield refinement(
                res,
                UNKNOWN_METHOD,
                f"method {shown(method)} is not one SMI allows",
                path,
                hint=f"allowed: {', '.join(specs.METHODS)} ('*' = every method)",
            )
    if "*" in written and len(set(written)) > 1:
        yield finding(
            res,
            REDUNDANT_METHODS,
            f"methods {', '.join(written)}: '*' already allows every method",
            (*at, "methods"),
            hint="write ['*'] alone, or list only the methods to allow",
        )


def _header_items(headers: Any) -> Iterator[tuple[Path, Any, Any]]:
    """``(path below headers, name, value)`` in both wire forms (map, list of one-key maps)."""
    if isinstance(headers, dict):
        for name, value in headers.items():
            yield (name,), name, value
    elif isinstance(headers, list):
        for k, item in enumerate(headers):
            if isinstance(item, dict):
                for name, value in item.items():
                    yield (k, name), name, value


def _headers(res: Resource, at: Path, headers: Any) -> Iterator[Finding]:
    where: Path = (*at, "headers")
    seen: dict[str, str] = {}
    for below, name, value in _header_items(headers):
        path = (*where, *below)
        if isinstance(name, str):
            key = name.lower()
            if key in seen:
                yield finding(
                    res,
                    DUPLICATE_HEADER,
                    f"header {name!r} is listed again (as {seen[key]!r}); names are case-insensitive",
                    path,
                    hint="several patterns for one header: combine them into one regex with '|'",
                )
            else:
                seen[key] = name
        if not isinstance(value, str):
            yield refinement(
                res,
                HEADER_NOT_STRING,
                f"header {name!r} value {shown(value)} is a YAML {_yaml_type(value)}, not a string",
                path,
                hint=f'quote it: {name}: "{_as_text(value)}"',
                also=((SCHEMA.code, where),),
            )
            continue
        reason = check_re2(value)
        if reason is not None:
            yield finding(
                res,
                NOT_RE2,
                f"header {name!r} pattern {value!r}: {reason}",
                path,
                hint="SMI meshes match with RE2 (Go regexp, Envoy safe_regex)",
            )
            continue
        start, end = _anchored(value)
        if not (start and end):
            ends = "either end" if not (start or end) else ("its start" if not start else "its end")
            yield finding(
                res,
                UNANCHORED_HEADER,
                f"header {name!r} pattern {value!r} has no anchor at {ends}: smi-bridge matches the whole "
                "value, meshes that search would also match longer values",
                path,
                hint=f"write '^{_strip(value)}$' for this exact value, or '.*{_strip(value)}.*' to match it anywhere",
            )


def _anchored(pattern: str) -> tuple[bool, bool]:
    body = _LEADING_FLAGS.sub("", pattern, count=1) if pattern.startswith("(?") else pattern
    start = body.startswith(("^", ".*", "\\A"))
    end = (
        (body.endswith("$") and not _escaped(body, len(body) - 1))
        or (body.endswith(".*") and not _escaped(body, len(body) - 2))
        or (body.endswith("\\z") and not _escaped(body, len(body) - 2))
    )
    return start, end


def _escaped(text: str, index: int) -> bool:
    backslashes = 0
    while index - backslashes - 1 >= 0 and text[index - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def _strip(pattern: str) -> str:
    text = pattern
    if text.startswith("^"):
        text = text[1:]
    if text.endswith("$") and not _escaped(text, len(text) - 1):
        text = text[:-1]
    return text


def _yaml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return (
        "mapping"
        if isinstance(value, dict)
        else "sequence"
        if isinstance(value, list)
        else type(value).__name__
    )


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def port_finding(res: Resource, value: Any, path: Path) -> Finding | None:
    """The finding for a port value, or None when it is an integer in 1..65535."""
    if is_int(value) and 1 <= value <= 65535:
        return None
    if is_int(value):
        message, hint = f"port {value} is outside 1-65535", "ports are 1 to 65535"
    elif isinstance(value, str) and value.strip().isdigit():
        message, hint = f"port {value!r} is a string", f"write it unquoted: {value.strip()}"
    else:
        message, hint = f"port {shown(value)} is not an integer", "ports are integers from 1 to 65535"
    return refinement(res, BAD_PORT, message, path, hint=hint)


def route_ports(res: Resource) -> Iterator[Finding]:
    spec = mapping(res.obj.get("spec"))
    matches = mapping(spec.get("matches")) if spec else None
    ports = sequence(matches.get("ports")) if matches else None
    for k, port in enumerate(ports or ()):
        found = port_finding(res, port, ("spec", "matches", "ports", k))
        if found is not None:
            yield found


def _fmt(path: Path) -> str:
    return ".".join(map(str, path))


RULES: tuple[Rule, ...] = (
    Rule(
        "http-routes",
        _HRG,
        (
            NOT_RE2,
            UNANCHORED_HEADER,
            DUPLICATE_ROUTE,
            DUPLICATE_HEADER,
            LOWERCASE_METHOD,
            UNKNOWN_METHOD,
            EMPTY_PATH_REGEX,
            HEADER_NOT_STRING,
            REDUNDANT_METHODS,
        ),
        http_routes,
    ),
    Rule("port-route-ports", _PORT_ROUTES, (BAD_PORT,), route_ports, only_invalid=True),
)
