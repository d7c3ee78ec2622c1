"""Path normalisation: what the proxy matches is what it forwards, in one canonical spelling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.paths import BadPath, normalise_path, split_target


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"/", "/"),
        (b"/books", "/books"),
        (b"/books/", "/books/"),
        (b"/a/./b", "/a/b"),
        (b"/a/../b", "/b"),
        (b"/a/b/..", "/a/"),
        (b"/a/b/.", "/a/b/"),
        (b"/../../etc", "/etc"),
        (b"//a///b", "/a/b"),
        (b"/public//../admin", "/admin"),
        (b"/%7Euser/%41%62c", "/~user/Abc"),
        (b"/public/%2e%2e/admin", "/admin"),
        (b"/public/%2E./admin", "/admin"),
        (b"/a%3ab", "/a%3Ab"),
        (b"/a%20b", "/a%20b"),
        (b"/.well-known/x", "/.well-known/x"),
        (b"/a/...", "/a/..."),
        (b"/a;b=c/d", "/a;b=c/d"),
    ],
)
def test_paths_are_normalised(raw: bytes, expected: str) -> None:
    assert normalise_path(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"/a%2Fb",
        b"/a%2fb",
        b"/a%5Cb",
        b"/a%5cb",
        b"/a%00b",
        b"/a%zz",
        b"/a%2",
        b"/a%",
        b"/a\\b",
        b"/a#frag",
        b"/public/..;/admin",
        b"/public/.;/x",
        b"/caf\xc3\xa9",
        b"/a\x7fb",
        b"relative/path",
        b"*",
    ],
)
def test_unsafe_paths_are_rejected(raw: bytes) -> None:
    with pytest.raises(BadPath):
        normalise_path(raw)


def test_query_string_is_split_off_and_kept_verbatim() -> None:
    assert split_target(b"/a/../b?x=%2F&y=..") == (b"/a/../b", b"?x=%2F&y=..")
    assert split_target(b"/plain") == (b"/plain", b"")


_SEGMENT = st.sampled_from(["a", "b", ".", "..", "", "%2e", "%2E%2e", "%41", "x%20y", "~z", "c;d"])


@given(st.lists(_SEGMENT, max_size=12), st.booleans())
def test_normalisation_is_idempotent_and_leaves_no_dot_segments(segments: list[str], trailing: bool) -> None:
    raw = ("/" + "/".join(segments) + ("/" if trailing else "")).encode()
    once = normalise_path(raw)
    assert normalise_path(once.encode()) == once
    assert once.startswith("/")
    assert "//" not in once
    parts = once.split("/")[1:]
    assert "." not in parts and ".." not in parts


@given(st.lists(_SEGMENT, max_size=12))
def test_normalised_path_never_climbs_above_the_root(segments: list[str]) -> None:
    raw = ("/public/" + "/".join(segments)).encode()
    result = normalise_path(raw)
    # Whatever the dot segments, the result is a plain absolute path: never outside "/".
    assert result == "/" or result.startswith("/")
    assert not result.startswith("/..")
