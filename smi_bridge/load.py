"""Read manifests from files, directories and stdin into Documents that remember where they came from.

Every other part of smi-bridge (lint, convert, translate, migrate, the controller) reads input through
``load()`` or ``load_bytes()``. Input is YAML or JSON: files, directories (recursive; ``.yaml``, ``.yml``
and ``.json``; dotfiles and dot-directories skipped), ``-`` for stdin, multi-document streams, ``kind: List``
(each item becomes a Document), Helm renders (``# Source:`` comments name the template). Bad input never
raises: it becomes a Diagnostic with file, line and column (codes ``SMB001``-``SMB013``, see ``CHECKS``).

Design, and why:

* Speed. PyYAML's C parser composes each document into nodes (every node carries its start mark); our
  own small constructor turns nodes into dicts, lists and scalars. It replaces PyYAML's
  ``SafeConstructor``, which is pure Python and general, and it does the checks a hostile input needs in
  the same single pass: duplicate keys, nesting depth, and alias expansion ("billion laughs": every
  collection's expanded size and height are memoised, so a bomb is measured in linear time and refused
  past ``MAX_EXPANDED_NODES``). The resolver's answers for plain scalars are cached, because manifests
  repeat the same few words. ruamel.yaml's pure-Python loaders, which would keep positions for free,
  are 30-60 times slower on the benchmark corpus and are not used.
* Positions. Every Document knows its start line. Exact positions of values inside a document are found
  only when asked (``Document.position``): the document's text is sliced out of the file again and
  composed, and the JSON path is walked through the nodes. Only documents with findings pay.
* Bounded memory. Large files are memory-mapped and parsed as a stream, document by document; nothing
  but the constructed objects is kept. Files over ``max_bytes`` are refused with a finding.
* Recovery. A syntax error ends the broken document, not the file: parsing resumes at the next line that
  starts with ``---`` after the error.
* YAML 1.1 subtleties are resolved the way Kubernetes' own YAML-to-JSON step does: timestamps and base-60
  numbers stay strings, non-string keys become their source text, ``<<`` merge keys are honoured.
* libyaml 0.2.6 and later stop at 1,000 nesting levels in C. With an older libyaml (or none) the parser is
  PyYAML's pure-Python one, whose recursion Python bounds, so hostile nesting can never crash the process.
"""

from __future__ import annotations

import bisect
import codecs
import contextlib
import gc
import json
import mmap
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from smi_bridge.diagnostics import Check, Diagnostic, ResourceRef, Severity

__all__ = [
    "CHECKS",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_EXPANDED_NODES",
    "MANIFEST_SUFFIXES",
    "Document",
    "LoadResult",
    "UsageError",
    "json_path",
    "load",
    "load_bytes",
]

MAX_BYTES: Final = 256 * 1024 * 1024
MAX_DEPTH: Final = 100  # nested mappings/sequences; Kubernetes objects need about 10
MAX_EXPANDED_NODES: Final = 1_000_000  # collection entries once every alias is expanded
MANIFEST_SUFFIXES: Final = (".yaml", ".yml", ".json")

YAML_SYNTAX = Check("SMB001", Severity.ERROR, "input is not parsable YAML or JSON")
TAB_INDENT = Check("SMB002", Severity.ERROR, "tab characters used for indentation (YAML allows spaces only)")
DUPLICATE_KEY = Check("SMB003", Severity.WARNING, "duplicate mapping key (the later value wins)")
NOT_UTF8 = Check("SMB004", Severity.ERROR, "file is not UTF-8")
BINARY_FILE = Check("SMB005", Severity.ERROR, "binary file (contains NUL bytes)")
NOT_AN_OBJECT = Check("SMB006", Severity.ERROR, "document is a list or a scalar, not an object")
ALIAS_EXPANSION = Check(
    "SMB007", Severity.ERROR, "YAML aliases expand too far (alias bomb) or refer to themselves"
)
TOO_DEEP = Check("SMB008", Severity.ERROR, f"nesting deeper than {MAX_DEPTH} levels")
TOO_LARGE = Check("SMB009", Severity.ERROR, "file larger than the size limit")
UNREADABLE = Check("SMB010", Severity.ERROR, "path cannot be read (missing, permission denied, not a file)")
NO_MANIFESTS = Check("SMB011", Severity.INFO, "directory holds no .yaml, .yml or .json files")
UNSUPPORTED = Check(
    "SMB012", Severity.ERROR, "unsupported YAML construct (unknown tag, non-scalar key, bad merge)"
)
BAD_LIST = Check("SMB013", Severity.ERROR, "kind: List whose items is not a list")

CHECKS: Final[tuple[Check, ...]] = (
    YAML_SYNTAX,
    TAB_INDENT,
    DUPLICATE_KEY,
    NOT_UTF8,
    BINARY_FILE,
    NOT_AN_OBJECT,
    ALIAS_EXPANSION,
    TOO_DEEP,
    TOO_LARGE,
    UNREADABLE,
    NO_MANIFESTS,
    UNSUPPORTED,
    BAD_LIST,
)


class UsageError(Exception):
    """The caller asked for something that cannot work (stdin is an interactive terminal).

    Not a finding about input: the CLI turns it into exit code 2 with the message.
    """


# --------------------------------------------------------------------------------------------------
# Public values


@dataclass(slots=True)
class Document:
    """One Kubernetes object read from input, with the way back to its text."""

    file: str  # path as given; "<stdin>" for "-"
    index: int  # 0-based index of the YAML document in its file
    line: int  # 1-based line where the document (or the List item) starts
    obj: Any  # the parsed value (a dict for a normal Kubernetes object)
    template: str | None = None  # Helm "# Source:" template name, when present
    item_path: str = ""  # "items[3]" when flattened out of a kind: List
    _source: _Source | None = field(default=None, repr=False, compare=False)
    _prefix: tuple[str | int, ...] = field(default=(), repr=False, compare=False)

    def position(self, path: Sequence[str | int]) -> tuple[int, int] | None:
        """1-based (line, column) of the value at that JSON path inside this document's obj.

        The path is relative to ``obj`` (``("spec", "backends", 1, "weight")``); None if not present.
        Computed lazily and cached per file: only documents with findings pay for it.
        """
        if self._source is None:
            return None
        return self._source.position(self.index, (*self._prefix, *path))

    def location(self, path: Sequence[str | int] = ()) -> tuple[str, int, int | None]:
        """``(file, line, column)`` of the value at ``path``.

        A path that is not present falls back to its nearest present ancestor (a missing field is
        reported where its parent is), and finally to the document's line with no column.
        """
        for end in range(len(path), -1, -1):
            found = self.position(path[:end])
            if found is not None:
                return (self.file, found[0], found[1])
        return (self.file, self.line, None)

    def resource(self) -> ResourceRef:
        """apiVersion, kind, namespace and name as far as the object states them."""
        return _resource_of(self.obj)


