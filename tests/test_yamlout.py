"""The fast YAML writer reads back as exactly what was written, for every JSON-like value."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from smi_bridge.yamlout import dump, dump_all

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.sampled_from(
        [
            "yes",
            "No",
            "on",
            "OFF",
            "y",
            "null",
            "~",
            "1.0",
            "0x1f",
            "1e3",
            "2001-12-14",
            "1:30",
            "- a",
            "a: b",
            "#x",
            "*ref",
            "&a",
            "!tag",
            "@x",
            "`x",
            "'q'",
            '"q"',
            " lead",
            "trail ",
            "multi\nline",
            "tab\tin",
            "",
            ".inf",
            "-.5",
            "=",
            "<<",
            "?",
            "|",
            ">",
            "%x",
            "{a}",
            "[a]",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_any_value_reads_back_unchanged(value: Any) -> None:
    assert yaml.safe_load(dump(value)) == value


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=6), values, min_size=1, max_size=3), min_size=1, max_size=3))
def test_streams_read_back_document_by_document(docs: list[dict[str, Any]]) -> None:
    assert list(yaml.safe_load_all(dump_all(docs))) == docs


def test_kubernetes_objects_look_like_kubectl_output() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web"}},
        "spec": {"ports": [{"port": 80, "name": "http"}], "selector": {}},
    }
    assert dump(obj) == (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels:\n    app.kubernetes.io/name: web\n"
        "spec:\n  ports:\n  - port: 80\n    name: http\n  selector: {}\n"
    )


def test_a_trailing_newline_is_never_written_plain() -> None:
    assert yaml.safe_load(dump({"A\n": None, "b": "c\n"})) == {"A\n": None, "b": "c\n"}
