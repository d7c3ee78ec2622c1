"""The upstream side of an exchange: response heads read from raw bytes, hop-by-hop lines cut."""

from __future__ import annotations

import pytest

from proxy.upstream import UpstreamConnection, UpstreamPool, without_hop_by_hop


class Sink:
    """Records what an upstream connection reports."""

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def upstream_head(
        self, status: int, reason: bytes, block: bytes, chunked: bool, has_length: bool, keep_alive: bool
    ) -> None:
        self.events.append(("head", status, reason, block, chunked, has_length, keep_alive))

    def upstream_body(self, chunk: bytes) -> None:
        self.events.append(("body", chunk))

    def upstream_complete(self) -> None:
        self.events.append(("complete",))

    def upstream_lost(self, exc: Exception | None) -> None:
        self.events.append(("lost",))

    def upstream_paused(self, paused: bool) -> None:
        self.events.append(("paused", paused))

    def flush(self) -> None:
        self.events.append(("flush",))


def feed(*chunks: bytes) -> list[tuple[object, ...]]:
    conn = UpstreamConnection(UpstreamPool(("127.0.0.1", 1), 4))
    sink = Sink()
    conn.start(sink)
    for chunk in chunks:
        conn.data_received(chunk)
    return [e for e in sink.events if e[0] != "flush"]


def test_head_passes_through_less_its_hop_by_hop_lines() -> None:
    events = feed(
        b"HTTP/1.1 200 Fine Thanks\r\nServer: up\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
        b"X-Connection-Id: 7\r\nContent-Length: 2\r\n\r\nok"
    )
    assert events == [
        (
            "head",
            200,
            b"Fine Thanks",
            b"Server: up\r\nX-Connection-Id: 7\r\nContent-Length: 2\r\n",
            False,
            True,
            True,
        ),
        ("body", b"ok"),
        ("complete",),
    ]


def test_head_split_over_reads_and_interim_responses_are_reported_in_order() -> None:
    events = feed(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nTrans",
        b"fer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    )
    assert events[0] == ("head", 103, b"Early Hints", b"Link: </a.css>\r\n", False, False, True)
    assert events[2] == ("head", 200, b"OK", b"", True, False, False)
    assert ("body", b"ok") in events and events[-1] == ("complete",)


@pytest.mark.parametrize(
    ("lines", "kept"),
    [
        (b"\nA: 1\r\nTE: trailers\r\nB: 2\r\n", b"A: 1\r\nB: 2\r\n"),
        (b"\nConnection: close\r\n", b""),
        (b"\nX-Upgrade-Note: 1\r\nUPGRADE: h2c\r\n", b"X-Upgrade-Note: 1\r\n"),
        (b"\nTrailer: x\r\nTrailer: y\r\nZ: 1\r\n", b"Z: 1\r\n"),
        (b"\n", b""),
    ],
)
def test_hop_by_hop_lines_are_cut_whatever_their_case(lines: bytes, kept: bytes) -> None:
    assert without_hop_by_hop(lines)[0] == kept


def test_bytes_from_an_idle_connection_close_it() -> None:
    conn = UpstreamConnection(UpstreamPool(("127.0.0.1", 1), 4))
    conn.data_received(b"HTTP/1.1 200 OK\r\n\r\n")
    assert conn.closed
