"""The SMI regex dialect: which patterns we accept, how they match, and strings that do or do not match.

SMI does not name a regex dialect; every implementation (Go ``regexp``, Envoy ``safe_regex``) is
RE2, so we accept the part of RE2 that Python's ``re`` reads the same way and reject the rest with
a one-line reason. Python ``re`` is the engine here (the proxy and ``semantics`` match with it), so
a pattern must also compile in Python. Patterns compile with ``re.ASCII`` so that ``\\d``, ``\\w``,
``\\s`` and ``\\b`` mean what they mean in RE2 (ASCII only).

Anchoring (ARCHITECTURE.md, "Meanings we decided"):

- ``pathRegex`` is anchored at the start only: ``compile_path(p).match(path)``, where ``path`` has no
  query string. Engines that full-match (Envoy, Istio, Consul) get ``full_match_form(p)``, i.e.
  ``(?:p).*``.
- header values are full-match: ``compile_header(p).fullmatch(value)``.

Rejected (``check_re2``): look-around, backreferences, possessive repeats and atomic groups,
conditionals, ``\\Z`` (RE2 spells it ``\\z``, which Python lacks), comments ``(?#...)``, ``{,n}``
(RE2 reads it as literal text), the Python-only escapes ``\\u``, ``\\U``, ``\\N``, inline flags
other than ``i``, ``m``, ``s``, repeat counts above 1000 (RE2's limit), ambiguous nested sets such
as ``[[:alpha:]]`` (POSIX classes: RE2 reads a class, Python a set of characters), and anything
Python cannot compile.

``sample`` and ``near_misses`` feed request generation (``smi_bridge.probes``); ``reduce_to_literal``
lets emitters without regex support (Istio AuthorizationPolicy) use exact/prefix/suffix matches
where a full-match pattern is really one of those. ``.`` never matches a newline here, and HTTP
paths and header values never hold one, so "``/a/.*`` is the prefix ``/a/``" is exact for them.

The parse tree comes from the standard library's private ``re._parser`` (the engine's own parser,
so escapes and classes are never misread); it is converted once into the small typed tree below
and nothing else touches the private module.
"""

from __future__ import annotations

import functools
import importlib
import re
import warnings
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "UnsupportedRegex",
    "check_re2",
    "compile_header",
    "compile_path",
    "full_match_form",
    "near_misses",
    "reduce_to_literal",
    "sample",
]

# The private parser has no type stubs under its 3.11 name; it is only read in ``_convert``.
_sre: Any = importlib.import_module("re._parser")
_sre_c: Any = importlib.import_module("re._constants")

_FLAGS = re.ASCII
_RE2_MAX_REPEAT = 1000
_RE2_INLINE_FLAGS = frozenset("ims")
ReductionKind = Literal["exact", "prefix", "suffix", "any", "regex"]


class UnsupportedRegex(ValueError):
    """A pattern outside the accepted RE2 subset; ``reason`` is the one-line explanation."""

    def __init__(self, pattern: str, reason: str) -> None:
        super().__init__(f"regex {pattern!r}: {reason}")
        self.pattern = pattern
        self.reason = reason


# --- the typed tree -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Lit:
    char: str


@dataclass(frozen=True, slots=True)
class _NotLit:
    char: str


@dataclass(frozen=True, slots=True)
class _AnyChar:
    pass


@dataclass(frozen=True, slots=True)
class _Class:
    negated: bool
    # ("lit", c, c) | ("range", lo, hi) | ("cat", name, "")
    items: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True, slots=True)
class _Seq:
    items: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Alt:
    branches: tuple[_Seq, ...]


@dataclass(frozen=True, slots=True)
class _Group:
    add_flags: int
    del_flags: int
    body: _Seq


@dataclass(frozen=True, slots=True)
class _Repeat:
    low: int
    high: int | None  # None: unbounded
    body: _Seq


@dataclass(frozen=True, slots=True)
class _At:
    where: str  # "begin", "begin_string", "end", "end_string", "boundary", "non_boundary"


@dataclass(frozen=True, slots=True)
class _Unsupported:
    what: str


_Node = _Lit | _NotLit | _AnyChar | _Class | _Seq | _Alt | _Group | _Repeat | _At | _Unsupported


