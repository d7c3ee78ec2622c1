"""Request-target normalisation: the one path the proxy matches and forwards.

A proxy that matches one spelling of a path while the upstream serves another is an access
bypass (``/public/../admin`` matched as ``/public/``). So the proxy turns every request target
into one canonical path before any route is matched, and forwards *that* path upstream:

1. the query string is split off (it is never part of route matching) and forwarded verbatim;
2. percent-encodings are checked: a ``%`` not followed by two hex digits is rejected, and so are
   ``%2F`` (``/``), ``%5C`` (``\\``) and ``%00``, because servers disagree on whether an encoded
   slash separates segments; encodings of unreserved characters (``A-Z a-z 0-9 - . _ ~``) are
   decoded, every other encoding is kept with upper-case hex digits;
3. a raw backslash, a fragment (``#``), control characters and non-ASCII bytes are rejected;
4. runs of slashes are merged (``//a`` is ``/a``), then dot segments are removed as RFC 3986
   section 5.2.4 says; a segment that is a dot segment with parameters (``..;x``, ``.;``) is
   rejected, since some servers treat it as ``..``.

The emitters assume the same normalisation of Istio (``normalize_path`` with
``merge_slashes``), Linkerd and Consul; the README says so next to the meanings we decided.
"""

from __future__ import annotations

_HEX = frozenset(b"0123456789abcdefABCDEF")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_FORBIDDEN_DECODED = frozenset((0x2F, 0x5C, 0x00))
# Bytes allowed raw in a path: RFC 3986 pchar and "/" (unreserved, sub-delims, ":", "@") plus "%".
_PATH_RAW = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/%")
# A path made only of these bytes, with no "//" and no "/." can be used as it is (the fast path).
_PLAIN = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/"


class BadPath(ValueError):
    """The request target cannot be normalised safely (answered with 400)."""


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """``(path, query)`` of an origin-form request target; ``query`` keeps its leading ``?``."""
    q = target.find(b"?")
    if q < 0:
        return target, b""
    return target[:q], target[q:]


def normalise_path(path: bytes) -> str:
    """The canonical form of an origin-form path (no query); raises ``BadPath``."""
    return normalise(path)[0]


def normalise(path: bytes) -> tuple[str, bytes]:
    """``normalise_path`` as text and as the bytes to forward; raises ``BadPath``."""
    if not path.startswith(b"/"):
        raise BadPath("the request target must start with '/'")
    if _is_plain(path):
        return path.decode("ascii"), path
    text = _slow(path)
    return text, text.encode("ascii")


def _slow(path: bytes) -> str:
    for byte in path:
        if byte not in _PATH_RAW:
            if byte == 0x5C:
                raise BadPath("a backslash in the path is not accepted")
            if byte == 0x23:
                raise BadPath("a fragment ('#') in the request target is not accepted")
            raise BadPath(f"byte 0x{byte:02x} is not allowed in a path")
    decoded = _decode_unreserved(path)
    segments = _merge_and_remove_dots(decoded)
    return segments


def _is_plain(path: bytes) -> bool:
    if b"//" in path or b"/." in path:
        return False
    return not path.translate(None, _PLAIN)  # every byte deleted: all of them are plain


def _decode_unreserved(path: bytes) -> str:
    if b"%" not in path:
        return path.decode("ascii")
    out = bytearray()
    i = 0
    n = len(path)
    while i < n:
        byte = path[i]
        if byte != 0x25:
            out.append(byte)
            i += 1
            continue
        if i + 2 >= n or path[i + 1] not in _HEX or path[i + 2] not in _HEX:
            raise BadPath("an invalid percent-encoding in the path")
        value = int(path[i + 1 : i + 3], 16)
        if value in _FORBIDDEN_DECODED:
            raise BadPath(
                f"an encoded {'slash' if value == 0x2F else 'backslash' if value == 0x5C else 'NUL'}"
            )
        if value in _UNRESERVED:
            out.append(value)
        else:
            out += b"%%%02X" % value
        i += 3
    return out.decode("ascii")


def _merge_and_remove_dots(path: str) -> str:
    trailing = path.endswith("/")
    output: list[str] = []
    for segment in path.split("/")[1:]:
        if segment in ("", "."):
            continue
        if segment == "..":
            if output:
                output.pop()
            continue
        if segment.startswith(".;") or segment.startswith("..;"):
            raise BadPath(f"a dot segment with parameters ({segment!r})")
        output.append(segment)
    # "/a/." and "/a/.." name a directory: keep the trailing slash as RFC 3986 does.
    last = path.rsplit("/", 1)[-1]
    if last in (".", ".."):
        trailing = True
    result = "/" + "/".join(output)
    if trailing and output:
        result += "/"
    return result
