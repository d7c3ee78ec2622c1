"""Loading well-formed input: documents, exact positions, Lists, Helm renders, directories, stdin, JSON."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from benchmarks.corpus import corpus_documents, write_corpus
from smi_bridge.diagnostics import Severity
from smi_bridge.load import (
    CHECKS,
    NO_MANIFESTS,
    Document,
    UsageError,
    json_path,
    load,
    load_bytes,
)
from tests.conftest import ANCHORS, FIXTURES, REPO

LOAD_FIXTURES = FIXTURES / "load"


def spot(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based (line, column) of the ``occurrence``-th appearance of ``needle`` in ``text``."""
    at = -1
    for _ in range(occurrence):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


MULTI = """\
# leading comment
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata:
  name: first
spec:
  service: web
  backends:
  - service: web-v1
    weight: 11
---
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata:
  name: second
  "quoted key": yes
spec:
  service: api
  backends:
    - service: api-v1
      weight: 22
    - {service: api-v2, weight: 33}
  matches: [{kind: HTTPRouteGroup, name: "ab-test"}]
  note: |
    literal text
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: third}
spec:
  matches:
  - name: metrics
    headers:
    - user-agent: ".*Firefox.*"
"""


def test_each_document_of_a_stream_keeps_its_index_and_start_line() -> None:
    result = load_bytes(MULTI.encode(), "multi.yaml")
    assert result.diagnostics == []
    assert [(d.index, d.line, d.obj["metadata"]["name"]) for d in result.documents] == [
        (0, 2, "first"),
        (1, 12, "second"),
        (2, 27, "third"),
    ]
    assert all(d.file == "multi.yaml" and d.template is None and d.item_path == "" for d in result.documents)


@pytest.mark.parametrize(
    ("document", "path", "needle", "occurrence"),
    [
        (0, ("spec", "backends", 0, "weight"), "11", 1),
        (0, ("metadata", "name"), "first", 1),
        (0, (), "apiVersion", 1),
        (1, ("spec", "backends", 0, "weight"), "22", 1),
        (1, ("spec", "backends", 1), "{service: api-v2", 1),
        (1, ("spec", "backends", 1, "weight"), "33", 1),
        (1, ("spec", "matches", 0, "name"), '"ab-test"', 1),
        (1, ("metadata", "quoted key"), "yes", 1),
        (1, ("spec", "note"), "|", 1),
        (2, ("metadata", "name"), "third", 1),
        (2, ("spec", "matches", 0, "headers", 0, "user-agent"), '".*Firefox', 1),
    ],
)
def test_position_of_a_nested_value_is_exact_in_any_document(
    document: int, path: tuple[str | int, ...], needle: str, occurrence: int
) -> None:
    doc = load_bytes(MULTI.encode(), "multi.yaml").documents[document]
    assert doc.position(path) == spot(MULTI, needle, occurrence)


def test_position_of_an_absent_path_is_none_and_location_falls_back_to_the_nearest_parent() -> None:
    doc = load_bytes(MULTI.encode(), "multi.yaml").documents[0]
    assert doc.position(("spec", "backends", 5)) is None
    assert doc.position(("spec", "missing")) is None
    assert doc.position(("spec", "service", "deeper")) is None
    assert doc.location(("spec", "backends", 0, "port")) == ("multi.yaml", *spot(MULTI, "service: web-v1"))
    assert doc.location(("nothing",)) == ("multi.yaml", *spot(MULTI, "apiVersion"))


def test_a_document_built_by_hand_locates_at_its_own_line() -> None:
    doc = Document("hand.yaml", 0, 7, {"kind": "Service"})
    assert doc.position(("kind",)) is None
    assert doc.location(("kind",)) == ("hand.yaml", 7, None)


def test_positions_are_found_from_a_file_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "multi.yaml"
    path.write_text(MULTI)
    result = load([path])
    assert result.files == 1
    assert result.documents[1].file == str(path)
    assert result.documents[1].position(("spec", "backends", 1, "weight")) == spot(MULTI, "33")
    assert result.documents[2].location(("spec", "matches", 0, "name")) == (
        str(path),
        *spot(MULTI, "metrics"),
    )