def _convert(sub: Any) -> _Seq:
    c = _sre_c
    out: list[_Node] = []
    for op, av in sub:
        if op is c.LITERAL:
            out.append(_Lit(chr(av)))
        elif op is c.NOT_LITERAL:
            out.append(_NotLit(chr(av)))
        elif op is c.ANY:
            out.append(_AnyChar())
        elif op is c.IN:
            negated = False
            items: list[tuple[str, str, str]] = []
            for iop, iav in av:
                if iop is c.NEGATE:
                    negated = True
                elif iop is c.LITERAL:
                    items.append(("lit", chr(iav), chr(iav)))
                elif iop is c.RANGE:
                    items.append(("range", chr(iav[0]), chr(iav[1])))
                elif iop is c.CATEGORY:
                    items.append(("cat", str(iav.name), ""))
                else:
                    out.append(_Unsupported(f"character class item {iop}"))
            out.append(_Class(negated, tuple(items)))
        elif op is c.BRANCH:
            out.append(_Alt(tuple(_convert(b) for b in av[1])))
        elif op is c.SUBPATTERN:
            _group, add_flags, del_flags, body = av
            out.append(_Group(add_flags, del_flags, _convert(body)))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
            low, high, body = av
            out.append(_Repeat(low, None if high is c.MAXREPEAT else int(high), _convert(body)))
        elif op is c.POSSESSIVE_REPEAT:
            out.append(_Unsupported("possessive repeats (*+, ++, ?+) are not RE2"))
        elif op is c.ATOMIC_GROUP:
            out.append(_Unsupported("atomic groups (?>...) are not RE2"))
        elif op is c.ASSERT:
            out.append(_Unsupported("look-ahead/look-behind (?=...) (?<=...) is not RE2"))
        elif op is c.ASSERT_NOT:
            out.append(_Unsupported("negative look-ahead/look-behind (?!...) (?<!...) is not RE2"))
        elif op is c.GROUPREF:
            out.append(_Unsupported("backreferences (\\1, (?P=name)) are not RE2"))
        elif op is c.GROUPREF_EXISTS:
            out.append(_Unsupported("conditionals (?(1)...|...) are not RE2"))
        elif op is c.AT:
            where = {
                c.AT_BEGINNING: "begin",
                c.AT_BEGINNING_STRING: "begin_string",
                c.AT_END: "end",
                c.AT_END_STRING: "end_string",
                c.AT_BOUNDARY: "boundary",
                c.AT_NON_BOUNDARY: "non_boundary",
            }.get(av)
            out.append(_At(where) if where else _Unsupported(f"anchor {av}"))
        else:
            out.append(_Unsupported(f"construct {op}"))
    return _Seq(tuple(out))


@dataclass(frozen=True, slots=True)
class _Parsed:
    tree: _Seq
    flags: int  # global inline flags (re.IGNORECASE, ...)


def _lexical_reason(pattern: str) -> str | None:
    """What only the text shows (the parser drops or normalises it): comments, ``{,n}``, flags, escapes."""
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1 : i + 2]
            if nxt in ("u", "U", "N"):
                return f"the escape \\{nxt} is Python-only (RE2 writes \\x{{...}})"
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            i += 1
            continue
        if ch == "[":
            in_class = True
            i += 1
            # a ']' right after '[' or '[^' is a literal member, not the end of the class
            if pattern[i : i + 1] == "^":
                i += 1
            if pattern[i : i + 1] == "]":
                i += 1
            continue
        if ch == "{" and pattern[i + 1 : i + 2] == ",":
            return "'{,n}' is a repeat in Python but literal text in RE2; write '{0,n}'"
        if pattern.startswith("(?#", i):
            return "comments (?#...) are not RE2"
        if pattern.startswith("(?", i):
            j = i + 2
            while j < n and pattern[j] in "aiLmsux-":
                j += 1
            letters = pattern[i + 2 : j].replace("-", "")
            if j > i + 2 and j < n and pattern[j] in ":)":
                bad = sorted(set(letters) - _RE2_INLINE_FLAGS)
                if bad:
                    return f"inline flag(s) {''.join(bad)!r} are not RE2 (RE2 knows i, m, s)"
        i += 1
    return None


def _tree_reason(seq: _Seq) -> str | None:
    for node in seq.items:
        if isinstance(node, _Unsupported):
            return node.what
        if isinstance(node, _At) and node.where == "end_string":
            return "\\Z is not RE2 (use $)"
        if isinstance(node, _Repeat):
            bound = node.low if node.high is None else max(node.low, node.high)
            if bound > _RE2_MAX_REPEAT:
                return f"repeat count {bound} exceeds RE2's limit of {_RE2_MAX_REPEAT}"
            inner = _tree_reason(node.body)
        elif isinstance(node, _Group):
            inner = _tree_reason(node.body)
        elif isinstance(node, _Alt):
            inner = next((r for b in node.branches if (r := _tree_reason(b)) is not None), None)
        else:
            inner = None
        if inner is not None:
            return inner
    return None


