"""Loading hostile or broken input: every case ends in Diagnostics that name file, line and column.

Fixture files under ``fixtures/load/`` are named after their case; the large and deep inputs are
generated in ``tmp_path``. A property test feeds random bytes and mutated manifests to ``load_bytes``.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.corpus import corpus_documents
from smi_bridge import load as load_module
from smi_bridge.diagnostics import Diagnostic, Severity
from smi_bridge.load import (
    ALIAS_EXPANSION,
    BAD_LIST,
    BINARY_FILE,
    DUPLICATE_KEY,
    MAX_DEPTH,
    NOT_AN_OBJECT,
    NOT_UTF8,
    TAB_INDENT,
    TOO_DEEP,
    TOO_LARGE,
    UNREADABLE,
    UNSUPPORTED,
    YAML_SYNTAX,
    LoadResult,
    load,
    load_bytes,
)
from tests.conftest import FIXTURES, REPO

LOAD_FIXTURES = FIXTURES / "load"


def names(result: LoadResult) -> list[str]:
    return [d.obj["metadata"]["name"] for d in result.documents]


def only(result: LoadResult) -> Diagnostic:
    [finding] = result.diagnostics
    return finding


def where(finding: Diagnostic) -> tuple[str, int | None, int | None]:
    return (finding.code, finding.line, finding.column)


# ---- fixture files, one per case


def test_tabs_used_for_indentation_are_named_as_such_and_later_documents_still_load() -> None:
    result = load([LOAD_FIXTURES / "tabs.yaml"])
    finding = only(result)
    assert where(finding) == (TAB_INDENT.code, 6, 1)
    assert "tab" in finding.message and "spaces" in finding.message
    assert finding.file == str(LOAD_FIXTURES / "tabs.yaml")
    assert names(result) == ["after-the-tabs"]


def test_tabs_after_spaces_in_the_indentation_are_found_too() -> None:
    finding = only(load_bytes(b"spec:\n  service: x\n  \tbackends: []\n"))
    assert where(finding) == (TAB_INDENT.code, 3, 3)


def test_a_tab_between_a_key_and_its_value_is_fine() -> None:
    assert load_bytes(b"kind:\tService\n").documents[0].obj == {"kind": "Service"}


def test_duplicate_keys_are_a_warning_with_the_path_and_the_later_value_wins() -> None:
    result = load([LOAD_FIXTURES / "duplicate_keys.yaml"])
    finding = only(result)
    assert where(finding) == (DUPLICATE_KEY.code, 15, 3)
    assert (finding.severity, finding.path) == (Severity.WARNING, "spec.service")
    assert (finding.resource.kind, finding.resource.namespace, finding.resource.name) == (
        "TrafficSplit",
        "shop",
        "web",
    )
    assert result.documents[0].obj["spec"]["service"] == "web-apex"


def test_duplicate_keys_inside_list_items_carry_the_item_path() -> None:
    finding = only(load_bytes(b"kind: A\nspec:\n  backends:\n  - service: a\n    weight: 1\n    weight: 2\n"))
    assert (finding.code, finding.path, finding.line) == (DUPLICATE_KEY.code, "spec.backends[0].weight", 6)


def test_a_document_that_is_a_list_is_refused() -> None:
    result = load([LOAD_FIXTURES / "list_document.yaml"])
    finding = only(result)
    assert where(finding) == (NOT_AN_OBJECT.code, 1, 1)
    assert "list of 2 items" in finding.message
    assert result.documents == []


def test_a_document_that_is_a_scalar_is_refused_and_shows_the_value() -> None:
    finding = only(load([LOAD_FIXTURES / "scalar_document.yaml"]))
    assert where(finding) == (NOT_AN_OBJECT.code, 1, 1)
    assert "apiVersion split.smi-spec.io/v1alpha4" in finding.message


def test_non_utf8_bytes_are_named_by_offset_and_line_and_only_their_document_is_lost() -> None:
    path = LOAD_FIXTURES / "non_utf8.yaml"
    offset = path.read_bytes().index(b"\xe9")
    result = load([path])
    finding = only(result)
    assert where(finding) == (NOT_UTF8.code, 9, 12)
    assert f"byte offset {offset}" in finding.message and "line 9" in finding.message
    assert names(result) == ["first", "last"]
    assert [d.index for d in result.documents] == [0, 2]


def test_a_utf16_file_is_refused_as_not_utf8() -> None:
    finding = only(load([LOAD_FIXTURES / "utf16.yaml"]))
    assert where(finding) == (NOT_UTF8.code, 1, 1)
    assert "UTF-16" in finding.message


def test_a_file_with_nul_bytes_is_refused_as_binary() -> None:
    path = LOAD_FIXTURES / "binary.yaml"
    result = load([path])
    finding = only(result)
    assert where(finding) == (BINARY_FILE.code, 6, 7)
    assert f"byte offset {path.read_bytes().index(0)}" in finding.message
    assert result.documents == []


def test_a_control_character_is_refused_with_its_code_point() -> None:
    finding = only(load([LOAD_FIXTURES / "control_character.yaml"]))
    assert where(finding) == (YAML_SYNTAX.code, 5, 16)
    assert "U+0007" in finding.message


def test_a_syntax_error_names_the_parser_problem_and_loading_resumes_at_the_next_document() -> None:
    result = load([LOAD_FIXTURES / "syntax_error.yaml"])
    finding = only(result)
    assert where(finding) == (YAML_SYNTAX.code, 18, 1)
    assert "did not find expected ',' or ']'" in finding.message and "line 17" in finding.message
    assert "resumed at line 18" in finding.hint
    assert names(result) == ["good-before", "good-after"]
    assert [d.index for d in result.documents] == [0, 2]


def test_an_unclosed_quote_that_swallows_a_separator_loses_only_its_own_document() -> None:
    result = load([LOAD_FIXTURES / "unclosed_quote.yaml"])
    assert where(only(result)) == (YAML_SYNTAX.code, 7, 1)
    assert names(result) == ["survivor"]


def test_an_undefined_alias_is_a_syntax_error() -> None:
    result = load_bytes(b"kind: A\nspec: *nowhere\n---\nkind: B\n")
    assert where(only(result)) == (YAML_SYNTAX.code, 2, 7)
    assert [d.obj["kind"] for d in result.documents] == ["B"]


def test_a_billion_laughs_document_is_refused_and_the_next_document_loads() -> None:
    result = load([LOAD_FIXTURES / "alias_bomb.yaml"])
    finding = only(result)
    assert finding.code == ALIAS_EXPANSION.code
    assert finding.file and finding.line and finding.column
    assert "alias bomb" in finding.message
    assert names(result) == ["after-the-bomb"]


def test_a_generated_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["kind: ConfigMap", "data:", '  l0: &l0 ["' + "x" * 10 + '"]']
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 20)}]" for i in range(1, 30)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert only(load([path])).code == ALIAS_EXPANSION.code


def test_merging_one_large_mapping_many_times_is_refused_as_an_expansion() -> None:
    # Each merge copies every key of the base into a new mapping: 1,000 merges of 2,000 keys would
    # be two million entries from 30 kB of text.
    lines = ["kind: A", "base: &base {" + ", ".join(f"k{i}: {i}" for i in range(2000)) + "}"]
    lines += [f"copy{i}: {{<<: *base}}" for i in range(1000)]
    finding = only(load_bytes(("\n".join(lines) + "\n").encode()))
    assert finding.code == ALIAS_EXPANSION.code


def test_aliases_within_the_limit_are_expanded() -> None:
    text = b"kind: A\nbase: &b {x: 1}\nspec:\n  one: *b\n  two: *b\n"
    [doc] = load_bytes(text).documents
    assert doc.obj["spec"] == {"one": {"x": 1}, "two": {"x": 1}}


def test_a_recursive_alias_is_refused() -> None:
    finding = only(load([LOAD_FIXTURES / "recursive_alias.yaml"]))
    assert where(finding) == (ALIAS_EXPANSION.code, 5, 7)
    assert "contains it" in finding.message


def test_aliases_that_nest_too_deep_are_refused() -> None:
    lines = ["kind: A", "l0: &l0 [x]"] + [f"l{i}: &l{i} [*l{i - 1}]" for i in range(1, MAX_DEPTH + 5)]
    assert only(load_bytes(("\n".join(lines) + "\n").encode())).code == TOO_DEEP.code


def test_nesting_a_little_too_deep_is_refused_at_the_offending_collection() -> None:
    finding = only(load([LOAD_FIXTURES / "deep_nesting.yaml"]))
    assert finding.code == TOO_DEEP.code
    assert (finding.line, finding.column) == (6, 9 + MAX_DEPTH - 2)


def test_nesting_to_exactly_the_limit_is_accepted() -> None:
    text = "kind: A\nx: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    assert load_bytes(text.encode()).diagnostics == []


@pytest.mark.parametrize(
    ("make", "levels"),
    [
        (lambda n: "[" * n + "]" * n, 10_000),
        (lambda n: "{a: " * n + "1" + "}" * n, 10_000),
        (lambda n: "- " * n + "x\n", 10_000),
        # Block mappings need one more space per level: 10,000 levels would be a 50 MB file.
        (lambda n: "".join(" " * i + "a:\n" for i in range(n)) + " " * n + "b\n", 2_000),
    ],
    ids=["flow-sequences", "flow-mappings", "compact-block-sequences", "block-mappings"],
)
def test_thousands_of_levels_of_nesting_end_in_a_finding_not_a_crash(
    tmp_path: Path, make: Callable[[int], str], levels: int
) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("kind: A\n---\n" + make(levels) + "\n---\nkind: B\n")
    result = load([path])
    finding = only(result)
    assert finding.code == TOO_DEEP.code
    assert finding.file == str(path) and finding.line and finding.line >= 3
    assert [d.obj["kind"] for d in result.documents] == ["A", "B"]


def test_ten_thousand_levels_of_json_nesting_end_in_a_finding() -> None:
    finding = only(load_bytes(b"[" * 10_000 + b"]" * 10_000, "deep.json"))
    assert where(finding) == (TOO_DEEP.code, 1, 1)
    deep_object = ('{"a": ' * 150 + "1" + "}" * 150).encode()
    assert only(load_bytes(deep_object, "deep.json")).code == TOO_DEEP.code


def test_unsupported_tags_and_complex_keys_are_reported_and_the_rest_is_kept() -> None:
    result = load([LOAD_FIXTURES / "unsupported_tags.yaml"])
    found = [(d.code, d.line, d.column, d.path) for d in result.diagnostics]
    assert found == [
        (UNSUPPORTED.code, 7, 9, "data.port"),
        (UNSUPPORTED.code, 8, 8, "data.ref"),
        (UNSUPPORTED.code, 9, 8, "data.set"),
        (UNSUPPORTED.code, 11, 5, "data"),
    ]
    data = result.documents[0].obj["data"]
    assert data == {"port": "eighty", "ref": "SomeOtherThing", "set": {"a": None, "b": None}, "clock": "1:30"}
    assert result.documents[0].obj["metadata"]["creationTimestamp"] == "2021-01-19T10:00:00Z"


@pytest.mark.parametrize(
    "value", ["!!float", "!!float ''", "!!int ''", "!!int 0x", "!!bool maybe", "!!int 1e999"]
)
def test_an_explicit_tag_that_does_not_fit_its_value_is_reported_and_the_text_kept(value: str) -> None:
    result = load_bytes(f"kind: A\nx: {value}\n".encode())
    assert where(only(result)) == (UNSUPPORTED.code, 2, 4)
    assert isinstance(result.documents[0].obj["x"], str)


def test_a_list_whose_items_are_not_a_list_is_refused() -> None:
    finding = only(load_bytes(b"apiVersion: v1\nkind: List\nitems:\n  a: b\n"))
    assert where(finding) == (BAD_LIST.code, 4, 3)
    assert finding.path == "items"


def test_invalid_json_in_a_json_file_is_reported_at_the_json_position() -> None:
    result = load([LOAD_FIXTURES / "json_trailing_comma.json"])
    finding = only(result)
    assert where(finding) == (YAML_SYNTAX.code, 4, 30)
    assert "invalid JSON" in finding.message
    assert result.documents == []


def test_non_utf8_json_is_named_by_offset() -> None:
    finding = only(load_bytes(b'{"kind": "caf\xe9"}', "x.json"))
    assert where(finding) == (NOT_UTF8.code, 1, 14)


def test_a_json_document_that_is_a_list_is_refused() -> None:
    assert only(load_bytes(b"[1, 2]", "x.json")).code == NOT_AN_OBJECT.code


# ---- paths


def test_a_missing_path_is_reported_as_unreadable(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    finding = only(load([missing]))
    assert (finding.code, finding.file) == (UNREADABLE.code, str(missing))
    assert "No such file" in finding.message


def test_a_path_through_a_file_is_reported_as_unreadable(tmp_path: Path) -> None:
    (tmp_path / "file.yaml").write_text("kind: A\n")
    finding = only(load([tmp_path / "file.yaml" / "child.yaml"]))
    assert finding.code == UNREADABLE.code
    assert "Not a directory" in finding.message


def test_a_broken_symlink_in_a_directory_is_reported(tmp_path: Path) -> None:
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "gone.yaml")
    (tmp_path / "ok.yaml").write_text("kind: A\n")
    result = load([tmp_path])
    finding = only(result)
    assert (finding.code, finding.file) == (UNREADABLE.code, str(tmp_path / "dangling.yaml"))
    assert "broken symbolic link" in finding.message
    assert [d.obj for d in result.documents] == [{"kind": "A"}]


def test_permission_denied_is_reported_as_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("kind: A\n")
    secret.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make the open fail the way it fails for everyone else
        real_open = builtins.open

        def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
            if os.fspath(file) == str(secret):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(secret))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded_open)
    result = load([secret])
    finding = only(result)
    assert (finding.code, finding.file) == (UNREADABLE.code, str(secret))
    assert finding.message == f"cannot read {secret}: Permission denied"
    assert (result.files, result.documents) == (0, [])


def test_a_file_over_the_size_limit_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"kind: A\n" * 200)
    result = load([path], max_bytes=1000)
    finding = only(result)
    assert where(finding) == (TOO_LARGE.code, 1, None)
    assert "1.6 KiB" in finding.message
    assert (result.documents, result.files) == ([], 0)


def test_stdin_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"kind: A\n" * 200)
    with path.open("rb") as stream:
        result = load(["-"], stdin=stream, max_bytes=1000)
    assert (only(result).code, result.documents) == (TOO_LARGE.code, [])


def test_a_100_mb_stream_of_documents_loads_in_bounded_memory(tmp_path: Path) -> None:
    applied = json.dumps({"kind": "TrafficSplit", "metadata": {"name": "web"}, "spec": {"note": "x" * 1500}})
    document = (
        "---\napiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata:\n  name: web-{i}\n"
        "  namespace: shop\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: |\n"
        f"      {applied}\nspec:\n  service: web\n  backends:\n  - service: web-v1\n    weight: 90\n"
        "  - service: web-v2\n    weight: 10\n"
    )
    path = tmp_path / "large.yaml"
    count = 0
    with path.open("w") as stream:
        while stream.tell() < 100 * 1024 * 1024:
            stream.write(document.replace("{i}", str(count)))
            count += 1
    code = (
        "import resource, sys\n"
        "from smi_bridge.load import load\n"
        "r = load([sys.argv[1]])\n"
        "last = r.documents[-1]\n"
        "line, column = last.position(('spec', 'backends', 1, 'weight'))\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "print(len(r.documents), len(r.diagnostics), last.line, line, column, peak)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, cwd=REPO, timeout=300, check=True
    )
    loaded, findings, last_line, line, column, peak = map(int, done.stdout.split())
    first_line_of_last = (count - 1) * document.count("\n") + 1  # its "---"
    assert (loaded, findings) == (count, 0)
    assert (last_line, line, column) == (first_line_of_last + 1, first_line_of_last + 15, 13)
    assert peak < 1024**3


# ---- the pure-Python parser, used where libyaml is missing or too old


@pytest.fixture
def python_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load_module, "_Composer", load_module._PyComposer)


@pytest.mark.usefixtures("python_parser")
def test_the_fallback_parser_reads_the_same_documents_and_positions() -> None:
    text = b"".join(b"---\n" + doc.text.encode() for doc in corpus_documents(60, seed=2))
    fallback = load_bytes(text, "c.yaml")
    assert fallback.diagnostics == []
    assert len(fallback.documents) == 60
    assert fallback.documents[-1].position(("metadata", "name")) is not None


@pytest.mark.usefixtures("python_parser")
def test_the_fallback_parser_turns_deep_nesting_into_a_finding() -> None:
    # PyYAML's pure-Python scanner is quadratic in flow depth: 2,000 levels already overflow its composer.
    result = load_bytes(b"kind: A\n---\n" + b"[" * 2_000 + b"]" * 2_000 + b"\n")
    finding = only(result)
    assert (finding.code, finding.line) == (TOO_DEEP.code, 3)
    assert [d.obj for d in result.documents] == [{"kind": "A"}]


@pytest.mark.usefixtures("python_parser")
def test_the_fallback_parser_resumes_after_a_syntax_error() -> None:
    result = load([LOAD_FIXTURES / "syntax_error.yaml"])
    assert names(result) == ["good-before", "good-after"]
    assert only(result).code == YAML_SYNTAX.code


# ---- properties: nothing but Diagnostics come out, and each one points somewhere


def _assert_orderly(result: LoadResult, file: str) -> None:
    for finding in result.diagnostics:
        assert finding.file == file
        assert finding.line is not None and finding.line >= 1, finding
        assert finding.column is None or finding.column >= 1, finding
        assert finding.message
    for document in result.documents:
        assert isinstance(document.obj, dict)
        location = document.location(("spec",))
        assert location[0] == file and location[1] >= 1


SEEDS = [doc.text.encode() for doc in corpus_documents(40, seed=11)]
NOISE = [b"\t", b":", b"- ", b"[", b"]", b"{", b"}", b"&a ", b"*a", b"'", b'"', b"\n---\n", b"\x00", b"\xff"]
NOISE += [
    b"\xc3",
    b"!!int ",
    b"<<: ",
    b"? ",
    b"|\n",
    b"#",
    b"\r\n",
    b"%YAML 1.1\n",
    b"\x07",
    b"...\n",
    b"\xef\xbb\xbf",
]


@st.composite
def mutated_manifests(draw: st.DrawFn) -> bytes:
    data = bytearray(b"---\n".join(draw(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=3))))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.sampled_from(NOISE) | st.binary(min_size=1, max_size=4))
        if action == "insert":
            data[at:at] = piece
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            data[at : at + len(piece)] = piece
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_produce_only_diagnostics(data: bytes) -> None:
    _assert_orderly(load_bytes(data, "random.yaml"), "random.yaml")
    _assert_orderly(load_bytes(data, "random.json"), "random.json")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_manifests())
def test_mutated_manifests_produce_only_documents_and_diagnostics(data: bytes) -> None:
    _assert_orderly(load_bytes(data, "mutated.yaml"), "mutated.yaml")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES)
def test_any_json_value_round_trips_or_is_refused_as_not_an_object(value: object) -> None:
    result = load_bytes(json.dumps(value).encode(), "value.json")
    if isinstance(value, dict):
        assert [d.obj for d in result.documents] == [value] and result.diagnostics == []
    else:
        assert only(result).code == NOT_AN_OBJECT.code
