"""smi-proxy under stress and attack: a dying upstream, many connections, slow clients, and
requests crafted to slip past an access policy. The real proxy runs as a process on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
from collections import Counter
from collections.abc import Iterator

import pytest

from smi_bridge.verify import HTTPClient, LoopbackBed, free_port
from tests.proxybed import (
    ANY_METHOD,
    checkout_pods,
    checkout_services,
    documents,
    http_route_group,
    loopback_bed,
    metric_samples,
    pod,
    read_reply,
    service,
    traffic_split,
    traffic_target,
    web_to,
)

# This module's loopback ranges (other proxy test modules use others).
WEB = "127.0.70.10"
CRAWLER = "127.0.70.12"
CHECKOUT = "127.0.7.1"
CATALOG = "127.0.7.20"
HOST_PORT = free_port()

MANIFESTS = documents(
    *checkout_services("127.0.7."),
    service("catalog", CATALOG, {"app": "catalog"}, [("http", 80, 8080)]),
    *checkout_pods("127.0.70.", owned=False),
    pod("catalog-0", "127.0.70.20", {"app": "catalog"}),
    pod("web-0", WEB, {"app": "web"}),
    traffic_split("checkout", {"checkout-v1": 1, "checkout-v2": 1}, api="v1alpha2"),
    ANY_METHOD,
    http_route_group("public", "{name: public, pathRegex: /public/, methods: [GET, POST]}"),
    web_to("checkout"),
    traffic_target("web-reads-public", "catalog", {"kind": "HTTPRouteGroup", "name": "public"}),
)


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackBed]:
    args = [
        "--http-listen",
        f"127.0.0.1:{HOST_PORT}",
        "--header-timeout",
        "2",
        "--connect-timeout",
        "3",
        "--response-timeout",
        "4",
    ]
    with loopback_bed(MANIFESTS, tmp_path_factory.mktemp("reliability"), proxy_args=args) as b:
        yield b


def failures_by_backend(bed: LoopbackBed) -> Counter[str]:
    counts: Counter[str] = Counter()
    for sample in metric_samples(bed, "smi_proxy_upstream_failures"):
        counts[sample.labels["backend_service"]] += int(sample.value)
    return counts


# --- a dying upstream ------------------------------------------------------------------------------------


def test_killed_upstream_fails_only_its_share_and_comes_back(bed: LoopbackBed) -> None:
    failures_before = failures_by_backend(bed)
    results: list[tuple[str, int, str]] = []  # (phase when the response came, status, pod)
    phase = "before"

    async def worker(stop: asyncio.Event) -> None:
        client = HTTPClient(CHECKOUT, 8080, source=WEB)
        try:
            while not stop.is_set():
                response = await client.request("GET", "/load")
                results.append((phase, response.status, response.header("x-pod")))
        finally:
            await client.aclose()

    async def scenario() -> None:
        nonlocal phase
        stop = asyncio.Event()
        workers = [asyncio.create_task(worker(stop)) for _ in range(4)]
        while len(results) < 100:
            await asyncio.sleep(0.005)
        phase = "killed"  # from the moment the kill starts
        await asyncio.to_thread(bed.fleet.kill, "checkout-v2-0")
        killed_at = len(results)
        while len(results) < killed_at + 400:
            await asyncio.sleep(0.005)
        phase = "revived"  # from the moment the revival starts
        revived_at = len(results)
        await asyncio.to_thread(bed.fleet.revive, "checkout-v2-0")
        while len(results) < revived_at + 2000:
            if any(p == "revived" and pod == "checkout-v2-0" for p, _, pod in results[revived_at:]):
                break
            await asyncio.sleep(0.005)
        stop.set()
        await asyncio.gather(*workers)

    asyncio.run(scenario())
    statuses = Counter(status for _, status, _ in results)
    assert set(statuses) <= {200, 503}, statuses
    before = [r for r in results if r[0] == "before"]
    assert all(status == 200 for _, status, _ in before)
    # While v2 is down, v1 keeps answering its share and only v2's share fails: about half of
    # the requests (the split is 50/50), and v2 answers at most the few that were in flight.
    killed = [r for r in results if r[0] == "killed"]
    failed = sum(1 for _, status, _ in killed if status == 503)
    served_by = Counter(pod for _, status, pod in killed if status == 200)
    assert set(served_by) <= {"checkout-v1-0", "checkout-v2-0"}
    assert served_by["checkout-v2-0"] <= 4  # the four workers' requests in flight at the kill
    assert 0.35 * len(killed) <= failed <= 0.65 * len(killed)
    assert served_by["checkout-v1-0"] >= 0.35 * len(killed)
    # It comes back when the upstream does.
    assert any(
        phase == "revived" and status == 200 and pod == "checkout-v2-0" for phase, status, pod in results
    )
    failures = failures_by_backend(bed) - failures_before
    assert failures["checkout-v1"] == 0
    assert failures["checkout-v2"] == statuses[503]


def test_an_upstream_that_does_not_answer_in_time_gets_504(bed: LoopbackBed) -> None:
    def timeouts() -> float:
        return sum(
            s.value
            for s in metric_samples(bed, "smi_proxy_upstream_failures")
            if s.labels["reason"] == "timeout"
        )

    before = timeouts()

    async def slow() -> tuple[int, int]:
        client = HTTPClient(CATALOG, 80, source=WEB)
        try:
            late = await client.request("GET", "/public/slow", {"x-echo-delay": "6"})
            prompt = await client.request("GET", "/public/after")
            return late.status, prompt.status
        finally:
            await client.aclose()

    assert asyncio.run(slow()) == (504, 200)
    assert timeouts() == before + 1


# --- many connections ------------------------------------------------------------------------------------


def test_a_thousand_concurrent_connections_are_served(bed: LoopbackBed) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))

    async def scenario() -> Counter[int]:
        clients = [HTTPClient(CHECKOUT, 8080, source=WEB) for _ in range(1000)]
        try:
            # The upstream holds every answer for a second, so all 1,000 requests (and their
            # client and upstream connections) are open at the same time.
            responses = await asyncio.gather(
                *(c.request("GET", f"/many/{i}", {"x-echo-delay": "1"}) for i, c in enumerate(clients))
            )
            return Counter(r.status for r in responses)
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))

    assert asyncio.run(scenario()) == {200: 1000}
    assert bed.fleet.peak_connections >= 900


# --- slow clients ------------------------------------------------------------------------------------------


def test_slowloris_client_is_cut_off_by_the_header_timeout(bed: LoopbackBed) -> None:
    async def scenario() -> tuple[bytes, int]:
        reader, writer = await asyncio.open_connection(CATALOG, 80, local_addr=(WEB, 0))
        writer.write(b"GET /public/x HTTP/1.1\r\nhost: catalog\r\n")
        answer = asyncio.create_task(reader.read())
        sent = 0
        try:
            # Trickle a header line every 50 ms for up to 20 s; the proxy gives 2 s in all.
            while sent < 400 and not answer.done():
                await asyncio.sleep(0.05)
                writer.write(b"x-slow-%d: y\r\n" % sent)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
                sent += 1
            return await asyncio.wait_for(answer, 10), sent
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    data, sent = asyncio.run(scenario())
    assert sent < 400, "the proxy never closed the slow connection"
    assert data.startswith(b"HTTP/1.1 408")


def test_a_connection_that_sends_nothing_is_closed(bed: LoopbackBed) -> None:
    # read() returns only once the proxy has closed the idle connection, without a word.
    assert read_reply(CATALOG, 80, lambda r: r.read(), 20, local_addr=(WEB, 0)) == b""


def test_oversized_request_line_and_headers_are_refused(bed: LoopbackBed) -> None:
    long_target = b"/public/" + b"a" * 9000
    assert raw(CATALOG, 80, b"GET " + long_target + b" HTTP/1.1\r\nhost: c\r\n\r\n").startswith(
        b"HTTP/1.1 414"
    )
    many = b"".join(b"x-h%d: v\r\n" % i for i in range(150))
    assert raw(CATALOG, 80, b"GET /public/ HTTP/1.1\r\nhost: c\r\n" + many + b"\r\n").startswith(
        b"HTTP/1.1 431"
    )


# --- bypass and smuggling attempts ----------------------------------------------------------------------------------

H = b"host: catalog.shop\r\n"

# The policy lets web GET and POST paths starting with /public/ on catalog and nothing else.
# Each attempt tries to reach something else (mostly /admin) through a spelling, framing or
# header trick; ``answers`` is how many responses the connection yields.
ATTEMPTS: list[tuple[str, bytes, int]] = [
    ("dot-dot segment", b"GET /public/../admin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("dot then dot-dot", b"GET /public/./../admin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("encoded dot-dot", b"GET /public/%2e%2e/admin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("upper-case encoded dot-dot", b"GET /public/%2E%2E/admin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("half-encoded dot-dot", b"GET /public/.%2e/admin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("other half-encoded dot-dot", b"GET /public/%2e./admin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("encoded slash", b"GET /public/..%2fadmin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("upper-case encoded slash", b"GET /public%2F..%2Fadmin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("encoded backslash", b"GET /public/..%5cadmin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("raw backslash", b"GET /public/..\\admin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("double slash", b"GET //admin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("double slash before dot-dot", b"GET /public//../admin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("dot-dot with parameters", b"GET /public/..;/admin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("dot with parameters", b"GET /public/.;/../admin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("encoded NUL", b"GET /public/%00/../admin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("invalid percent-encoding", b"GET /public/%zz/../admin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("double percent", b"GET /public/%%32%65%%32%65/admin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("case of the allowed prefix", b"GET /PUBLIC/x HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("case of the target", b"GET /Admin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("fragment", b"GET /admin#/public/ HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("allowed prefix in the query", b"GET /admin?/public/ HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("absolute-form URL", b"GET http://catalog.shop/admin HTTP/1.1\r\n" + H + b"\r\n", 1),
    (
        "absolute-form with another authority",
        b"GET http://evil/public/../admin HTTP/1.1\r\n" + H + b"\r\n",
        1,
    ),
    ("lower-case method", b"get /admin HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("method not in the route", b"DELETE /public/x HTTP/1.1\r\n" + H + b"\r\n", 1),
    ("duplicate Host", b"GET /public/x HTTP/1.1\r\n" + H + H + b"\r\n", 1),
    (
        "Content-Length with Transfer-Encoding",
        b"POST /public/x HTTP/1.1\r\n" + H + b"content-length: 4\r\ntransfer-encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /admin HTTP/1.1\r\n" + H + b"\r\n",
        1,
    ),
    (
        "two Content-Lengths",
        b"POST /public/x HTTP/1.1\r\n" + H + b"content-length: 0\r\ncontent-length: 44\r\n\r\n"
        b"GET /admin HTTP/1.1\r\n" + H + b"\r\n",
        1,
    ),
    (
        "obfuscated Transfer-Encoding",
        b"POST /public/x HTTP/1.1\r\n" + H + b"transfer-encoding: xchunked\r\n\r\n0\r\n\r\n",
        1,
    ),
    (
        "stacked transfer codings",
        b"POST /public/x HTTP/1.1\r\n" + H + b"transfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        1,
    ),
    (
        "space before the colon",
        b"POST /public/x HTTP/1.1\r\n" + H + b"transfer-encoding : chunked\r\n\r\n0\r\n\r\n",
        1,
    ),
    ("obs-fold header", b"GET /public/x HTTP/1.1\r\n" + H + b"x-a: b\r\n c\r\n\r\n", 1),
    ("bare LF line ends", b"GET /admin HTTP/1.1\nhost: catalog.shop\n\n", 1),
    (
        "bad chunk size hides a request",
        b"POST /public/x HTTP/1.1\r\n"
        + H
        + b"transfer-encoding: chunked\r\n\r\nzz\r\nGET /admin HTTP/1.1\r\n\r\n",
        1,
    ),
    (
        "pipelined request after an allowed one",
        b"POST /public/x HTTP/1.1\r\n"
        + H
        + b"content-length: 0\r\n\r\nGET /admin HTTP/1.1\r\n"
        + H
        + b"\r\n",
        2,
    ),
    ("HTTP/1.0 without Host", b"GET /public/../admin HTTP/1.0\r\n\r\n", 1),
    ("tab in the request line", b"GET /admin\t/public/ HTTP/1.1\r\n" + H + b"\r\n", 1),
    (
        "Expect on a denied request",
        b"POST /admin HTTP/1.1\r\n" + H + b"content-length: 1\r\nexpect: 100-continue\r\n\r\n",
        1,
    ),
    ("unknown Expect", b"GET /public/x HTTP/1.1\r\n" + H + b"expect: 200-ok\r\n\r\n", 1),
]

# Attempts through the Host-routing listener: Host spellings.
HOST_ATTEMPTS: list[tuple[str, bytes, int]] = [
    ("trailing dot in Host", b"GET /admin HTTP/1.1\r\nhost: catalog.shop.svc.cluster.local.\r\n\r\n", 1),
    ("two trailing dots in Host", b"GET /public/x HTTP/1.1\r\nhost: catalog.shop..\r\n\r\n", 1),
    ("upper-case Host", b"GET /admin HTTP/1.1\r\nhost: CATALOG.SHOP\r\n\r\n", 1),
    (
        "duplicate Host naming two services",
        b"GET /admin HTTP/1.1\r\nhost: catalog.shop\r\nhost: checkout.shop\r\n\r\n",
        1,
    ),
    ("userinfo in Host", b"GET /admin HTTP/1.1\r\nhost: checkout.shop@catalog.shop\r\n\r\n", 1),
]


def raw(host: str, port: int, data: bytes, answers: int = 1) -> bytes:
    async def go() -> bytes:
        reader, writer = await asyncio.open_connection(host, port, local_addr=(WEB, 0))
        got = b""
        try:
            writer.write(data)
            while True:
                chunk = await asyncio.wait_for(reader.read(65536), 10)
                if not chunk:
                    break
                got += chunk
                if (
                    got.count(b"\r\n\r\n") >= answers
                    and got.count(b"HTTP/1.1 ") >= answers
                    and _bodies_done(got)
                ):
                    break
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        return got

    return asyncio.run(go())


def _bodies_done(data: bytes) -> bool:
    rest = data
    while rest:
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            return False
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if len(rest) < length:
            return False
        rest = rest[length:]
    return True


def test_there_are_at_least_thirty_bypass_attempts() -> None:
    assert len(ATTEMPTS) + len(HOST_ATTEMPTS) >= 30


def test_no_bypass_or_smuggling_attempt_gets_through(bed: LoopbackBed) -> None:
    seen_before = len(bed.fleet.seen)
    through: list[str] = []
    for name, data, answers in [*((n, d, a) for n, d, a in ATTEMPTS), *HOST_ATTEMPTS]:
        port = HOST_PORT if (name, data, answers) in HOST_ATTEMPTS else 80
        host = "127.0.0.1" if port == HOST_PORT else CATALOG
        got = raw(host, port, data, answers)
        statuses = [int(part[:3]) for part in got.split(b"HTTP/1.1 ")[1:] if part[:3].isdigit()]
        # The one legitimate request (the allowed POST before a pipelined one) may pass.
        allowed = 1 if name == "pipelined request after an allowed one" else 0
        successes = [s for s in statuses if 200 <= s < 300]
        if len(successes) > allowed or (allowed and statuses[1:] != [403]):
            through.append(f"{name}: {statuses}")
    assert through == []
    # Whatever reached the upstream is under /public/: nothing else was ever forwarded.
    reached = [s.path for s in bed.fleet.seen[seen_before:] if s.pod == "catalog-0"]
    assert all(path.startswith("/public/") for path in reached), reached
