"""smi-proxy end to end: the real process on 127.0.0.1 in front of echo upstreams on loopback.

One proxy (``--identity source-address``) serves a split root, a guarded Service with an HTTP
and a TCP port, and a Host-routing listener; the identity modes ``header:`` and ``mtls`` get
their own proxies. Cluster IPs are 127.0.5.x and pods 127.0.50.x (127.0.6.x and 127.0.60.x for
the identity modes).
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from smi_bridge.verify import ConnectionClosed, HTTPClient, LoopbackBed, free_port, tcp_exchange
from tests.proxybed import (
    canary_shop,
    documents,
    fetch,
    http_route_group,
    loopback_bed,
    metric_families,
    pod,
    read_reply,
    service,
    tcp_route,
    traffic_target,
    web_to,
)

# Each test module of the proxy uses its own loopback ranges, so modules may run in parallel.
WEB = "127.0.50.10"
CRAWLER = "127.0.50.12"
CHECKOUT = "127.0.5.1"
CATALOG = "127.0.5.20"

HOST_PORT = free_port()


def manifests(cluster: str = "127.0.5.", pods: str = "127.0.50.") -> str:
    """The canary shop, plus catalog with an HTTP and a TCP port (web may use both) and crawler."""
    return documents(
        *canary_shop(cluster, pods),
        service(
            "catalog", f"{cluster}20", {"app": "catalog"}, [("http", 8080, 8080), ("tcp-admin", 9000, 9000)]
        ),
        pod("catalog-0", f"{pods}20", {"app": "catalog"}),
        pod("crawler-0", f"{pods}12", {"app": "crawler"}),
        http_route_group(
            "catalog-api",
            "{name: items, pathRegex: /items, methods: [GET, HEAD]}",
            "{name: upload, pathRegex: /upload, methods: [POST, PUT]}",
        ),
        tcp_route("admin-port", 9000),
        web_to("catalog", "catalog-api"),
        traffic_target("web-to-catalog-admin", "catalog", {"kind": "TCPRoute", "name": "admin-port"}),
    )


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackBed]:
    args = ["--http-listen", f"127.0.0.1:{HOST_PORT}"]
    with loopback_bed(manifests(), tmp_path_factory.mktemp("e2e"), proxy_args=args) as b:
        yield b


def send(client: HTTPClient, count: int, **kwargs: object) -> list[tuple[int, str]]:
    return [(r.status, r.header("x-pod")) for r in fetch(client, count, **kwargs)]


def raw_exchange(host: str, port: int, data: bytes, *, source: str = WEB, responses: int = 1) -> bytes:
    """Send ``data`` as it is; return everything read until ``responses`` responses or EOF."""

    async def go() -> bytes:
        reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
        writer.write(data)
        got = b""
        try:
            while got.count(b"HTTP/1.1 ") < responses or not _complete(got, responses):
                chunk = await asyncio.wait_for(reader.read(65536), 10)
                if not chunk:
                    break
                got += chunk
        finally:
            writer.close()
            await writer.wait_closed()
        return got

    return asyncio.run(go())


def _complete(data: bytes, responses: int) -> bool:
    """True when ``data`` holds ``responses`` whole responses with Content-Length bodies."""
    rest = data
    for _ in range(responses):
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            return False
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(rest) < length:
            return False
        rest = rest[length:]
    return True


# --- routing and access -----------------------------------------------------------------------------


def test_split_sends_the_exact_ratio_over_a_short_run(bed: LoopbackBed) -> None:
    results = send(HTTPClient(CHECKOUT, 8080, source=WEB), 100, path="/cart")
    assert Counter(status for status, _ in results) == {200: 100}
    assert Counter(pod for _, pod in results) == {"checkout-v1-0": 90, "checkout-v2-0": 10}


def test_denied_request_gets_403_naming_what_was_missing_and_never_reaches_upstream(bed: LoopbackBed) -> None:
    (r,) = fetch(HTTPClient(CATALOG, 8080, source=CRAWLER), method="GET", path="/items/denied-marker")
    status, body = r.status, r.body
    assert status == 403
    assert b"shop/crawler" in body and b"shop/catalog" in body and b"GET /items/denied-marker" in body
    assert not any(s.path == "/items/denied-marker" for s in bed.fleet.seen)


def test_route_not_in_the_policy_is_denied_for_an_allowed_source(bed: LoopbackBed) -> None:
    assert send(HTTPClient(CATALOG, 8080, source=WEB), 1, method="DELETE", path="/items/1")[0][0] == 403
    assert send(HTTPClient(CATALOG, 8080, source=WEB), 1, path="/items/1")[0][0] == 200


def test_upstream_status_headers_and_body_pass_through_unchanged(bed: LoopbackBed) -> None:
    (r,) = fetch(
        HTTPClient(CATALOG, 8080, source=WEB),
        method="GET",
        path="/items?x=%2F..",
        headers={"x-echo-status": "418"},
    )
    status, headers, body = r.status, r.headers, r.body
    assert status == 418
    assert headers["x-pod"] == "catalog-0"
    assert headers["x-echo-path"] == "/items?x=%2F.."  # the query string is forwarded verbatim
    assert body == b"catalog-0\n"


def test_the_normalised_path_is_what_the_upstream_receives(bed: LoopbackBed) -> None:
    results = send(HTTPClient(CATALOG, 8080, source=WEB), 1, path="/upload/../items/%41")
    assert results[0][0] == 200
    assert bed.fleet.seen[-1].path == "/items/A"


def test_request_and_response_bodies_stream_both_ways(bed: LoopbackBed) -> None:
    chunk = bytes(range(256)) * 256  # 64 KiB
    chunks = 64  # 4 MiB in all

    async def go() -> tuple[bytes, int]:
        reader, writer = await asyncio.open_connection(CATALOG, 8080, local_addr=(WEB, 0))
        try:
            writer.write(
                b"POST /upload HTTP/1.1\r\nhost: catalog\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
            )
            writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            await writer.drain()
            # The echo answers each chunk as it arrives: part of the response comes back while
            # the request body is still being sent, so neither side is buffered whole.
            early = await asyncio.wait_for(reader.read(65536), 10)
            for _ in range(chunks - 1):
                writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            rest = await asyncio.wait_for(reader.read(), 30)
            return early + rest, len(early)
        finally:
            writer.close()
            await writer.wait_closed()

    raw, early = asyncio.run(go())
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding: chunked" in head.lower()
    assert early > 0
    assert _dechunk(body) == chunk * chunks


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return bytes(out)
        out += body[:size]
        body = body[size + 2 :]


def test_content_length_request_body_is_forwarded(bed: LoopbackBed) -> None:
    (r,) = fetch(HTTPClient(CATALOG, 8080, source=WEB), method="PUT", path="/upload/1", body=b"x" * 100_000)
    status, body = r.status, r.body
    assert status == 200 and body == b"x" * 100_000


def test_head_request_gets_the_headers_only(bed: LoopbackBed) -> None:
    raw = raw_exchange(CATALOG, 8080, b"HEAD /items HTTP/1.1\r\nhost: catalog\r\nconnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"content-length: 10" in head.lower()
    assert body == b""


def test_pipelined_requests_are_answered_in_order(bed: LoopbackBed) -> None:
    requests = b"".join(
        b"GET /items/%d HTTP/1.1\r\nhost: catalog\r\n\r\n" % i
        if i != 2
        else b"DELETE /x HTTP/1.1\r\nhost: c\r\n\r\n"
        for i in range(4)
    )
    raw = raw_exchange(CATALOG, 8080, requests, responses=4)
    statuses = [int(part[:3]) for part in raw.split(b"HTTP/1.1 ")[1:]]
    assert statuses == [200, 200, 403, 200]
    paths = [line.split(b": ")[1] for line in raw.split(b"\r\n") if line.lower().startswith(b"x-echo-path")]
    assert paths == [b"/items/0", b"/items/1", b"/items/3"]


def test_expect_continue_is_answered_before_the_body(bed: LoopbackBed) -> None:
    async def go() -> bytes:
        reader, writer = await asyncio.open_connection(CATALOG, 8080, local_addr=(WEB, 0))
        try:
            writer.write(
                b"POST /upload HTTP/1.1\r\nhost: c\r\ncontent-length: 5\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n"
            )
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            writer.write(b"hello")
            return interim + await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()
            await writer.wait_closed()

    raw = asyncio.run(go())
    assert raw.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200")
    assert raw.endswith(b"5\r\nhello\r\n0\r\n\r\n")


def test_http10_client_is_served_and_gets_a_closed_connection(bed: LoopbackBed) -> None:
    raw = raw_exchange(CATALOG, 8080, b"GET /items HTTP/1.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"catalog-0\n")


# --- TCP ------------------------------------------------------------------------------------------------


def test_allowed_tcp_connection_is_relayed_both_ways(bed: LoopbackBed) -> None:
    ok, pod = asyncio.run(tcp_exchange(CATALOG, 9000, source=WEB, payload=b"hello tcp\n" * 1000))
    assert ok and pod == "catalog-0"


def test_denied_tcp_connection_is_closed_before_any_byte_flows(bed: LoopbackBed) -> None:
    before = sum(1 for s in bed.fleet.seen if s.method == "TCP")
    assert asyncio.run(tcp_exchange(CATALOG, 9000, source=CRAWLER)) == (False, "")
    assert sum(1 for s in bed.fleet.seen if s.method == "TCP") == before


# --- the Host-routing listener ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("catalog.shop", 200),
        ("catalog.shop.svc", 200),
        ("catalog.shop.svc.cluster.local", 200),
        ("catalog.shop.svc.cluster.local.", 200),
        ("CATALOG.Shop:8080", 200),
        ("catalog", 200),  # the caller's own namespace
        ("catalog.shop:9000", 404),  # a TCP port is not HTTP
        ("catalog.other", 404),
        ("nothing.shop", 404),
    ],
)
def test_host_listener_routes_by_service_name(bed: LoopbackBed, host: str, status: int) -> None:
    results = send(HTTPClient("127.0.0.1", HOST_PORT, source=WEB), 1, path="/items", host=host)
    assert results[0][0] == status


def test_host_listener_applies_the_same_policy(bed: LoopbackBed) -> None:
    results = send(HTTPClient("127.0.0.1", HOST_PORT, source=CRAWLER), 1, path="/items", host="catalog.shop")
    assert results[0][0] == 403


# --- admin ------------------------------------------------------------------------------------------------


def test_metrics_follow_the_contract(bed: LoopbackBed) -> None:
    send(HTTPClient(CHECKOUT, 8080, source=WEB), 10, path="/metrics-probe")
    send(HTTPClient(CATALOG, 8080, source=CRAWLER), 2, path="/items")
    asyncio.run(tcp_exchange(CATALOG, 9000, source=WEB))
    families = metric_families(bed)  # asserts the scrape's status 200
    requests = families["smi_proxy_requests"]
    assert requests.type == "counter"
    # Every request sample carries exactly these labels; a request web made to checkout-v2 these values.
    web_to_v2 = {
        "source_namespace": "shop",
        "source_workload": "web",
        "source_service_account": "web",
        "destination_namespace": "shop",
        "destination_service": "checkout",
        "backend_service": "checkout-v2",
        "destination_workload": "checkout-v2",
        "destination_pod": "checkout-v2-0",
        "status_class": "2xx",
        "denied": "false",
    }
    labels = set(web_to_v2)
    assert all(set(s.labels) == labels for s in requests.samples)
    allowed = [s for s in requests.samples if s.labels["backend_service"] == "checkout-v2"]
    assert allowed and allowed[0].labels == web_to_v2
    denied = [
        s
        for s in requests.samples
        if s.labels["denied"] == "true" and s.labels["source_workload"] == "crawler-0"
    ]
    assert denied and denied[0].labels["status_class"] == "4xx" and denied[0].value >= 2
    duration = families["smi_proxy_request_duration_seconds"]
    assert duration.type == "histogram"
    buckets = sorted(
        {s.labels["le"] for s in duration.samples if s.name.endswith("_bucket")}, key=lambda b: float(b)
    )
    assert [float(b) for b in buckets] == [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf"),
    ]  # fmt: skip
    # The request labels but the caller's ServiceAccount, the status class and denied; plus le.
    assert {k for s in duration.samples for k in s.labels} == (
        labels - {"source_service_account", "status_class", "denied"}
    ) | {"le"}
    tcp = families["smi_proxy_tcp_connections"]
    assert any(
        s.labels["destination_service"] == "catalog" and s.labels["denied"] == "false" for s in tcp.samples
    )
    transferred = families["smi_proxy_tcp_bytes"]
    assert {s.labels["direction"] for s in transferred.samples} == {"sent", "received"}
    assert "smi_proxy_upstream_failures" in families
    reloads = families["smi_proxy_config_reloads"]
    assert {s.labels["result"] for s in reloads.samples} == {"success", "failure"}
    info = families["smi_proxy_config_info"].samples[0]
    assert info.value == 1 and info.labels["version"] == "1" and info.labels["digest"].startswith("sha256:")


def test_admin_reports_health_readiness_and_config(bed: LoopbackBed) -> None:
    assert bed.proxy.admin("/healthz") == (200, "ok\n")
    assert bed.proxy.admin("/readyz") == (200, "ready\n")
    status, body = bed.proxy.admin("/config")
    assert status == 200 and '"version": "1"' in body and '"digest": "sha256:' in body
    assert bed.proxy.admin("/nothing")[0] == 404


# --- identity modes ------------------------------------------------------------------------------------------


ID_CATALOG = "127.0.6.20"


def test_header_identity_mode_trusts_the_header_and_strips_it(tmp_path: Path) -> None:
    with loopback_bed(manifests("127.0.6.", "127.0.60."), tmp_path, identity="header:x-smi-identity") as b:
        client = HTTPClient(ID_CATALOG, 8080)
        assert send(client, 1, path="/items", headers={"x-smi-identity": "shop/web"})[0][0] == 200
        assert b.fleet.seen[-1].path == "/items"
        assert all(name != "x-smi-identity" for name, _ in b.fleet.seen[-1].headers)
        spiffe = "spiffe://cluster.local/ns/shop/sa/web"
        assert (
            send(HTTPClient(ID_CATALOG, 8080), 1, path="/items", headers={"x-smi-identity": spiffe})[0][0]
            == 200
        )
        assert (
            send(HTTPClient(ID_CATALOG, 8080), 1, path="/items", headers={"x-smi-identity": "shop/crawler"})[
                0
            ][0]
            == 403
        )
        assert send(HTTPClient(ID_CATALOG, 8080), 1, path="/items")[0][0] == 403
        # TCP carries no headers: the caller is unauthenticated, hence denied.
        assert asyncio.run(tcp_exchange(ID_CATALOG, 9000)) == (False, "")
        assert "INSECURE" in b.proxy.log_text()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(
    directory: Path,
    stem: str,
    issuer: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None,
    uri: str | None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(stem))
        .issuer_name(issuer[1].subject if issuer else _name(stem))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    if uri:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri), x509.DNSName(stem)]),
            critical=False,
        )
    cert = builder.sign(issuer[0] if issuer else key, hashes.SHA256())
    (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{stem}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return key, cert


def _client_tls(directory: Path, stem: str | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(directory / "ca.pem")
    if stem:
        context.load_cert_chain(directory / f"{stem}.pem", directory / f"{stem}.key")
    return context


def test_mtls_identity_comes_from_the_client_certificate(tmp_path: Path) -> None:
    ca = _certificate(tmp_path, "ca", None, None)
    _certificate(tmp_path, "proxy", ca, "spiffe://cluster.local/ns/mesh/sa/smi-proxy")
    _certificate(tmp_path, "web", ca, "spiffe://cluster.local/ns/shop/sa/web")
    _certificate(tmp_path, "crawler", ca, "spiffe://cluster.local/ns/shop/sa/crawler")
    _certificate(tmp_path, "foreign", ca, "spiffe://other.domain/ns/shop/sa/web")
    rogue_ca = _certificate(tmp_path, "rogue-ca", None, None)
    _certificate(tmp_path, "rogue", rogue_ca, "spiffe://cluster.local/ns/shop/sa/web")
    args = [
        "--ca",
        str(tmp_path / "ca.pem"),
        "--cert",
        str(tmp_path / "proxy.pem"),
        "--key",
        str(tmp_path / "proxy.key"),
    ]
    with loopback_bed(manifests("127.0.6.", "127.0.60."), tmp_path, identity="mtls", proxy_args=args):

        def status(stem: str) -> int:
            return send(HTTPClient(ID_CATALOG, 8080, tls=_client_tls(tmp_path, stem)), 1, path="/items")[0][0]

        assert status("web") == 200
        assert status("crawler") == 403
        assert status("foreign") == 403  # another trust domain is no identity here

        def handshake_fails(stem: str | None) -> bool:
            try:
                send(HTTPClient(ID_CATALOG, 8080, tls=_client_tls(tmp_path, stem)), 1, path="/items")
            except (ssl.SSLError, ConnectionError, OSError, ConnectionClosed):
                # With TLS 1.3 the client finishes its handshake first and then sees the
                # proxy's alert as a closed connection.
                return True
            return False

        assert handshake_fails(None)  # no client certificate
        assert handshake_fails("rogue")  # signed by a CA the proxy does not trust

        tls = _client_tls(tmp_path, "web")
        tcp_over_tls = read_reply(ID_CATALOG, 9000, lambda r: r.readline(), 10, ssl=tls, server_hostname="")
        assert tcp_over_tls == b"catalog-0\n"