def test_positions_describe_the_file_as_it_was_loaded_even_if_it_changes_later(tmp_path: Path) -> None:
    path = tmp_path / "multi.yaml"
    path.write_text(MULTI)
    doc = load([path]).documents[1]
    before = doc.position(("spec", "service"))
    path.write_text("\n\n\n" + MULTI + "# grown\n")
    assert before is not None
    assert doc.position(("spec", "service")) == before


def test_positions_count_characters_not_bytes_after_non_ascii_text() -> None:
    text = "metadata:\n  name: café-ünïcödé\n---\nmetadata:\n  annotations: {note: 'naïve'}\n  name: x\n"
    docs = load_bytes(text.encode(), "u.yaml").documents
    assert docs[1].position(("metadata", "name")) == spot(text, "x\n")
    assert docs[1].position(("metadata", "annotations", "note")) == spot(text, "'naïve'")


def test_duplicate_keys_point_at_the_value_that_was_kept() -> None:
    text = "kind: A\nspec:\n  service: one\n  service: two\n"
    doc = load_bytes(text.encode(), "d.yaml").documents[0]
    assert doc.obj["spec"]["service"] == "two"
    assert doc.position(("spec", "service")) == spot(text, "two")


def test_kind_list_items_become_documents_with_item_paths_and_exact_positions() -> None:
    text = (LOAD_FIXTURES / "kind_list.yaml").read_text()
    result = load([LOAD_FIXTURES / "kind_list.yaml"])
    first, second = result.documents
    assert (first.index, first.item_path, first.obj["metadata"]["name"]) == (0, "items[0]", "first")
    assert (second.index, second.item_path, second.obj["kind"]) == (0, "items[1]", "TCPRoute")
    assert first.line == spot(text, "apiVersion: split")[0]
    assert second.line == spot(text, "apiVersion: specs")[0]
    line, column = spot(text, "weight: 1")
    assert first.position(("spec", "backends", 0, "weight")) == (line, column + len("weight: "))
    assert second.position(("spec", "matches", "ports", 1)) == spot(text, "8443")
    [scalar_item] = result.diagnostics
    assert (scalar_item.code, scalar_item.path, scalar_item.line) == (
        "SMB006",
        "items[2]",
        spot(text, "just")[0],
    )


def test_a_list_inside_a_list_is_flattened_with_a_joined_item_path() -> None:
    text = "kind: List\nitems:\n- kind: List\n  items:\n  - kind: Service\n    metadata: {name: inner}\n"
    [doc] = load_bytes(text.encode()).documents
    assert doc.item_path == "items[0].items[0]"
    assert doc.line == 5
    assert doc.position(("metadata", "name")) == spot(text, "inner")


def test_an_empty_list_yields_no_documents_and_no_findings() -> None:
    result = load_bytes(b"apiVersion: v1\nkind: List\nitems: []\n---\napiVersion: v1\nkind: List\n")
    assert (result.documents, result.diagnostics) == ([], [])


def test_helm_source_comments_name_the_template_of_the_following_document() -> None:
    result = load([LOAD_FIXTURES / "helm_render.yaml"])
    assert [(d.obj["kind"], d.template) for d in result.documents] == [
        ("ServiceAccount", "bookstore/templates/serviceaccount.yaml"),
        ("TrafficSplit", "bookstore/templates/split.yaml"),
        ("Service", None),
    ]
    assert result.skipped_documents == 1  # the disabled template rendered to nothing


def test_helm_template_names_carry_over_to_list_items() -> None:
    text = b"---\n# Source: chart/templates/all.yaml\nkind: List\nitems:\n- kind: Service\n- kind: ServiceAccount\n"
    assert {d.template for d in load_bytes(text).documents} == {"chart/templates/all.yaml"}


def test_empty_and_comment_only_documents_are_skipped_and_counted() -> None:
    result = load([LOAD_FIXTURES / "empty_documents.yaml", LOAD_FIXTURES / "comment_only.yaml"])
    assert [d.obj["metadata"]["name"] for d in result.documents] == ["only-object"]
    assert result.documents[0].index == 2
    assert result.skipped_documents == 4
    assert result.diagnostics == []
    assert result.files == 2