@dataclass
class LoadResult:
    documents: list[Document]
    diagnostics: list[Diagnostic]
    files: int  # files read
    skipped_documents: int  # empty/comment-only documents


def json_path(path: Sequence[str | int]) -> str:
    """``("spec", "backends", 1, "weight")`` -> ``spec.backends[1].weight``.

    Keys that are not simple words (``app.kubernetes.io/name``) are written ``["app.kubernetes.io/name"]``
    so that the path stays unambiguous.
    """
    parts: list[str] = []
    for step in path:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif _SIMPLE_KEY.fullmatch(step):
            parts.append(f".{step}" if parts else step)
        else:
            parts.append(f"[{json.dumps(step)}]")
    return "".join(parts)


_SIMPLE_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")


def load(
    paths: Sequence[str | os.PathLike[str]],
    *,
    stdin: BinaryIO | None = None,
    max_bytes: int = MAX_BYTES,
) -> LoadResult:
    """Read every path (``-`` is stdin) into Documents and Diagnostics.

    Raises ``UsageError`` only when ``-`` would read an interactive terminal; everything wrong with the
    input itself is a Diagnostic.
    """
    reader = _Reader(max_bytes)
    with _collector_paused():
        for path in paths:
            text = os.fspath(path)
            if text == "-":
                reader.read_stdin(stdin if stdin is not None else _process_stdin())
            else:
                reader.read_path(text)
    return reader.result()


def load_bytes(data: bytes, file: str = "<string>") -> LoadResult:
    """Parse ``data`` as the content of one file named ``file`` (its ``.json`` suffix selects strict JSON)."""
    data = bytes(data)
    reader = _Reader(MAX_BYTES)
    reader.files += 1
    with _collector_paused():
        reader.parse(_Source(file, data=data), data, strict_json=file.lower().endswith(".json"))
    return reader.result()


def _process_stdin() -> BinaryIO | None:
    stream = sys.stdin
    return None if stream is None else stream.buffer


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while loading.

    Loading allocates millions of small containers and no reference cycles; the collector would
    otherwise run over the growing heap again and again (10-20% of the loading time). The previous
    state is restored, so a caller that disabled the collector keeps it disabled.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --------------------------------------------------------------------------------------------------
# The parser: libyaml's C parser and composer with a cached resolver, or pure Python as a fallback

_YAML_TAG: Final = "tag:yaml.org,2002:"
_STR: Final = "tag:yaml.org,2002:str"
_SEQ: Final = "tag:yaml.org,2002:seq"
_MAP: Final = "tag:yaml.org,2002:map"
_NULL: Final = "tag:yaml.org,2002:null"
_MERGE: Final = "tag:yaml.org,2002:merge"

_RESOLVED: dict[str, str] = {}  # plain scalar text -> tag; manifests repeat the same words
_RESOLVED_LIMIT: Final = 50_000
_RESOLVER: Final = Resolver()
_NO_PATHS: Final[dict[Any, Any]] = {}  # always empty; see _Composer