@functools.lru_cache(maxsize=4096)
def _analyse(pattern: str) -> _Parsed | str:
    """The parsed pattern, or the reason it is outside the accepted subset."""
    if not isinstance(pattern, str):
        return f"a regex must be a string, not {type(pattern).__name__}"
    reason = _lexical_reason(pattern)
    if reason is not None:
        return reason
    # Python warns (FutureWarning) where a pattern reads ambiguously, e.g. '[[:alpha:]]'; an
    # ambiguous pattern is rejected rather than guessed at (and tests turn warnings into errors).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            parsed = _sre.parse(pattern, _FLAGS)
            re.compile(pattern, _FLAGS)
        except re.error as exc:
            return f"Python re cannot compile it: {exc}"
        except (Warning, RecursionError, OverflowError) as exc:
            return f"Python re cannot compile it unambiguously: {exc}"
    tree = _convert(parsed)
    reason = _tree_reason(tree)
    if reason is not None:
        return reason
    flags = int(parsed.state.flags) & (re.IGNORECASE | re.MULTILINE | re.DOTALL)
    return _Parsed(tree, flags)


def check_re2(pattern: str) -> str | None:
    """None when ``pattern`` is in the accepted RE2 subset, else a one-line reason."""
    result = _analyse(pattern)
    return result if isinstance(result, str) else None


def _compile(pattern: str) -> re.Pattern[str]:
    result = _analyse(pattern)
    if isinstance(result, str):
        raise UnsupportedRegex(pattern, result)
    return re.compile(pattern, _FLAGS)


@functools.lru_cache(maxsize=4096)
def compile_path(pattern: str) -> re.Pattern[str]:
    """The compiled ``pathRegex``; use ``.match(path_without_query)`` (anchored at the start only).

    Raises ``UnsupportedRegex`` for a pattern ``check_re2`` rejects.
    """
    return _compile(pattern)


@functools.lru_cache(maxsize=4096)
def compile_header(pattern: str) -> re.Pattern[str]:
    """The compiled header-value regex; use ``.fullmatch(value)``.

    Raises ``UnsupportedRegex`` for a pattern ``check_re2`` rejects.
    """
    return _compile(pattern)


_LEADING_FLAGS = re.compile(r"\(\?[imsU]+\)")


def full_match_form(pattern: str) -> str:
    """``(?:R).*``: the pathRegex ``R`` for engines that match the whole path (Envoy, Istio, Consul).

    Leading global flags such as ``(?i)`` are kept in front, where Python requires them.
    """
    head, pattern = split_leading_flags(pattern)
    return f"{head}(?:{pattern}).*"


def split_leading_flags(pattern: str) -> tuple[str, str]:
    """``("(?i)", "rest")``: the leading global flag groups, and what follows them."""
    head = ""
    while m := _LEADING_FLAGS.match(pattern):
        head += m.group(0)
        pattern = pattern[m.end() :]
    return head, pattern