def test_an_empty_file_counts_as_one_skipped_document(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_bytes(b"")
    (tmp_path / "blank.yaml").write_bytes(b"\n   \n")
    result = load([tmp_path])
    assert (result.files, result.skipped_documents, result.documents, result.diagnostics) == (2, 2, [], [])


def test_a_directory_is_read_recursively_in_sorted_order_skipping_dot_entries(tmp_path: Path) -> None:
    def put(relative: str, name: str) -> None:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n")

    put("b.yaml", "b")
    put("a.yml", "a")
    put("sub/c.json", "not-json-but-yaml")
    put("sub/deeper/d.YAML", "d")
    put("notes.txt", "ignored-suffix")
    put(".hidden.yaml", "ignored-dotfile")
    put(".git/config.yaml", "ignored-dot-directory")
    put("sub/.cache/e.yaml", "ignored-nested-dot-directory")
    (tmp_path / "sub" / "c.json").write_text('{"kind": "Service", "metadata": {"name": "c"}}')
    result = load([tmp_path])
    assert [d.obj["metadata"]["name"] for d in result.documents] == ["a", "b", "c", "d"]
    assert result.documents[0].file == os.path.join(str(tmp_path), "a.yml")
    assert result.files == 4
    assert result.diagnostics == []


def test_an_explicitly_named_file_is_read_whatever_its_name(tmp_path: Path) -> None:
    path = tmp_path / ".manifest.txt"
    path.write_text("kind: Service\n")
    assert [d.obj for d in load([path]).documents] == [{"kind": "Service"}]


def test_a_directory_without_manifests_is_reported_as_information(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# nothing to see\n")
    (tmp_path / ".hidden.yaml").write_text("kind: Service\n")
    result = load([tmp_path])
    [finding] = result.diagnostics
    assert (finding.code, finding.severity, finding.file) == (NO_MANIFESTS.code, Severity.INFO, str(tmp_path))
    assert result.files == 0


def test_a_symlinked_directory_loop_is_walked_once(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.yaml").write_text("kind: Service\n")
    (tmp_path / "a" / "loop").symlink_to(tmp_path)
    result = load([tmp_path])
    assert len(result.documents) == 1
    assert result.diagnostics == []


def test_the_same_file_named_twice_is_read_once(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("kind: Service\n")
    result = load([path, str(path), tmp_path])
    assert (len(result.documents), result.files) == (1, 1)


def test_a_json_file_is_read_with_json_semantics_and_positions(tmp_path: Path) -> None:
    path = LOAD_FIXTURES / "json_tabs_duplicate.json"
    text = path.read_text()
    result = load([path])
    [doc] = result.documents
    assert doc.obj["spec"]["backends"][0]["weight"] == 100.0  # YAML 1.1 would have read "1e2" as a string
    assert doc.obj["metadata"]["name"] == "json-web-2"
    assert doc.position(("spec", "backends", 1, "weight")) == spot(text, "0}")
    [duplicate] = result.diagnostics
    assert (duplicate.code, duplicate.severity, duplicate.path) == (
        "SMB003",
        Severity.WARNING,
        "metadata.name",
    )
    assert (duplicate.line, duplicate.column) == spot(text, '"json-web-2"')


def test_concatenated_json_values_are_separate_documents() -> None:
    text = '{"kind": "A"}\n\n{\n  "kind": "B",\n  "spec": {"x": [1, 2]}\n}\n'
    docs = load_bytes(text.encode(), "stream.json").documents
    assert [(d.index, d.line, d.obj["kind"]) for d in docs] == [(0, 1, "A"), (1, 3, "B")]
    assert docs[1].position(("spec", "x", 1)) == spot(text, "2]")


def test_a_yaml_file_that_starts_with_a_brace_but_is_not_json_is_read_as_yaml() -> None:
    result = load_bytes(b"{kind: Service, metadata: {name: flow}}\n---\nkind: B\n", "flow.yaml")
    assert [d.obj["kind"] for d in result.documents] == ["Service", "B"]
    assert result.diagnostics == []


def test_a_yaml_file_holding_json_is_read_as_json() -> None:
    result = load_bytes(b'{"kind": "Service", "spec": {"weight": 1e3}}', "x.yaml")
    assert result.documents[0].obj["spec"]["weight"] == 1000.0


def test_merge_keys_expand_with_explicit_keys_winning() -> None:
    [doc] = load([LOAD_FIXTURES / "merge_keys.yaml"]).documents
    assert doc.obj["spec"]["backends"] == [
        {"service": "web-v1", "weight": 50},
        {"service": "web-v2", "weight": 50},
    ]
    text = (LOAD_FIXTURES / "merge_keys.yaml").read_text()
    assert doc.position(("spec", "backends", 1, "weight")) == spot(text, "50")  # found through the merge


def test_scalars_follow_kubernetes_not_plain_yaml_1_1() -> None:
    text = b"kind: X\nt: 2021-01-19T10:00:00Z\nd: 2021-01-19\nclock: 1:30\nn: ~\nb: true\ni: 0x1F\nf: 1.5\n8080: port\n"
    obj = load_bytes(text).documents[0].obj
    assert obj == {
        "kind": "X",
        "t": "2021-01-19T10:00:00Z",
        "d": "2021-01-19",
        "clock": "1:30",
        "n": None,
        "b": True,
        "i": 31,
        "f": 1.5,
        "8080": "port",
    }


def test_a_utf8_byte_order_mark_is_accepted() -> None:
    [doc] = load([LOAD_FIXTURES / "utf8_bom.yaml"]).documents
    assert doc.obj["metadata"]["name"] == "with-bom"
    assert doc.position(("metadata", "name")) == (4, 9)


def test_stdin_dash_reads_a_pipe() -> None:
    read_end, write_end = os.pipe()
    payload = MULTI.encode()

    def feed() -> None:
        with os.fdopen(write_end, "wb") as stream:
            stream.write(payload)

    writer = threading.Thread(target=feed)
    writer.start()
    with os.fdopen(read_end, "rb") as stream:
        result = load(["-", "-"], stdin=stream)
    writer.join()
    assert [d.file for d in result.documents] == ["<stdin>"] * 3
    assert result.files == 1
    assert result.documents[1].position(("spec", "backends", 1, "weight")) == spot(MULTI, "33")


def test_stdin_that_is_an_interactive_terminal_is_refused_as_a_usage_error() -> None:
    leader, follower = pty.openpty()
    try:
        with (
            os.fdopen(follower, "rb", closefd=False) as terminal,
            pytest.raises(UsageError, match="terminal"),
        ):
            load(["-"], stdin=terminal)
    finally:
        os.close(leader)
        os.close(follower)


def test_dash_reads_the_process_stdin_when_no_stream_is_given() -> None:
    code = "from smi_bridge.load import load; r = load(['-']); print([d.obj['kind'] for d in r.documents], r.files)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=b"kind: A\n---\nkind: B\n",
        capture_output=True,
        cwd=REPO,
        check=True,
        timeout=60,
    )
    assert done.stdout.decode().strip() == "['A', 'B'] 1"


def test_dash_without_any_standard_input_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    [finding] = load(["-"]).diagnostics
    assert (finding.code, finding.file) == ("SMB010", "<stdin>")


def test_a_named_pipe_given_as_a_path_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "rendered"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as stream:
            stream.write(b"kind: FromFifo\n")

    writer = threading.Thread(target=feed)
    writer.start()
    result = load([fifo])
    writer.join()
    assert [d.obj["kind"] for d in result.documents] == ["FromFifo"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("spec", "backends", 1, "weight"), "spec.backends[1].weight"),
        ((), ""),
        ((0, "kind"), "[0].kind"),
        (("metadata", "labels", "app.kubernetes.io/name"), 'metadata.labels["app.kubernetes.io/name"]'),
        (("items", 3), "items[3]"),
        (("a b", 'q"uote'), '["a b"]["q\\"uote"]'),
    ],
)
def test_json_path_reads_like_a_field_reference(path: tuple[str | int, ...], expected: str) -> None:
    assert json_path(path) == expected


def test_every_check_has_a_distinct_code_in_the_loader_range() -> None:
    codes = [check.code for check in CHECKS]
    assert len(set(codes)) == len(codes)
    assert all("SMB001" <= code <= "SMB019" for code in codes)
    assert [check.severity for check in CHECKS if check.code == "SMB003"] == [Severity.WARNING]


def test_every_anchor_example_loads_without_a_traceback() -> None:
    result = load([ANCHORS / "smi" / "examples"])
    assert len(result.documents) > 50
    kinds = {d.obj.get("kind") for d in result.documents}
    assert {"TrafficSplit", "TrafficTarget", "HTTPRouteGroup", "TCPRoute", "UDPRoute"} <= kinds
    # The spec's discovery document elides items with "..." and one controller-sdk sample indents its
    # keys under apiVersion: neither is YAML, and both are named rather than dropped.
    broken = {(Path(d.file or "").name, d.line) for d in result.diagnostics if d.code == "SMB001"}
    assert broken == {
        ("apiresourcelist-v1alpha1-discovery-elided-NOT-VALID-YAML.yaml", 17),
        ("specs_v1alpha4_tcproute.yaml", 2),
    }


def test_the_loaded_corpus_equals_what_pyyaml_reads(tmp_path: Path) -> None:
    info = write_corpus(tmp_path, n=300, seed=7)
    one = load([info.one_file])
    many = load([info.many_dir])
    assert one.diagnostics == [] and many.diagnostics == []
    expected = list(yaml.load_all(info.one_file.read_bytes(), Loader=yaml.CSafeLoader))
    assert [d.obj for d in one.documents] == expected
    assert [d.obj for d in many.documents] == expected
    assert (one.files, many.files, len(one.documents)) == (1, 300, 300)


def test_the_corpus_is_deterministic_for_a_seed_and_mixes_every_kind_and_version(tmp_path: Path) -> None:
    first = write_corpus(tmp_path / "a", n=400, seed=3)
    again = write_corpus(tmp_path / "b", n=400, seed=3)
    other = write_corpus(tmp_path / "c", n=400, seed=4)
    assert first.one_file.read_bytes() == again.one_file.read_bytes()
    assert first.one_file.read_bytes() != other.one_file.read_bytes()
    assert sorted(p.name for p in first.many_dir.iterdir()) == sorted(
        p.name for p in again.many_dir.iterdir()
    )
    docs = [d.obj for d in load([first.one_file]).documents]
    kinds = {(d["kind"], d["apiVersion"].rsplit("/", 1)[1]) for d in docs}
    for version in ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"):
        assert ("TrafficSplit", version) in kinds and ("HTTPRouteGroup", version) in kinds
    for version in ("v1alpha1", "v1alpha2", "v1alpha3"):
        assert ("TrafficTarget", version) in kinds
    assert {("TCPRoute", "v1alpha4"), ("UDPRoute", "v1alpha4")} <= kinds
    splits = [d for d in docs if d["kind"] == "TrafficSplit" and d["apiVersion"].endswith("v1alpha1")]
    weights = [b["weight"] for d in splits for b in d["spec"]["backends"]]
    assert any(isinstance(w, str) and w.endswith("m") for w in weights)  # quantity weights
    headers = [r["headers"] for d in docs for r in _routes(d) if "headers" in r]
    assert any(isinstance(h, list) for h in headers) and any(isinstance(h, dict) for h in headers)
    assert 0 < first.invalid < 400 * 0.1


def _routes(obj: dict[str, object]) -> list[dict[str, object]]:
    if obj["kind"] != "HTTPRouteGroup":
        return []
    spec = obj.get("spec")
    routes = spec.get("matches") if isinstance(spec, dict) else obj.get("matches")
    return routes if isinstance(routes, list) else []


def test_corpus_documents_say_what_is_wrong_with_the_invalid_ones() -> None:
    documents = list(corpus_documents(500, seed=1))
    invalid = [d for d in documents if d.invalid]
    assert len({d.invalid for d in invalid}) >= 3  # several kinds of mistake, each named
    assert all(yaml.load(d.text, Loader=yaml.CSafeLoader)["kind"] == d.kind for d in documents)
