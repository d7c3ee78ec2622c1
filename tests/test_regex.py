"""The SMI regex dialect: the accepted RE2 subset, anchoring, samples, near misses, literal reduction."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smi_bridge.regex import (
    UnsupportedRegex,
    check_re2,
    compile_header,
    compile_path,
    full_match_form,
    near_misses,
    reduce_to_literal,
    sample,
    split_leading_flags,
    strip_full_match,
)
from tests.strategies import path_regexes, simple_patterns

# --- the accepted subset ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        "/api",
        "/api/.*",
        ".*\\.js",
        "/v[0-9]+/items",
        "(?i)/Books",
        "/(get|list)/(?P<id>[0-9]{1,5})",
        "^/exact$",
        "[^/]+",
        "\\d+\\w*\\s?",
        "\\(\\?=literal",  # escaped characters, not a look-ahead
        "[(?=]x",  # inside a class '(?=' is three literal characters
        "a{0,3}",
        "a{1000}",
        "",
    ],
)
def test_re2_compatible_pattern_is_accepted(pattern: str) -> None:
    assert check_re2(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "reason_part"),
    [
        ("/api(?=/v1)", "look-ahead"),
        ("/api(?<=i)", "look-ahead/look-behind"),
        ("/api(?!/v1)", "negative look-ahead"),
        ("/a(?<!b)", "negative look-ahead"),
        ("(a)\\1", "backreferences"),
        ("(?P<x>a)(?P=x)", "backreferences"),
        ("a++", "possessive"),
        ("(?>ab)", "atomic"),
        ("(a)?(?(1)b|c)", "conditionals"),
        ("/api\\Z", "\\Z"),
        ("(?#note)/api", "comments"),
        ("a{,3}", "{,n}"),
        ("(?x)/a b", "inline flag"),
        ("(?a)/x", "inline flag"),
        ("\\u00e9", "Python-only"),
        ("a{1001}", "1000"),
        ("[[:alpha:]]", "unambiguously"),
        ("/api[", "cannot compile"),
        ("(", "cannot compile"),
    ],
)
def test_construct_outside_re2_is_rejected_with_reason(pattern: str, reason_part: str) -> None:
    reason = check_re2(pattern)
    assert reason is not None
    assert reason_part in reason
    assert "\n" not in reason


def test_rejected_pattern_raises_unsupported_regex_with_reason() -> None:
    with pytest.raises(UnsupportedRegex) as info:
        compile_path("/a(?=b)")
    assert "look-ahead" in info.value.reason
    with pytest.raises(UnsupportedRegex):
        compile_header("(a)\\1")


def test_non_string_pattern_is_rejected_not_raised() -> None:
    assert check_re2(42) is not None  # type: ignore[arg-type]


# --- anchoring ----------------------------------------------------------------------------------


def test_path_regex_is_anchored_at_start_only() -> None:
    rx = compile_path("/api")
    assert rx.match("/api")
    assert rx.match("/api/v2/books")
    assert rx.match("/apix")
    assert rx.match("/x/api") is None


def test_header_regex_must_match_whole_value() -> None:
    rx = compile_header("beta|canary")
    assert rx.fullmatch("beta")
    assert rx.fullmatch("canary")
    assert rx.fullmatch("beta-2") is None
    assert rx.fullmatch("xbeta") is None


def test_character_classes_are_ascii_as_in_re2() -> None:
    assert compile_header("\\d").fullmatch("\u0663") is None  # ARABIC-INDIC DIGIT THREE
    assert compile_header("\\w+").fullmatch("caf\u00e9") is None


def test_full_match_form_wraps_pattern_and_keeps_leading_flags_in_front() -> None:
    assert full_match_form("/api") == "(?:/api).*"
    assert full_match_form("(?i)/api") == "(?i)(?:/api).*"
    assert compile_header(full_match_form("(?i)/api")).fullmatch("/API/v1")


@pytest.mark.parametrize(
    ("regex", "inner"),
    [
        ("(?:/api).*", "/api"),
        ("(?:/a(b|c)).*", "/a(b|c)"),
        ("(?:[(]x).*", "[(]x"),  # a parenthesis in a class does not open a group
        ("(?:[]()]).*", "[]()]"),  # ']' first in a class is literal (RE2)
        ("(?:[^](]).*", "[^](]"),  # ... also right after '[^'
        ("(?:\\().*", "\\("),  # an escaped parenthesis is a character
        ("(?:a).*|(?:b).*", None),  # two groups, not one
        ("(?:a)|b.*", None),
        ("(?:[a).*", None),  # an unclosed class
        ("/api.*", None),
    ],
)
def test_strip_full_match_reads_one_outer_group_as_re2_does(regex: str, inner: str | None) -> None:
    assert strip_full_match(regex) == inner


@given(path_regexes())
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_strip_full_match_undoes_full_match_form(pattern: str) -> None:
    head, body = split_leading_flags(full_match_form(pattern))
    assert head + (strip_full_match(body) or "") == pattern


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(path_regexes(), st.text(alphabet="/apiv1bokstcmexr.js0-_", max_size=16))
def test_full_match_form_agrees_with_start_anchored_path_match(pattern: str, path: str) -> None:
    anchored = compile_path(pattern).match(path) is not None
    full = compile_header(full_match_form(pattern)).fullmatch(path) is not None
    assert anchored == full


# --- samples and near misses --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("/api", "/api"),
        ("/api/.*", "/api/"),
        ("/v[0-9]+/items", "/v0/items"),
        ("/a.b", "/axb"),
        ("(get|list)", "get"),
        ("[^a-z]", "A"),
        ("\\d{3}", "000"),
    ],
)
def test_sample_is_deterministic_first_choice(pattern: str, expected: str) -> None:
    assert sample(pattern) == expected


def test_sample_is_none_for_rejected_or_contradictory_pattern() -> None:
    assert sample("a(?=b)") is None
    assert sample("a^b") is None


@settings(max_examples=200)
@given(simple_patterns())
def test_sample_matches_its_pattern(pattern: str) -> None:
    assert check_re2(pattern) is None
    s = sample(pattern)
    if s is not None:
        assert compile_header(pattern).fullmatch(s)
        assert compile_path(pattern).match(s)


@settings(max_examples=200)
@given(simple_patterns())
def test_near_misses_never_match(pattern: str) -> None:
    for miss in near_misses(pattern):
        assert compile_path(pattern).match(miss) is None
    for miss in near_misses(pattern, full_match=True):
        assert compile_header(pattern).fullmatch(miss) is None


def test_near_misses_stay_close_to_the_sample() -> None:
    misses = near_misses("/api/v1")
    assert misses
    assert all(abs(len(m) - len("/api/v1")) <= 1 for m in misses)
    assert "/api/v" in misses


def test_full_match_near_misses_include_longer_strings() -> None:
    assert any(m.startswith("alice") for m in near_misses("alice", full_match=True))
    assert not any(m.startswith("alice") for m in near_misses("alice"))


def test_pattern_matching_everything_has_no_near_misses() -> None:
    assert near_misses(".*") == []


# --- reduction to literal matches ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("/a/b", ("exact", "/a/b")),
        ("/a/.*", ("prefix", "/a/")),
        (".*\\.js", ("suffix", ".js")),
        (".*", ("any", "")),
        ("/a\\.b", ("exact", "/a.b")),
        ("/a.b", ("regex", "/a.b")),
        ("^/a/b$", ("exact", "/a/b")),
        ("(?:/api).*", ("prefix", "/api")),
        ("(?:/api$).*", ("exact", "/api")),
        ("(?:.*).*", ("any", "")),
        ("(?:.*\\.js).*", ("regex", "(?:.*\\.js).*")),
        ("/a/.+", ("regex", "/a/.+")),
        ("(?i)/a", ("regex", "(?i)/a")),
        ("/[a]", ("exact", "/a")),
        ("/v[12]", ("regex", "/v[12]")),
        ("/a(?=b)", ("regex", "/a(?=b)")),
        ("/a|/b", ("regex", "/a|/b")),
        ("", ("exact", "")),
    ],
)
def test_reduce_to_literal_classifies_full_match_pattern(pattern: str, expected: tuple[str, str]) -> None:
    assert reduce_to_literal(pattern) == expected


def test_path_regex_reduces_to_prefix_through_full_match_form() -> None:
    assert reduce_to_literal(full_match_form("/api")) == ("prefix", "/api")
    assert reduce_to_literal(full_match_form("/api$")) == ("exact", "/api")


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(path_regexes(), st.lists(st.text(alphabet="/apiv1bokstcmexr.js0-_", max_size=16), max_size=8))
def test_reduced_form_matches_exactly_what_the_regex_matches(pattern: str, extra: list[str]) -> None:
    full = full_match_form(pattern)
    kind, text = reduce_to_literal(full)
    rx = compile_header(full)
    probes = [*extra, text, text + "x", text[:-1], "x" + text]
    s = sample(pattern)
    if s is not None:
        probes.extend([s, *near_misses(pattern)])
    for value in probes:
        expected = rx.fullmatch(value) is not None
        if kind == "exact":
            assert (value == text) == expected, value
        elif kind == "prefix":
            assert value.startswith(text) == expected, value
        elif kind == "suffix":
            assert value.endswith(text) == expected, value
        elif kind == "any":
            assert expected, value
