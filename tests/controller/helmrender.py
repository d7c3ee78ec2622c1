"""A small, strict renderer for the Go-template subset the smi-bridge chart uses (no helm binary here).

Neither Debian bookworm, PyPI nor npm ships a helm binary, and building it needs a newer Go than the
machine has; so the chart test renders the chart with this module and checks the objects it yields.

It implements what ``deploy/helm/smi-bridge`` uses, the way Helm evaluates it: text and actions with
``{{-``/``-}}`` trimming, comments, ``if``/``else if``/``else``, ``range`` (lists and maps, with
``$i, $v :=``), ``with``, ``define``/``include``, variables (``$x :=``, ``$``), pipelines and
parenthesised calls, ``.Values``/``.Release``/``.Chart``/``.Capabilities.APIVersions.Has``, and the
functions ``include toYaml nindent indent quote default eq ne not and or trunc trimSuffix contains
printf required empty``. Anything else raises ``TemplateError`` rather than rendering something a
real Helm would render differently.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class TemplateError(Exception):
    pass


# --- lexing -----------------------------------------------------------------------------------------

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)


@dataclass
class _Tok:
    kind: str  # "text" | "action"
    value: str


def _lex(src: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    trim_next = False
    for m in _ACTION.finditer(src):
        text = src[pos : m.start()]
        if trim_next:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        if text:
            out.append(_Tok("text", text))
        body = m.group(2).strip()
        if not (body.startswith("/*") and body.endswith("*/")):
            out.append(_Tok("action", body))
        trim_next = bool(m.group(3))
        pos = m.end()
    text = src[pos:]
    if trim_next:
        text = text.lstrip()
    if text:
        out.append(_Tok("text", text))
    return out


_WORD = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<raw>`[^`]*`)|(?P<num>-?\d+(?:\.\d+)?)|(?P<decl>:=)|(?P<pipe>\|)'
    r"|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|(?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)"
    r"|(?P<field>(?:\.[A-Za-z0-9_]+)+|\.)|(?P<ident>[A-Za-z_][A-Za-z0-9_]*))"
)


def _words(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _WORD.match(text, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"cannot parse {text[pos:]!r} in {{{{ {text} }}}}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


# --- parsing ----------------------------------------------------------------------------------------


@dataclass
class _Node:
    kind: str  # text | action | if | range | with
    text: str = ""
    pipe: list[tuple[str, str]] = field(default_factory=list)
    branches: list[tuple[list[tuple[str, str]], list[_Node]]] = field(default_factory=list)
    body: list[_Node] = field(default_factory=list)
    else_body: list[_Node] = field(default_factory=list)
    vars: list[str] = field(default_factory=list)


class _Parser:
    def __init__(self, toks: list[_Tok], defines: dict[str, list[_Node]]) -> None:
        self.toks, self.i, self.defines = toks, 0, defines

    def parse(self, stop: Iterable[str] = ()) -> tuple[list[_Node], str]:
        nodes: list[_Node] = []
        stop = tuple(stop)
        while self.i < len(self.toks):
            tok = self.toks[self.i]
            self.i += 1
            if tok.kind == "text":
                nodes.append(_Node("text", text=tok.value))
                continue
            head = tok.value.split(None, 1)[0] if tok.value else ""
            rest = tok.value[len(head) :].strip()
            if head in stop or (head == "else" and "else" in stop):
                return nodes, tok.value
            if head == "if":
                nodes.append(self._if(rest))
            elif head in ("range", "with"):
                nodes.append(self._block(head, rest))
            elif head == "define":
                name = _unquote(rest)
                body, _ = self.parse(("end",))
                self.defines[name] = body
            elif head in ("end", "else"):
                raise TemplateError(f"unexpected {{{{ {tok.value} }}}}")
            else:
                nodes.append(_Node("action", pipe=_words(tok.value)))
        if stop:
            raise TemplateError(f"missing {{{{ end }}}} (expected one of {stop})")
        return nodes, ""

    def _if(self, cond: str) -> _Node:
        node = _Node("if")
        while True:
            body, closer = self.parse(("end", "else"))
            node.branches.append((_words(cond), body))
            if closer == "end":
                return node
            tail = closer[len("else") :].strip()
            if tail.startswith("if "):
                cond = tail[3:].strip()
                continue
            node.else_body, closer = self.parse(("end",))
            return node

    def _block(self, kind: str, expr: str) -> _Node:
        node = _Node(kind)
        words = _words(expr)
        if ("decl", ":=") in words:
            at = words.index(("decl", ":="))
            node.vars = [w for k, w in words[:at] if k == "var"]
            words = words[at + 1 :]
        node.pipe = words
        node.body, closer = self.parse(("end", "else"))
        if closer != "end":
            node.else_body, _ = self.parse(("end",))
        return node


def _unquote(text: str) -> str:
    text = text.strip()
    if text.startswith('"') and text.endswith('"'):
        return str(yaml.safe_load(text))
    if text.startswith("`") and text.endswith("`"):
        return text[1:-1]
    raise TemplateError(f"expected a string, got {text!r}")


# --- evaluation -------------------------------------------------------------------------------------


def _truthy(v: Any) -> bool:
    return not (v is None or v is False or (v == 0 and not isinstance(v, bool)) or v in ("", [], {}))


def _go_str(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (dict, list)):
        raise TemplateError(f"a template printed a {type(v).__name__} directly: {v!r} (use toYaml)")
    return str(v)


def _printf(fmt: str, *args: Any) -> str:
    vals = iter(args)

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "%%":
            return "%"
        return _go_str(next(vals))

    return re.sub(r"%[sdv%]", sub, fmt)


def _indent(n: int, s: str) -> str:
    return "\n".join((" " * n + line) if line else line for line in str(s).split("\n"))


def _to_yaml(v: Any) -> str:
    if v is None:
        return "null"
    return yaml.safe_dump(v, default_flow_style=False, sort_keys=True).rstrip("\n")


def _required(msg: str, v: Any) -> Any:
    if not _truthy(v):
        raise TemplateError(f"required: {msg}")
    return v


class APIVersions:
    def __init__(self, versions: Iterable[str]) -> None:
        self.versions = set(versions)

    def Has(self, version: str) -> bool:
        return version in self.versions


class Renderer:
    def __init__(self, defines: dict[str, list[_Node]]) -> None:
        self.defines = defines
        self.funcs: dict[str, Callable[..., Any]] = {
            "include": self._include,
            "toYaml": _to_yaml,
            "nindent": lambda n, s: "\n" + _indent(int(n), s),
            "indent": lambda n, s: _indent(int(n), s),
            "quote": lambda v: '"' + _go_str(v).replace("\\", "\\\\").replace('"', '\\"') + '"',
            "default": lambda d, v=None: v if _truthy(v) else d,
            "eq": lambda a, b: a == b,
            "ne": lambda a, b: a != b,
            "not": lambda v: not _truthy(v),
            "and": lambda *vs: next((v for v in vs if not _truthy(v)), vs[-1]),
            "or": lambda *vs: next((v for v in vs if _truthy(v)), vs[-1]),
            "trunc": lambda n, s: str(s)[: int(n)],
            "trimSuffix": lambda suf, s: str(s)[: -len(suf)] if suf and str(s).endswith(suf) else str(s),
            "contains": lambda sub, s: str(sub) in str(s),
            "printf": _printf,
            "required": _required,
            "empty": lambda v: not _truthy(v),
        }

    def _include(self, name: str, ctx: Any) -> str:
        if name not in self.defines:
            raise TemplateError(f"include of undefined template {name!r}")
        return self.render(self.defines[name], ctx, {"$": ctx})

    def render(self, nodes: list[_Node], dot: Any, scope: dict[str, Any]) -> str:
        out: list[str] = []
        for node in nodes:
            if node.kind == "text":
                out.append(node.text)
            elif node.kind == "action":
                words = node.pipe
                if ("decl", ":=") in words:
                    at = words.index(("decl", ":="))
                    scope[words[0][1]] = self._pipe(words[at + 1 :], dot, scope)
                else:
                    out.append(_go_str(self._pipe(words, dot, scope)))
            elif node.kind == "if":
                for cond, body in node.branches:
                    if _truthy(self._pipe(cond, dot, scope)):
                        out.append(self.render(body, dot, dict(scope)))
                        break
                else:
                    out.append(self.render(node.else_body, dot, dict(scope)))
            elif node.kind == "with":
                value = self._pipe(node.pipe, dot, scope)
                if _truthy(value):
                    out.append(self.render(node.body, value, dict(scope)))
                else:
                    out.append(self.render(node.else_body, dot, dict(scope)))
            elif node.kind == "range":
                value = self._pipe(node.pipe, dot, scope)
                items: list[tuple[Any, Any]]
                if isinstance(value, Mapping):
                    items = [(k, value[k]) for k in sorted(value)]
                elif isinstance(value, list):
                    items = list(enumerate(value))
                elif value is None:
                    items = []
                else:
                    raise TemplateError(f"range over {type(value).__name__}")
                if not items:
                    out.append(self.render(node.else_body, dot, dict(scope)))
                for k, v in items:
                    inner = dict(scope)
                    if len(node.vars) == 1:
                        inner[node.vars[0]] = v
                    elif len(node.vars) == 2:
                        inner[node.vars[0]], inner[node.vars[1]] = k, v
                    out.append(self.render(node.body, v, inner))
        return "".join(out)

    def _value(self, kind: str, text: str, dot: Any, scope: dict[str, Any]) -> Any:
        if kind == "str":
            return yaml.safe_load(text)
        if kind == "raw":
            return text[1:-1]
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "field":
            return dot if text == "." else _walk(dot, text[1:].split("."))
        if kind == "var":
            name, *path = text.split(".")
            if name not in scope:
                raise TemplateError(f"undefined variable {name}")
            return _walk(scope[name], path)
        if kind == "ident" and text in ("true", "false", "nil"):
            return {"true": True, "false": False, "nil": None}[text]
        raise TemplateError(f"unexpected {text!r}")

    def _pipe(self, words: list[tuple[str, str]], dot: Any, scope: dict[str, Any]) -> Any:
        commands: list[list[tuple[str, str]]] = [[]]
        depth = 0
        for w in words:
            if w[0] == "lp":
                depth += 1
            elif w[0] == "rp":
                depth -= 1
            if w[0] == "pipe" and depth == 0:
                commands.append([])
            else:
                commands[-1].append(w)
        value: Any = _NOTHING
        for cmd in commands:
            value = self._command(cmd, dot, scope, value)
        return None if value is _NOTHING else value

    def _operands(self, words: list[tuple[str, str]], dot: Any, scope: dict[str, Any]) -> list[Any]:
        out: list[Any] = []
        i = 0
        while i < len(words):
            kind, text = words[i]
            if kind == "lp":
                depth, j = 1, i + 1
                while depth:
                    depth += {"lp": 1, "rp": -1}.get(words[j][0], 0)
                    j += 1
                out.append(self._pipe(words[i + 1 : j - 1], dot, scope))
                i = j
                continue
            out.append(
                ("ident", text)
                if kind == "ident" and text not in ("true", "false", "nil")
                else self._value(kind, text, dot, scope)
            )
            i += 1
        return out

    def _command(self, words: list[tuple[str, str]], dot: Any, scope: dict[str, Any], piped: Any) -> Any:
        if not words:
            raise TemplateError("empty command")
        ops = self._operands(words, dot, scope)
        head, args = ops[0], ops[1:]
        if piped is not _NOTHING:
            args.append(piped)
        if isinstance(head, tuple) and head[0] == "ident":
            fn = self.funcs.get(head[1])
            if fn is None:
                raise TemplateError(f"function {head[1]!r} is not supported by this renderer")
            return fn(*args)
        if callable(head):
            return head(*args)
        if args:
            raise TemplateError(f"{words[0][1]} is not a function")
        return head


_NOTHING = object()


def _walk(value: Any, path: list[str]) -> Any:
    for p in path:
        if p == "":
            continue
        if isinstance(value, Mapping):
            value = value.get(p)
        elif value is not None and hasattr(value, p):
            value = getattr(value, p)
        else:
            return None
    return value


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base.get(k), v)
        return out
    return copy.deepcopy(over)


DEFAULT_API_VERSIONS = (
    "v1",
    "apps/v1",
    "policy/v1",
    "rbac.authorization.k8s.io/v1",
    "coordination.k8s.io/v1",
)


def render_chart(
    chart: Path,
    *,
    values: Mapping[str, Any] | None = None,
    release: str = "smi-bridge",
    namespace: str = "smi-bridge-system",
    api_versions: Iterable[str] = DEFAULT_API_VERSIONS,
) -> dict[str, str]:
    """``{template path: rendered text}`` for every template that renders to something."""
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    merged = _merge(yaml.safe_load((chart / "values.yaml").read_text()) or {}, dict(values or {}))
    ctx = {
        "Values": merged,
        "Release": {"Name": release, "Namespace": namespace, "Service": "Helm"},
        "Chart": {"Name": meta["name"], "Version": meta["version"], "AppVersion": meta.get("appVersion", "")},
        "Capabilities": {"APIVersions": APIVersions(api_versions)},
    }
    defines: dict[str, list[_Node]] = {}
    files = sorted((chart / "templates").iterdir())
    parsed: dict[str, list[_Node]] = {}
    for f in files:
        nodes, _ = _Parser(_lex(f.read_text()), defines).parse()
        if not f.name.startswith("_"):
            parsed[f"{meta['name']}/templates/{f.name}"] = nodes
    renderer = Renderer(defines)
    out: dict[str, str] = {}
    for name, nodes in parsed.items():
        text = renderer.render(nodes, ctx, {"$": ctx})
        if text.strip():
            out[name] = text
    return out


def render_objects(chart: Path, **kwargs: Any) -> list[dict[str, Any]]:
    """The rendered manifests as objects (YAML-parsed, empty documents dropped)."""
    objects: list[dict[str, Any]] = []
    for name, text in render_chart(chart, **kwargs).items():
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            raise TemplateError(f"{name} did not render to valid YAML: {exc}\n{text}") from None
        objects.extend(d for d in docs if d)
    return objects
