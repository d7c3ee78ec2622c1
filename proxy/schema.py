"""A fast yes/no check of a document against the proxy config schema.

jsonschema walks a schema node by node for every value; on a config of 10,000 routes that takes
seconds. This module compiles ``schemas/proxy-config.schema.json`` once into nested closures
(one per schema node) that answer only "valid or not", which is more than ten times faster. The
schema stays the one source of truth: when this check says "invalid", jsonschema runs to produce
the messages, so the two can never disagree silently about what an error is.

Only the keywords the proxy schema uses are supported; compiling a schema with any other keyword
raises, rather than ignoring a constraint.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset(("$schema", "$id", "$defs", "title", "description"))
_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


class UnsupportedSchema(ValueError):
    pass


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 and True differ, 1 and 1.0 do not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def compile_schema(schema: Mapping[str, Any]) -> Check:
    defs = schema.get("$defs", {})
    compiled: dict[str, Check] = {}

    def ref(name: str) -> Check:
        # Resolved on first use, so that recursive definitions compile.
        def check(value: Any) -> bool:
            fn = compiled.get(name)
            if fn is None:
                fn = compiled[name] = node(defs[name])
            return fn(value)

        return check

    def node(n: Mapping[str, Any]) -> Check:
        checks: list[Check] = []
        unknown = set(n) - _ANNOTATIONS - _KEYWORDS
        if unknown:
            raise UnsupportedSchema(f"schema keywords not supported by the fast check: {sorted(unknown)}")
        if "$ref" in n:
            target = n["$ref"]
            if not target.startswith("#/$defs/"):
                raise UnsupportedSchema(f"only local $defs references are supported, not {target}")
            checks.append(ref(target[len("#/$defs/") :]))
        if "type" in n:
            types = n["type"] if isinstance(n["type"], list) else [n["type"]]
            tests = [_TYPES[t] for t in types]
            checks.append(lambda v: any(t(v) for t in tests))
        if "const" in n:
            const = n["const"]
            checks.append(lambda v: _same(v, const))
        if "enum" in n:
            options = list(n["enum"])
            checks.append(lambda v: any(_same(v, o) for o in options))
        if "pattern" in n:
            rx = re.compile(n["pattern"])
            checks.append(lambda v: not isinstance(v, str) or rx.search(v) is not None)
        if "minLength" in n or "maxLength" in n:
            lo, hi = n.get("minLength", 0), n.get("maxLength")
            checks.append(lambda v: not isinstance(v, str) or (len(v) >= lo and (hi is None or len(v) <= hi)))
        if "minimum" in n or "maximum" in n:
            mn, mx = n.get("minimum"), n.get("maximum")
            number = _TYPES["number"]
            checks.append(lambda v: not number(v) or ((mn is None or v >= mn) and (mx is None or v <= mx)))
        if "minItems" in n:
            least = n["minItems"]
            checks.append(lambda v: not isinstance(v, list) or len(v) >= least)
        if "items" in n:
            item = node(n["items"])
            checks.append(lambda v: not isinstance(v, list) or all(item(x) for x in v))
        if "required" in n:
            required = tuple(n["required"])
            checks.append(lambda v: not isinstance(v, dict) or all(k in v for k in required))
        if "properties" in n or "additionalProperties" in n:
            props = {k: node(s) for k, s in n.get("properties", {}).items()}
            extra = n.get("additionalProperties", True)
            extra_check: Check | None = None if isinstance(extra, bool) else node(extra)
            allow_extra = extra is True

            def objects(v: Any) -> bool:
                if not isinstance(v, dict):
                    return True
                for key, value in v.items():
                    check = props.get(key)
                    if check is not None:
                        if not check(value):
                            return False
                    elif extra_check is not None:
                        if not extra_check(value):
                            return False
                    elif not allow_extra:
                        return False
                return True

            checks.append(objects)
        if "anyOf" in n:
            branches = [node(b) for b in n["anyOf"]]
            checks.append(lambda v: any(b(v) for b in branches))
        if len(checks) == 1:
            return checks[0]
        return lambda v: all(c(v) for c in checks)

    return node(schema)


_KEYWORDS = frozenset(
    (
        "$ref",
        "type",
        "const",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "items",
        "required",
        "properties",
        "additionalProperties",
        "anyOf",
    )
)