def strip_full_match(regex: str) -> str | None:
    """``R`` when ``regex`` is exactly ``(?:R).*`` (``full_match_form``'s shape, flags already split
    off), else None. The outer group must be one group: ``(?:a).*|(?:b).*`` is not.

    Scanned as RE2 reads it: ``\\x`` escapes one character; inside a class ``]`` closes it unless it
    comes first (after ``[`` or ``[^``), where it is literal; parentheses in a class do not count.
    """
    if not (regex.startswith("(?:") and regex.endswith(").*")):
        return None
    inner = regex[3:-3]
    depth, i, in_class = 0, 0, False
    while i < len(inner):
        ch = inner[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            if inner[i + 1 : i + 2] == "^":
                i += 1
            if inner[i + 1 : i + 2] == "]":
                i += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return None  # the outer group closes early
        i += 1
    return inner if depth == 0 and not in_class else None


# --- samples --------------------------------------------------------------------------------------

_PREFERRED = "xabcdefghijklmnopqrstuvwyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_~./"
_PRINTABLE = "".join(chr(c) for c in range(33, 127)) + " "
_CATEGORY_SAMPLE = {
    "CATEGORY_DIGIT": "0",
    "CATEGORY_NOT_DIGIT": "a",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": "a",
    "CATEGORY_WORD": "a",
    "CATEGORY_NOT_WORD": "-",
}


def _in_category(cat: str, ch: str) -> bool:
    digit = "0" <= ch <= "9"
    space = ch in " \t\n\r\f\v"
    word = ch.isascii() and (ch.isalnum() or ch == "_")
    return {
        "CATEGORY_DIGIT": digit,
        "CATEGORY_NOT_DIGIT": not digit,
        "CATEGORY_SPACE": space,
        "CATEGORY_NOT_SPACE": not space,
        "CATEGORY_WORD": word,
        "CATEGORY_NOT_WORD": not word,
    }.get(cat, False)


def _class_contains(items: tuple[tuple[str, str, str], ...], ch: str, ignore_case: bool) -> bool:
    forms = {ch, ch.lower(), ch.upper()} if ignore_case else {ch}
    for kind, a, b in items:
        for f in forms:
            if kind == "lit" and f == a:
                return True
            if kind == "range" and a <= f <= b:
                return True
            if kind == "cat" and _in_category(a, f):
                return True
    return False


def _sample_class(node: _Class, ignore_case: bool) -> str | None:
    if node.negated:
        for ch in _PREFERRED + _PRINTABLE:
            if not _class_contains(node.items, ch, ignore_case):
                return ch
        return None
    candidates: list[str] = []
    for kind, a, b in node.items:
        if kind == "lit":
            candidates.append(a)
        elif kind == "range":
            for lo, hi in (("a", "z"), ("0", "9"), ("A", "Z")):
                if a <= hi and lo <= b:
                    candidates.append(max(a, lo))
                    break
            else:
                candidates.append(a)
        else:
            candidates.append(_CATEGORY_SAMPLE.get(a, ""))
    candidates = [c for c in candidates if c]
    for c in candidates:
        if c.isascii() and c.isalnum():
            return c
    return candidates[0] if candidates else None


def _sample_seq(seq: _Seq, flags: int) -> str | None:
    parts: list[str] = []
    for node in seq.items:
        piece = _sample_node(node, flags)
        if piece is None:
            return None
        parts.append(piece)
    return "".join(parts)


def _sample_node(node: _Node, flags: int) -> str | None:
    ignore_case = bool(flags & re.IGNORECASE)
    if isinstance(node, _Lit):
        return node.char
    if isinstance(node, _NotLit):
        return next(
            (
                ch
                for ch in _PREFERRED
                if ch != node.char and not (ignore_case and ch.lower() == node.char.lower())
            ),
            None,
        )
    if isinstance(node, _AnyChar):
        return "x"
    if isinstance(node, _Class):
        return _sample_class(node, ignore_case)
    if isinstance(node, _Seq):
        return _sample_seq(node, flags)
    if isinstance(node, _Alt):
        for branch in node.branches:
            s = _sample_seq(branch, flags)
            if s is not None:
                return s
        return None
    if isinstance(node, _Group):
        return _sample_seq(node.body, (flags | node.add_flags) & ~node.del_flags)
    if isinstance(node, _Repeat):
        if node.low == 0:
            return ""
        body = _sample_seq(node.body, flags)
        return None if body is None else body * node.low
    if isinstance(node, _At):
        return ""  # checked against the whole sample at the end
    return None


@functools.lru_cache(maxsize=4096)
def sample(pattern: str) -> str | None:
    """A deterministic string that full-matches ``pattern`` (hence also matches it as a pathRegex).

    First branches, minimum repeat counts, ``.`` as ``x``, the first allowed class member
    (letters and digits preferred). None when the pattern is rejected or no sample is found
    (e.g. contradictory anchors such as ``a^b``).
    """
    parsed = _analyse(pattern)
    if isinstance(parsed, str):
        return None
    s = _sample_seq(parsed.tree, parsed.flags)
    if s is None or compile_header(pattern).fullmatch(s) is None:
        return None
    return s


def _replace_at(s: str, i: int, ch: str) -> str:
    return s[:i] + ch + s[i + 1 :]


@functools.lru_cache(maxsize=4096)
def _near_misses(pattern: str, full_match: bool) -> tuple[str, ...]:
    s = sample(pattern)
    if s is None:
        return ()
    rx = compile_path(pattern)
    matcher = rx.fullmatch if full_match else rx.match
    candidates: list[str] = []
    if s:
        candidates.append(s[:-1])
    if full_match:
        candidates.append(s + "~")
    # one changed character at a few positions: the end, the middle, just after a leading '/'
    positions = [len(s) - 1, len(s) // 2, 1 if s.startswith("/") and len(s) > 1 else 0]
    for pos in positions:
        if 0 <= pos < len(s):
            for ch in "~Z0q%":
                if ch != s[pos]:
                    candidates.append(_replace_at(s, pos, ch))
                    if matcher(candidates[-1]) is None:
                        break
    candidates.append(s[:1] + "~" + s[1:])
    if s.swapcase() != s:
        candidates.append(s.swapcase())
    if full_match:
        candidates.append(s + "/x")
    out: list[str] = []
    for c in candidates:
        if c != s and c not in out and matcher(c) is None:
            out.append(c)
    return tuple(out[:6])


def near_misses(pattern: str, *, full_match: bool = False) -> list[str]:
    """A few strings close to ``sample(pattern)`` that ``pattern`` does not match.

    With ``full_match=False`` (pathRegex use) none of them even matches at the start, so they are
    misses for full-match use too; ``full_match=True`` adds strings that fail only a full match
    (the sample with a suffix). Every string is checked against the compiled pattern; the list is
    empty when nothing close misses (``.*``) or the pattern is rejected.
    """
    return list(_near_misses(pattern, full_match))


# --- reduction to literal matches ----------------------------------------------------------------


def _flatten(seq: _Seq) -> list[_Node] | None:
    """The sequence with flag-free groups and one-branch alternations inlined; None if flags change."""
    out: list[_Node] = []
    for node in seq.items:
        if isinstance(node, _Group):
            if node.add_flags or node.del_flags:
                return None
            inner = _flatten(node.body)
            if inner is None:
                return None
            out.extend(inner)
        elif isinstance(node, _Alt) and len(node.branches) == 1:
            inner = _flatten(node.branches[0])
            if inner is None:
                return None
            out.extend(inner)
        else:
            out.append(node)
    return out


def _is_dot_star(node: _Node) -> bool:
    return (
        isinstance(node, _Repeat)
        and node.low == 0
        and node.high is None
        and len(node.body.items) == 1
        and isinstance(node.body.items[0], _AnyChar)
    )


def _is_end(node: _Node) -> bool:
    return isinstance(node, _At) and node.where == "end"


@functools.lru_cache(maxsize=4096)
def reduce_to_literal(pattern: str) -> tuple[ReductionKind, str]:
    """Classify a **full-match** pattern: ``("exact", "/a/b")``, ``("prefix", "/a/")`` for ``/a/.*``,
    ``("suffix", ".js")`` for ``.*\\.js``, ``("any", "")`` for ``.*``, or ``("regex", pattern)``.

    Only escaped or plain literal characters count as literal (``/a.b`` stays a regex, ``/a\\.b``
    is exact). Any flag (``(?i)``, ...) or rejected pattern gives ``"regex"``. For a pathRegex,
    reduce ``full_match_form(p)``: ``/api`` then reduces to the prefix ``/api``.
    """
    parsed = _analyse(pattern)
    if isinstance(parsed, str) or parsed.flags:
        return ("regex", pattern)
    items = _flatten(parsed.tree)
    if items is None:
        return ("regex", pattern)
    i = 0
    while i < len(items) and isinstance(items[i], _At) and items[i] in (_At("begin"), _At("begin_string")):
        i += 1
    open_start = False
    while i < len(items) and _is_dot_star(items[i]):
        open_start = True
        i += 1
    literal: list[str] = []
    while i < len(items) and isinstance(items[i], _Lit):
        node = items[i]
        assert isinstance(node, _Lit)
        literal.append(node.char)
        i += 1
    tail = items[i:]
    text = "".join(literal)
    # tail forms: nothing | '$' then only '.*'/'$' (ends there) | '.*' ... (open end)
    if not tail or (_is_end(tail[0]) and all(_is_dot_star(t) or _is_end(t) for t in tail[1:])):
        open_end = False
    elif _is_dot_star(tail[0]) and all(_is_dot_star(t) or _is_end(t) for t in tail[1:]):
        open_end = True
    else:
        return ("regex", pattern)
    if open_start and open_end:
        return ("any", "") if not text else ("regex", pattern)
    if open_start:
        return ("suffix", text) if text else ("any", "")
    if open_end:
        return ("prefix", text) if text else ("any", "")
    return ("exact", text)