def _resolve(self: Any, kind: type[Node], value: str, implicit: tuple[bool, bool]) -> str:
    if kind is ScalarNode:
        if not implicit[0]:
            return _STR  # quoted, or the non-specific "!" tag
        tag = _RESOLVED.get(value)
        if tag is None:
            tag = _RESOLVER.resolve(ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
            if len(_RESOLVED) >= _RESOLVED_LIMIT:
                _RESOLVED.clear()
            _RESOLVED[value] = tag
        return tag
    return _SEQ if kind is SequenceNode else _MAP


def _libyaml_version() -> tuple[int, ...]:
    try:
        from yaml import _yaml

        return tuple(int(part) for part in str(_yaml.get_version_string()).split("."))
    except (ImportError, AttributeError, ValueError):
        return ()


# libyaml before 0.2.6 has no nesting limit and PyYAML composes recursively in C: hostile nesting could
# overflow the C stack. Only a libyaml that refuses deep nesting itself is trusted with untrusted input.
FAST_PARSER: Final = bool(getattr(yaml, "__with_libyaml__", False)) and _libyaml_version() >= (0, 2, 6)


class _PyComposer(
    yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer, Resolver
):
    """PyYAML's pure-Python composer: the fallback where libyaml is missing or too old to trust."""

    def __init__(self, stream: Any) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        Resolver.__init__(self)

    resolve = _resolve


_Composer: type[Any] = _PyComposer

if FAST_PARSER:
    from yaml._yaml import CParser

    class _CComposer(CParser, Resolver):
        """libyaml's parser and PyYAML's C composer with our cached resolver."""

        def __init__(self, stream: Any) -> None:
            CParser.__init__(self, stream)
            Resolver.__init__(self)

        resolve = _resolve
        # The C composer calls these two for every node; they serve path-based resolvers, which we do
        # not register. Plain Python no-ops still cost a frame each (~5% of loading), so they are bound
        # to C methods of an empty dict that accept the same arguments and do nothing.
        descend_resolver: Any = _NO_PATHS.get
        ascend_resolver: Any = _NO_PATHS.clear

    _Composer = _CComposer


class _ChunkReader:
    """A ``read(size)`` view of ``buffer[pos:end]``, so that parsing can resume mid-file without a copy.

    Over a memory map it also hands the pages it has read back to the kernel as it goes, so a large
    file never sits in the process's resident memory as a whole.
    """

    __slots__ = ("buffer", "end", "pos", "released", "source")

    def __init__(self, buffer: bytes | mmap.mmap, pos: int, end: int) -> None:
        self.source = buffer
        self.buffer = memoryview(buffer)
        self.pos = pos
        self.end = end
        self.released = pos

    def read(self, size: int = -1) -> bytes:
        stop = self.end if size < 0 else min(self.end, self.pos + size)
        chunk = bytes(self.buffer[self.pos : stop])
        self.pos += len(chunk)
        if self.pos - self.released >= _RELEASE_EVERY:
            _release(self.source, self.released, self.pos)
            self.released = self.pos
        return chunk


def _release(data: bytes | mmap.mmap, start: int = 0, end: int | None = None) -> None:
    """Drop the mapped pages of ``data[start:end]`` from resident memory (they stay in the page cache)."""
    if not isinstance(data, mmap.mmap) or not hasattr(mmap, "MADV_DONTNEED"):
        return
    first = start - start % mmap.PAGESIZE
    last = len(data) if end is None else end - end % mmap.PAGESIZE
    if last > first:
        data.madvise(mmap.MADV_DONTNEED, first, last - first)


# --------------------------------------------------------------------------------------------------
# From nodes to values


class _Refused(Exception):
    """A document that cannot be built safely (too deep, alias bomb, recursive alias)."""

    def __init__(self, check: Check, message: str, node: Node) -> None:
        super().__init__(message)
        self.check = check
        self.message = message
        self.node = node


_BUILDING: Final = object()  # memo marker for a collection whose children are being built
# Manifests repeat the same keys and most values (apiVersions, kinds, namespaces, methods): interning
# shares one string object per distinct text, a quarter less memory for a large corpus, for ~1% time.
_intern: Final = sys.intern
_SAFE: Final = yaml.constructor.SafeConstructor()
_BOOLS: Final = _SAFE.bool_values


def _to_null(node: ScalarNode) -> Any:
    return None


def _to_bool(node: ScalarNode) -> Any:
    return _BOOLS[node.value.lower()]


def _to_int(node: ScalarNode) -> Any:
    if ":" in node.value:  # YAML 1.1 base 60 ("1:30"); Kubernetes reads it as a string
        return node.value
    return _SAFE.construct_yaml_int(node)


def _to_float(node: ScalarNode) -> Any:
    if ":" in node.value:
        return node.value
    return _SAFE.construct_yaml_float(node)


def _as_text(node: ScalarNode) -> Any:
    return node.value


# Timestamps stay text (as in Kubernetes' YAML-to-JSON step); so do !!binary, "=" and a lone "<<".
_SCALARS: Final[dict[str, Callable[[ScalarNode], Any]]] = {
    _NULL: _to_null,
    "tag:yaml.org,2002:bool": _to_bool,
    "tag:yaml.org,2002:int": _to_int,
    "tag:yaml.org,2002:float": _to_float,
    "tag:yaml.org,2002:timestamp": _as_text,
    "tag:yaml.org,2002:binary": _as_text,
    "tag:yaml.org,2002:value": _as_text,
    _MERGE: _as_text,
}


class _Builder:
    """Builds one composed document into plain values, checking depth, aliases and keys on the way.

    ``count`` is the number of collection entries with aliases expanded; each finished collection is
    memoised with its value, its expanded size and its height, so an alias costs O(1) however large
    its expansion, and a bomb is refused after linear work.
    """

    __slots__ = ("count", "deepest", "duplicates", "memo", "problems")

    def __init__(self) -> None:
        self.memo: dict[Node, Any] = {}
        self.count = 0
        self.deepest = 0
        self.duplicates: list[tuple[str, Node]] = []  # (key, key node of the later occurrence)
        self.problems: list[tuple[Check, str, Node]] = []

    def reset(self) -> None:
        self.memo.clear()
        self.count = self.deepest = 0
        self.duplicates.clear()
        self.problems.clear()

    def build(self, node: Any, depth: int) -> Any:  # Any: a ScalarNode, SequenceNode or MappingNode
        cls = node.__class__
        if cls is ScalarNode:
            if node.tag == _STR:
                return _intern(node.value)
            return self.scalar(node)
        memo = self.memo
        done = memo.get(node)
        if done is not None:
            return self.again(node, done, depth)
        if depth > MAX_DEPTH:
            raise _Refused(TOO_DEEP, f"nesting is deeper than {MAX_DEPTH} levels", node)
        memo[node] = _BUILDING
        outer = self.deepest
        self.deepest = depth
        start = self.count
        result: Any
        if cls is MappingNode:
            result = self.mapping(node, depth)
        else:
            build = self.build
            child = depth + 1
            result = [build(item, child) for item in node.value]
            if node.tag != _SEQ:
                self.odd_tag(node)
        self.count += len(node.value) + 1
        memo[node] = (result, self.count - start, self.deepest - depth)
        if outer > self.deepest:
            self.deepest = outer
        return result

    def again(self, node: Node, done: Any, depth: int) -> Any:
        """A collection met a second time, through an alias."""
        if done is _BUILDING:
            raise _Refused(ALIAS_EXPANSION, "an alias refers to a collection that contains it", node)
        result, size, height = done
        if depth + height > MAX_DEPTH:
            raise _Refused(TOO_DEEP, f"aliases nest the document deeper than {MAX_DEPTH} levels", node)
        self.count += size
        if self.count > MAX_EXPANDED_NODES:
            raise _Refused(
                ALIAS_EXPANSION,
                f"aliases expand the document beyond {MAX_EXPANDED_NODES:,} nodes (an alias bomb)",
                node,
            )
        if depth + height > self.deepest:
            self.deepest = depth + height
        return result

    def mapping(self, node: MappingNode, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        build = self.build
        child = depth + 1
        merges: list[Any] = []
        for key_node, value_node in node.value:
            if key_node.__class__ is ScalarNode:
                if key_node.tag == _MERGE:
                    merges.append((build(value_node, child), value_node))
                    continue
                # Kubernetes turns non-string keys into text; the source text is the faithful form.
                key = _intern(key_node.value)
            else:
                self.problems.append(
                    (UNSUPPORTED, "a mapping or sequence used as a key; keys must be scalars", key_node)
                )
                continue
            value = build(value_node, child)
            if key in result:
                self.duplicates.append((key, key_node))
            result[key] = value
        if merges:
            self.merge(result, merges)
        if node.tag != _MAP:
            self.odd_tag(node)
        return result

    def merge(self, result: dict[str, Any], merges: list[Any]) -> None:
        """``<<: *base`` and ``<<: [*a, *b]``: explicit keys win, then earlier merged mappings."""
        for value, value_node in merges:
            sources = value if isinstance(value, list) else [value]
            for source in sources:
                if not isinstance(source, dict):
                    self.problems.append(
                        (UNSUPPORTED, "a merge key '<<' needs a mapping or a list of mappings", value_node)
                    )
                    continue
                for key, item in source.items():
                    result.setdefault(key, item)
                # Merged entries are new entries: count them, or chains of merges would multiply unseen.
                self.count += len(source)
                if self.count > MAX_EXPANDED_NODES:
                    raise _Refused(
                        ALIAS_EXPANSION,
                        f"merge keys expand the document beyond {MAX_EXPANDED_NODES:,} nodes",
                        value_node,
                    )

    def scalar(self, node: ScalarNode) -> Any:
        convert = _SCALARS.get(node.tag)
        if convert is None:
            self.problems.append(
                (UNSUPPORTED, f"unsupported tag {_short_tag(node.tag)}; the value is read as text", node)
            )
            return node.value
        try:
            return convert(node)
        except (ValueError, KeyError, IndexError, TypeError, ArithmeticError, yaml.YAMLError):
            self.problems.append(
                (
                    UNSUPPORTED,
                    f"value {_clip(node.value)!r} does not fit its tag {_short_tag(node.tag)}; read as text",
                    node,
                )
            )
            return node.value

    def odd_tag(self, node: Node) -> None:
        self.problems.append(
            (UNSUPPORTED, f"unsupported tag {_short_tag(node.tag)}; read as a plain collection", node)
        )


class _TreeBuilder(_Builder):
    """The builder for text without anchors: no alias can occur, so nothing is memoised or counted."""

    __slots__ = ()

    def build(self, node: Any, depth: int) -> Any:
        cls = node.__class__
        if cls is ScalarNode:
            if node.tag == _STR:
                return _intern(node.value)
            return self.scalar(node)
        if depth > MAX_DEPTH:
            raise _Refused(TOO_DEEP, f"nesting is deeper than {MAX_DEPTH} levels", node)
        if cls is MappingNode:
            return self.mapping(node, depth)
        build = self.build
        child = depth + 1
        result = [build(item, child) for item in node.value]
        if node.tag != _SEQ:
            self.odd_tag(node)
        return result


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _path_to(root: Any, target: dict[str, Any]) -> tuple[str | int, ...] | None:
    """JSON path of the mapping ``target`` (by identity) inside ``root``; only used on the rare findings."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        value, path = stack.pop()
        if value is target:
            return path
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, dict):
            stack.extend((item, (*path, key)) for key, item in value.items() if isinstance(item, dict | list))
        elif isinstance(value, list):
            stack.extend((item, (*path, i)) for i, item in enumerate(value) if isinstance(item, dict | list))
    return None


def _node_path(root: Node, target: Node) -> tuple[str | int, ...] | None:
    """JSON path of ``target`` (a value node, or a key node: the path of its entry) inside ``root``."""
    stack: list[tuple[Node, tuple[str | int, ...]]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, ScalarNode) else ""
                if key_node is target:  # a complex key is reported at its mapping
                    return (*path, key) if isinstance(key_node, ScalarNode) else path
                stack.append((value_node, (*path, key)))
        elif isinstance(node, SequenceNode):
            stack.extend((item, (*path, i)) for i, item in enumerate(node.value))
    return None


def _resource_of(obj: Any) -> ResourceRef:
    if not isinstance(obj, dict):
        return ResourceRef()
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}

    def text(value: Any) -> str:
        return value if isinstance(value, str) else ""

    return ResourceRef(
        text(obj.get("apiVersion")),
        text(obj.get("kind")),
        text(meta.get("namespace")),
        text(meta.get("name")),
    )


# --------------------------------------------------------------------------------------------------
# Where the text of a file can be found again, for positions


class _Source:
    """One input file (or stdin, or a string): its name, how to get its text back, document spans."""

    __slots__ = ("_roots", "_text", "data", "is_json", "keep_nodes", "name", "path", "spans", "stamp")

    def __init__(
        self,
        name: str,
        *,
        data: bytes | None = None,
        path: str | None = None,
        stamp: tuple[int, int] = (0, 0),
    ) -> None:
        self.name = name
        self.data = data  # kept for stdin and strings, which cannot be read again
        self.path = path  # re-read on demand for files
        self.stamp = stamp  # (size, mtime_ns) when read; a changed file yields no positions
        self.is_json = False
        self.spans: dict[int, tuple[int, int, int]] = {}  # index -> (start char, end char, first line)
        self._text: str | None = None
        # index -> (root node, line its marks count from); filled while parsing when keep_nodes,
        # otherwise on first use by composing that document's text again.
        self._roots: dict[int, tuple[Node | None, int]] = {}
        self.keep_nodes = False

    def text(self) -> str | None:
        if self._text is None:
            raw = self.data
            if raw is None and self.path is not None:
                try:
                    with open(self.path, "rb") as stream:
                        st = os.fstat(stream.fileno())
                        if (st.st_size, st.st_mtime_ns) != self.stamp:
                            return None
                        raw = stream.read()
                except OSError:
                    return None
            if raw is None:
                return None
            text = raw.decode("utf-8-sig", errors="replace")
            # JSON may indent with tabs, which YAML forbids; a tab can only be whitespace in valid JSON.
            self._text = text.replace("\t", " ") if self.is_json else text
        return self._text

    def keep(self, index: int, root: Node, first_line: int) -> None:
        self._roots[index] = (root, first_line)

    def root(self, index: int) -> tuple[Node | None, int]:
        if index in self._roots:
            return self._roots[index]
        root: Node | None = None
        span = self.spans.get(index)
        text = self.text() if span is not None else None
        if span is not None and text is not None:
            composer = _Composer(text[span[0] : span[1]])
            try:
                root = composer.get_node() if composer.check_node() else None
            except yaml.YAMLError:
                root = None
            finally:
                composer.dispose()
        first_line = span[2] if span is not None else 0
        self._roots[index] = (root, first_line)
        return root, first_line

    def position(self, index: int, path: Sequence[str | int]) -> tuple[int, int] | None:
        root, first_line = self.root(index)
        node = _find(root, path) if root is not None else None
        if node is None:
            return None
        mark = node.start_mark
        return (first_line + mark.line, mark.column + 1)


def _find(node: Node, path: Sequence[str | int]) -> Node | None:
    for step in path:
        if isinstance(node, MappingNode) and isinstance(step, str):
            found = _lookup(node, step, 0)
            if found is None:
                return None
            node = found
        elif isinstance(node, SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
            node = node.value[step]
        else:
            return None
    return node


def _lookup(node: MappingNode, key: str, hops: int) -> Node | None:
    found: Node | None = None
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE and key_node.value == key:
            found = value_node  # the last duplicate is the one whose value was kept
    if found is not None or hops > MAX_DEPTH:
        return found
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.tag == _MERGE:
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if isinstance(source, MappingNode):
                    merged = _lookup(source, key, hops + 1)
                    if merged is not None:
                        return merged
    return None


# --------------------------------------------------------------------------------------------------
# Reading paths and parsing files

_KEEP_NODES_BYTES: Final = 8 * 1024 * 1024
_MMAP_AT: Final = 16 * 1024 * 1024  # files this large are mapped, not read into memory
_RELEASE_EVERY: Final = 8 * 1024 * 1024
_STREAM_CHUNK: Final = 1024 * 1024
_DOCUMENT_START = re.compile(rb"^---(?=[ \t\r\n]|\Z)", re.M)
_HELM_MARKS = re.compile(rb"^(?:(---)(?=[ \t\r\n]|\Z)|# Source: *([^\r\n]*?)[ \t]*\r?$)", re.M)
_FIRST_CHAR = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]*(.)", re.S)
_WIDE_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_MAX_RESYNCS: Final = 1000  # syntax errors reported per segment before the rest of the file is given up


class _Reader:
    """Accumulates Documents and Diagnostics over all inputs of one ``load`` call."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.documents: list[Document] = []
        self.diagnostics: list[Diagnostic] = []
        self.files = 0
        self.skipped = 0
        self.seen: set[tuple[int, int]] = set()  # (device, inode) of files read
        self.read_stdin_once = False

    def result(self) -> LoadResult:
        return LoadResult(self.documents, self.diagnostics, self.files, self.skipped)

    def report(
        self,
        check: Check,
        message: str,
        file: str,
        line: int | None = None,
        column: int | None = None,
        *,
        path: str = "",
        resource: ResourceRef | None = None,
        hint: str = "",
    ) -> None:
        self.diagnostics.append(
            check(message, file=file, line=line, column=column, path=path, resource=resource, hint=hint)
        )

    # ---- paths

    def read_stdin(self, stream: BinaryIO | None) -> None:
        if stream is None:  # a daemon, or a process started with stdin closed
            self.report(UNREADABLE, "cannot read <stdin>: the process has no standard input", "<stdin>")
            return
        isatty = getattr(stream, "isatty", None)
        if callable(isatty) and isatty():
            raise UsageError(
                "refusing to read manifests from an interactive terminal; pipe them in or name files"
            )
        if self.read_stdin_once:
            return  # "-" twice names the same input once
        self.read_stdin_once = True
        data = self.read_stream(stream, "<stdin>")
        if data is not None:
            self.files += 1
            self.parse(_Source("<stdin>", data=data), data, strict_json=False)

    def read_stream(self, stream: BinaryIO, name: str) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            try:
                chunk = stream.read(_STREAM_CHUNK)
            except OSError as error:
                self.report(UNREADABLE, f"cannot read: {error.strerror or error}", name)
                return None
            if not chunk:
                break
            total += len(chunk)
            if total > self.max_bytes:
                self.report(
                    TOO_LARGE,
                    f"input is larger than {_size(self.max_bytes)}; refusing to read it",
                    name,
                    1,
                    hint="split the input into smaller files",
                )
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def read_path(self, text: str) -> None:
        try:
            st = os.stat(text)
        except OSError as error:
            self.unreadable(text, error)
            return
        if stat.S_ISDIR(st.st_mode):
            self.read_directory(text)
        elif stat.S_ISREG(st.st_mode):
            self.read_file(text, st)
        else:
            self.read_special(text)

    def unreadable(self, text: str, error: OSError) -> None:
        reason = error.strerror or str(error)
        if isinstance(error, FileNotFoundError) and os.path.islink(text):
            reason = "broken symbolic link"
        self.report(UNREADABLE, f"cannot read {text}: {reason}", text)

    def read_directory(self, root: str) -> None:
        found = 0
        for path in self.walk(root, set()):
            found += 1
            self.read_path(path)
        if found == 0:
            self.report(NO_MANIFESTS, f"directory {root} holds no {', '.join(MANIFEST_SUFFIXES)} files", root)

    def walk(self, directory: str, visited: set[str]) -> Iterator[str]:
        """Manifest files under ``directory`` in sorted order; dot-entries skipped, symlink loops cut."""
        real = os.path.realpath(directory)
        if real in visited:
            return
        visited.add(real)
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as error:
            self.unreadable(directory, error)
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                yield from self.walk(entry.path, visited)
            elif entry.name.lower().endswith(MANIFEST_SUFFIXES):
                yield entry.path

    def read_special(self, text: str) -> None:
        """A pipe or device named on the command line, e.g. ``<(helm template ...)``."""
        try:
            with open(text, "rb") as stream:
                data = self.read_stream(stream, text)
        except OSError as error:
            self.unreadable(text, error)
            return
        if data is not None:
            self.files += 1
            self.parse(_Source(text, data=data), data, strict_json=text.lower().endswith(".json"))

    def read_file(self, text: str, st: os.stat_result) -> None:
        identity = (st.st_dev, st.st_ino)
        if identity in self.seen:
            return  # the same file named twice (or reached twice, through a link) is read once
        self.seen.add(identity)
        if st.st_size > self.max_bytes:
            self.report(
                TOO_LARGE,
                f"file is {_size(st.st_size)}, over the {_size(self.max_bytes)} limit; not read",
                text,
                1,
                hint="split the file into smaller files",
            )
            return
        strict_json = text.lower().endswith(".json")
        with contextlib.ExitStack() as opened:
            try:
                stream = opened.enter_context(open(text, "rb"))
                st = os.fstat(stream.fileno())
                if st.st_size >= _MMAP_AT:
                    data: bytes | mmap.mmap = opened.enter_context(
                        mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
                    )
                else:
                    data = stream.read()
            except OSError as error:
                self.unreadable(text, error)
                return
            self.files += 1
            self.parse(
                _Source(text, path=text, stamp=(st.st_size, st.st_mtime_ns)), data, strict_json=strict_json
            )

    # ---- one file's content

    def parse(self, source: _Source, data: bytes | mmap.mmap, *, strict_json: bool) -> None:
        # Small files keep their parsed nodes, so positions for many findings cost nothing more;
        # large ones give them up and re-parse one document when a position is asked for.
        source.keep_nodes = len(data) <= _KEEP_NODES_BYTES
        if not data:
            self.skipped += 1
            return
        if not self.readable_bytes(source.name, data):
            return
        first = _FIRST_CHAR.match(data)
        if first is None:
            self.skipped += 1  # whitespace only
            return
        if strict_json or first.group(1) in (b"{", b"["):
            snapshot = (len(self.documents), len(self.diagnostics), self.skipped)
            if self.parse_json(source, data, strict_json) or strict_json:
                return
            # Not JSON after all (a YAML flow mapping, say): forget the attempt and read it as YAML.
            del self.documents[snapshot[0] :], self.diagnostics[snapshot[1] :]
            self.skipped = snapshot[2]
            source.spans.clear()
            source.is_json = False
        self.parse_yaml(source, data)

    def readable_bytes(self, name: str, data: bytes | mmap.mmap) -> bool:
        for bom, encoding in _WIDE_BOMS:
            if data[: len(bom)] == bom:
                self.report(
                    NOT_UTF8,
                    f"file is {encoding} (byte-order mark at byte offset 0); smi-bridge reads UTF-8 only",
                    name,
                    1,
                    1,
                    hint=f"convert it, e.g. iconv -f {encoding} -t UTF-8",
                )
                return False
        nul = data.find(b"\x00")
        if nul >= 0:
            line, column = _line_column(data, nul)
            self.report(
                BINARY_FILE,
                f"file contains a NUL byte at byte offset {nul} (line {line}); it looks binary, not a manifest",
                name,
                line,
                column,
            )
            return False
        return True

    def parse_json(self, source: _Source, data: bytes | mmap.mmap, strict: bool) -> bool:
        """Parse a JSON value or a stream of concatenated values; False if lenient and it is not JSON."""
        try:
            text = str(data, "utf-8-sig")
        except UnicodeDecodeError as error:
            bom = 3 if data[:3] == codecs.BOM_UTF8 else 0
            self.bad_character(source.name, data, error.start + bom, error.reason, encoding=True)
            return True
        source.is_json = True
        objects = _JsonObjects()
        decoder = json.JSONDecoder(object_pairs_hook=objects)
        pos, line, index = 0, 1, 0
        length = len(text)
        while True:
            start = _skip_json_space(text, pos)
            if start >= length:
                break
            line += text.count("\n", pos, start)
            try:
                obj, end = decoder.raw_decode(text, start)
            except json.JSONDecodeError as error:
                if not strict:
                    return False
                self.report(YAML_SYNTAX, f"invalid JSON: {error.msg}", source.name, error.lineno, error.colno)
                return True
            except RecursionError:
                if not strict:
                    return False
                self.report(TOO_DEEP, f"nesting is deeper than {MAX_DEPTH} levels", source.name, line, 1)
                return True
            line_start = text.rfind("\n", 0, start) + 1
            source.spans[index] = (line_start, end, line)
            self.json_document(source, obj, index, line, objects.repeated)
            objects.repeated = []
            line += text.count("\n", start, end)
            pos = end
            index += 1
        if index == 0:
            self.skipped += 1
        return True

    def json_document(
        self,
        source: _Source,
        obj: Any,
        index: int,
        line: int,
        repeated: list[tuple[dict[str, Any], list[str]]],
    ) -> None:
        if _json_too_deep(obj):
            self.report(TOO_DEEP, f"nesting is deeper than {MAX_DEPTH} levels", source.name, line, 1)
            return
        document = Document(source.name, index, line, obj, _source=source)
        for mapping, keys in repeated:
            where = _path_to(obj, mapping) or ()
            for key in keys:
                found = document.position((*where, key))
                self.report(
                    DUPLICATE_KEY,
                    f"duplicate key {key!r}; the later value is kept",
                    source.name,
                    found[0] if found else line,
                    found[1] if found else None,
                    path=json_path((*where, key)),
                    resource=_resource_of(obj),
                )
        self.accept(document, None)

    def parse_yaml(self, source: _Source, data: bytes | mmap.mmap) -> None:
        """Parse a YAML stream in segments free of bad characters; a broken document ends, not the file.

        libyaml decodes ahead of the parser, so a bad byte would be reported before the documents that
        precede it were returned. Bad characters are therefore found first (cheaply: a byte translation
        for ASCII text, a decode otherwise); the text up to the document holding one is parsed, the bad
        document is reported, and parsing resumes at the next ``---`` line.
        """
        helm = _HelmMarks(data) if data.find(b"# Source:") >= 0 else None
        cursor = _Cursor()
        length = len(data)
        # Aliases need anchors and anchors need "&": without one the documents are trees, built without
        # the memo that alias accounting needs (the common case, and noticeably faster).
        builder = _Builder() if data.find(b"&") >= 0 else _TreeBuilder()
        while True:
            bad = _bad_character(data, cursor.offset)
            _release(data)  # the scans above touched every page
            end = length if bad is None else _last_document_start(data, cursor.offset, bad[0])
            if not self.parse_segment(source, data, cursor, end, builder, helm):
                return
            if bad is None:
                if cursor.index == 0:
                    self.skipped += 1  # a file of comments only
                return
            self.bad_character(source.name, data, bad[0], bad[1], encoding=bad[2])
            cursor.index += 1
            resume = _next_document_start(data, bad[0], length)
            if resume is None:
                return
            cursor.advance(data, resume)

    def parse_segment(
        self,
        source: _Source,
        data: bytes | mmap.mmap,
        cursor: _Cursor,
        end: int,
        builder: _Builder,
        helm: _HelmMarks | None,
    ) -> bool:
        """Parse ``data[cursor.offset:end]``, resuming after syntax errors; False to give up the file.

        The cursor is left where the last parse started (advancing it to ``end`` would cost a pass over
        the text that only a following segment needs; ``_Cursor.advance`` counts from wherever it is).
        """
        resyncs = 0
        while cursor.offset < end:
            whole = cursor.offset == 0 and end == len(data) and isinstance(data, bytes)
            composer = _Composer(data if whole else _ChunkReader(data, cursor.offset, end))
            error: yaml.YAMLError | None = None
            try:
                while composer.check_node():
                    root = composer.get_node()
                    if root is None:
                        break
                    self.yaml_document(source, builder, root, cursor, helm)
                    cursor.index += 1
            except yaml.YAMLError as caught:
                error = caught
            except RecursionError:  # only the pure-Python composer recurses per nesting level
                mark = composer.get_mark()  # where its reader got to: inside the deep part
                self.report(
                    TOO_DEEP,
                    f"nesting is deeper than {MAX_DEPTH} levels",
                    source.name,
                    cursor.line + mark.line,
                    mark.column + 1,
                    hint="this document and the rest of the file were not loaded",
                )
                return False
            finally:
                composer.dispose()
            if error is None:
                break
            if isinstance(error, yaml.reader.ReaderError):
                # Something the scan for bad characters did not predict; nothing after it can be trusted.
                position = cursor.offset + error.position
                self.bad_character(
                    source.name, data, position, error.reason, encoding="UTF-8" in error.reason
                )
                return False
            resume = self.syntax_error(source.name, data, error, cursor, end)
            cursor.index += 1
            resyncs += 1
            if resume is None:
                break
            if resyncs >= _MAX_RESYNCS:
                cursor.advance(data, resume)
                self.report(
                    YAML_SYNTAX,
                    f"{_MAX_RESYNCS} syntax errors in this file; the rest of it was not read",
                    source.name,
                    cursor.line,
                    1,
                )
                return False
            cursor.advance(data, resume)
        return True

    def yaml_document(
        self, source: _Source, builder: _Builder, root: Node, cursor: _Cursor, helm: _HelmMarks | None
    ) -> None:
        mark = root.start_mark
        line = cursor.line + mark.line
        if root.__class__ is ScalarNode and root.tag == _NULL:
            self.skipped += 1  # empty, comment-only, or an explicit null document
            return
        start = cursor.char + mark.index - mark.column
        source.spans[cursor.index] = (start, cursor.char + root.end_mark.index, line)
        if source.keep_nodes:
            source.keep(cursor.index, root, cursor.line)
        builder.reset()
        try:
            obj = builder.build(root, 1)
        except _Refused as refused:
            at = refused.node.start_mark
            self.report(
                refused.check,
                refused.message,
                source.name,
                cursor.line + at.line,
                at.column + 1,
                hint="the document was not loaded",
            )
            return
        finally:
            builder.memo.clear()  # the memo holds nodes and values; let them go with the document
        if builder.problems or builder.duplicates:
            self.node_findings(source.name, builder, root, obj, cursor.line)
        template = helm.template_at(line) if helm is not None else None
        self.accept(Document(source.name, cursor.index, line, obj, template, _source=source), root)

    def node_findings(self, name: str, builder: _Builder, root: Node, obj: Any, base_line: int) -> None:
        """Report unsupported constructs and duplicate keys of a document that was loaded."""
        resource = _resource_of(obj)
        found = [(check, message, node) for check, message, node in builder.problems]
        found += [
            (DUPLICATE_KEY, f"duplicate key {key!r}; the later value (this one) is kept", key_node)
            for key, key_node in builder.duplicates
        ]
        for check, message, node in found:
            at = node.start_mark
            path = _node_path(root, node)
            self.report(
                check,
                message,
                name,
                base_line + at.line,
                at.column + 1,
                path=json_path(path) if path is not None else "",
                resource=resource,
            )

    def accept(self, document: Document, root: Node | None) -> None:
        """Keep an object; flatten a ``kind: List``; refuse lists and scalars."""
        obj = document.obj
        if not isinstance(obj, dict):
            what = (
                f"a list of {len(obj)} items" if isinstance(obj, list) else f"a scalar ({_clip(repr(obj))})"
            )
            _, line, column = document.location()
            self.report(
                NOT_AN_OBJECT,
                f"{'item' if document.item_path else 'document'} is {what}, not a Kubernetes object",
                document.file,
                line,
                column,
                path=document.item_path,
                hint=""
                if document.item_path
                else "several objects are written as documents separated by ---, or as kind: List with items",
            )
            return
        if obj.get("kind") != "List":
            self.documents.append(document)
            return
        items = obj.get("items")
        if items is None:
            return  # an empty List holds nothing
        if not isinstance(items, list):
            line, column = document.position(("items",)) or (document.line, None)
            self.report(
                BAD_LIST,
                f"kind: List has items of type {type(items).__name__}; expected a list of objects",
                document.file,
                line,
                column,
                path=_join_path(document.item_path, "items"),
                resource=_resource_of(obj),
            )
            return
        item_nodes = _items_nodes(root)
        for i, item in enumerate(items):
            item_node = item_nodes[i] if item_nodes is not None and i < len(item_nodes) else None
            if item_node is not None and root is not None:
                line = document.line + item_node.start_mark.line - root.start_mark.line
            else:
                line = (document.position(("items", i)) or (document.line, 0))[0]
            item_document = Document(
                document.file,
                document.index,
                line,
                item,
                document.template,
                _join_path(document.item_path, f"items[{i}]"),
                _source=document._source,
                _prefix=(*document._prefix, "items", i),
            )
            self.accept(item_document, item_node)

    # ---- errors

    def syntax_error(
        self, name: str, data: bytes | mmap.mmap, error: yaml.YAMLError, cursor: _Cursor, end: int
    ) -> int | None:
        """Report a parser error; return the byte offset to resume from (a ``---`` line), or None."""
        problem = str(getattr(error, "problem", None) or error)
        mark = getattr(error, "problem_mark", None)
        context = getattr(error, "context", None)
        context_mark = getattr(error, "context_mark", None)
        line = cursor.line + mark.line if mark is not None else cursor.line
        column = mark.column + 1 if mark is not None else None
        line_start = _line_offset(data, cursor.offset, line - cursor.line)
        # Resume after the start of the broken construct: an unclosed quote may have swallowed "---" lines.
        first = mark
        if context_mark is not None and (mark is None or context_mark.line < mark.line):
            first = context_mark
        after = _line_offset(data, cursor.offset, first.line + 1) if first is not None else line_start
        found = _DOCUMENT_START.search(data, after, end)
        if found is not None:
            resumed = cursor.line + _newlines(data, cursor.offset, found.start())
            hint = f"this document was not loaded; reading resumed at line {resumed}"
        else:
            hint = "this document and the rest of the file were not loaded"
        tab = _indent_tab(_line_text(data, line_start))
        if "maximum nesting depth" in problem:
            self.report(TOO_DEEP, f"nesting is deeper than {MAX_DEPTH} levels", name, line, column, hint=hint)
        elif tab is not None and ("tab" in problem or "cannot start any token" in problem):
            self.report(
                TAB_INDENT,
                f"line {line} is indented with a tab character; YAML indentation must use spaces",
                name,
                line,
                tab + 1,
                hint=f"replace the tabs at the start of the line with spaces; {hint}",
            )
        else:
            message = f"YAML syntax error: {problem}"
            if context and context_mark is not None:
                where = f"line {cursor.line + context_mark.line}, column {context_mark.column + 1}"
                message += f" ({context} at {where})"
            elif context:
                message += f" ({context})"
            self.report(YAML_SYNTAX, message, name, line, column, hint=hint)
        return found.start() if found else None

    def bad_character(
        self, name: str, data: bytes | mmap.mmap, position: int, reason: str, *, encoding: bool
    ) -> None:
        line, column = _line_column(data, position)
        if encoding:
            byte = bytes(data[position : position + 1])
            self.report(
                NOT_UTF8,
                f"byte 0x{byte.hex() or '??'} at byte offset {position} (line {line}) is not valid UTF-8 "
                f"({reason}); this document was not loaded",
                name,
                line,
                column,
                hint="save the file as UTF-8",
            )
        else:
            self.report(
                YAML_SYNTAX,
                f"{reason} at byte offset {position} (line {line}) is not allowed in YAML; "
                "this document was not loaded",
                name,
                line,
                column,
            )


@dataclass
class _Cursor:
    """Where parsing stands in a file: byte offset, and the line, character and document index there."""

    offset: int = 0
    line: int = 1
    char: int = 0
    index: int = 0

    def advance(self, data: bytes | mmap.mmap, offset: int) -> None:
        if offset <= self.offset:
            return
        chunk = bytes(data[self.offset : offset])
        self.line += chunk.count(b"\n")
        self.char += len(chunk) if chunk.isascii() else len(chunk.decode("utf-8", errors="replace"))
        self.offset = offset


class _JsonObjects:
    """``object_pairs_hook`` for ``json``: plain dicts, remembering keys seen twice (``json`` keeps the last)."""

    def __init__(self) -> None:
        self.repeated: list[tuple[dict[str, Any], list[str]]] = []

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            twice: list[str] = []
            for key, _ in pairs:
                if key in seen and key not in twice:
                    twice.append(key)
                seen.add(key)
            self.repeated.append((obj, twice))
        return obj


def _json_too_deep(obj: Any) -> bool:
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _skip_json_space(text: str, pos: int) -> int:
    length = len(text)
    while pos < length and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _items_nodes(root: Node | None) -> list[Node] | None:
    if not isinstance(root, MappingNode):
        return None
    found = _lookup(root, "items", 0)
    return list(found.value) if isinstance(found, SequenceNode) else None


def _join_path(prefix: str, step: str) -> str:
    return f"{prefix}.{step}" if prefix else step


class _HelmMarks:
    """Lines of ``# Source: <template>`` comments and of ``---`` separators in a Helm render."""

    def __init__(self, data: bytes | mmap.mmap) -> None:
        self.lines: list[int] = []
        self.templates: list[str | None] = []  # None for a "---" line
        line, last = 1, 0
        for match in _HELM_MARKS.finditer(data):
            line += _newlines(data, last, match.start())
            last = match.start()
            self.lines.append(line)
            name = match.group(2)
            self.templates.append(None if match.group(1) else name.decode("utf-8", errors="replace"))

    def template_at(self, line: int) -> str | None:
        """The template named by the last ``# Source:`` above ``line`` with no ``---`` in between."""
        at = bisect.bisect_left(self.lines, line)
        return self.templates[at - 1] if at > 0 else None


_ALLOWED_ASCII: Final = bytes([9, 10, 13, *range(0x20, 0x7F), *range(0x80, 0x100)])
_CONTROL_BYTE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]")


def _bad_character(data: bytes | mmap.mmap, start: int) -> tuple[int, str, bool] | None:
    """The first byte libyaml would refuse: offset, reason, and whether it is an encoding error."""
    if isinstance(data, bytes):
        rest = data[start:] if start else data
        # bytes.translate deletes the allowed bytes in C: an empty result is the fast "all clean".
        if rest.isascii() and not rest.translate(None, _ALLOWED_ASCII):
            return None
    decoder = codecs.getincrementaldecoder("utf-8")()
    pos = start
    length = len(data)
    while pos < length:
        chunk = bytes(data[pos : pos + _STREAM_CHUNK])
        last = pos + len(chunk) >= length
        if chunk.isascii() and not decoder.getstate()[0]:
            if chunk.translate(None, _ALLOWED_ASCII):
                found = _CONTROL_BYTE.search(chunk)
                if found is not None:
                    return pos + found.start(), f"control character U+{chunk[found.start()]:04X}", False
        else:
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(chunk, final=last)
            except UnicodeDecodeError as error:
                return pos - pending + error.start, error.reason, True
            control = _CONTROL_CHAR.search(text)
            if control is not None:
                offset = pos - pending + len(text[: control.start()].encode("utf-8"))
                return offset, f"control character U+{ord(control.group()):04X}", False
        pos += len(chunk)
    return None


def _last_document_start(data: bytes | mmap.mmap, start: int, position: int) -> int:
    """Offset of the last ``---`` line after ``start`` and at or before ``position`` (else ``start``)."""
    found = start
    for match in _DOCUMENT_START.finditer(data, start + 1, position + 1):
        found = match.start()
    return found


def _next_document_start(data: bytes | mmap.mmap, position: int, end: int) -> int | None:
    line_end = data.find(b"\n", position)
    if line_end < 0:
        return None
    found = _DOCUMENT_START.search(data, line_end + 1, end)
    return found.start() if found else None


def _line_column(data: bytes | mmap.mmap, offset: int) -> tuple[int, int]:
    """1-based line and byte column of a byte offset."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    return _newlines(data, 0, offset) + 1, offset - line_start + 1


def _newlines(data: bytes | mmap.mmap, start: int, end: int) -> int:
    if isinstance(data, bytes):
        return data.count(b"\n", start, end)
    view = memoryview(data)
    return sum(
        bytes(view[at : min(end, at + _STREAM_CHUNK)]).count(b"\n") for at in range(start, end, _STREAM_CHUNK)
    )


def _line_offset(data: bytes | mmap.mmap, start: int, lines: int) -> int:
    """Byte offset of the line ``lines`` lines below the one starting at ``start``."""
    pos = start
    for _ in range(lines):
        found = data.find(b"\n", pos)
        if found < 0:
            return len(data)
        pos = found + 1
    return pos


def _line_text(data: bytes | mmap.mmap, start: int) -> bytes:
    end = data.find(b"\n", start)
    return bytes(data[start : end if end >= 0 else len(data)])


def _indent_tab(line: bytes) -> int | None:
    """Column (0-based) of a tab in the line's leading whitespace, or None."""
    indent = len(line) - len(line.lstrip(b" \t"))
    tab = line.find(b"\t", 0, indent)
    return tab if tab >= 0 else None


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"
