"""SSRF guard: address classes, URL vetting, and the pinned (rebinding-proof) transport.

No traffic leaves the machine: names are resolved by injected resolvers, numeric
hosts by the C library without DNS, and every connection goes to a server the
test runs on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.webhooks import ssrf
from app.webhooks.ssrf import UrlRefused, VettedTarget

LOOPBACK = ssrf.parse_allowed_networks("127.0.0.0/8")


def resolver_for(answers: dict[str, Sequence[str]]) -> ssrf.Resolver:
    """An injected resolver: a fixed table, and a record of what was asked."""

    async def resolve(host: str, port: int) -> Sequence[str]:
        calls.append((host, port))
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    calls: list[tuple[str, int]] = []
    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


# --------------------------------------------------------------------------- allowlist


def test_parse_allowed_networks_forms() -> None:
    assert ssrf.parse_allowed_networks("") == ()
    assert ssrf.parse_allowed_networks(" , ") == ()
    assert ssrf.parse_allowed_networks([]) == ()
    assert ssrf.parse_allowed_networks("127.0.0.0/8, ::1") == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    assert ssrf.parse_allowed_networks(["10.0.0.0/8", "192.168.0.0/16,fd00::/8"]) == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.0.0/16"),
        ipaddress.ip_network("fd00::/8"),
    )
    # Host bits are forgiven: the operator plainly meant the network.
    assert ssrf.parse_allowed_networks("127.0.0.1/8") == (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.mark.parametrize("spec", ["10.0.0.0/33", "localhost", "127.0.0.0/8,nope", "::1/129"])
def test_parse_allowed_networks_rejects_garbage(spec: str) -> None:
    with pytest.raises(ValueError, match=r"invalid network .* in the outbound allowlist"):
        ssrf.parse_allowed_networks(spec)


# --------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.169.254", "link_local_address"),
        ("169.254.1.1", "link_local_address"),
        ("fe80::1", "link_local_address"),
        ("10.0.0.1", "private_address"),
        ("172.16.5.4", "private_address"),
        ("172.31.255.255", "private_address"),
        ("192.168.1.1", "private_address"),
        ("fd00::1", "private_address"),
        ("fc00::1", "private_address"),
        ("100.64.1.1", "private_address"),
        ("100.127.255.254", "private_address"),
        ("127.0.0.1", "loopback_address"),
        ("127.8.9.10", "loopback_address"),
        ("::1", "loopback_address"),
        ("::ffff:127.0.0.1", "loopback_address"),
        ("::ffff:169.254.169.254", "link_local_address"),
        ("::ffff:10.1.2.3", "private_address"),
        ("64:ff9b::7f00:1", "loopback_address"),
        ("2002:a00:1::1", "private_address"),
        ("0.0.0.0", "unspecified_address"),
        ("::", "unspecified_address"),
        ("224.0.0.1", "multicast_address"),
        ("239.255.255.250", "multicast_address"),
        ("ff02::1", "multicast_address"),
        ("240.0.0.1", "reserved_address"),
        ("255.255.255.255", "reserved_address"),
        ("192.0.2.10", "non_public_address"),
        ("198.18.0.1", "non_public_address"),
        ("2001:db8::1", "non_public_address"),
    ],
)
def test_check_address_refuses(address: str, reason: str) -> None:
    ip = ipaddress.ip_address(address)
    with pytest.raises(UrlRefused) as info:
        ssrf.check_address(ip, ())
    assert info.value.reason == reason
    assert str(ip) in info.value.message
    assert str(info.value) == info.value.message
    assert "public" in info.value.message


def test_metadata_endpoint_is_named() -> None:
    with pytest.raises(UrlRefused, match="metadata"):
        ssrf.check_address(ipaddress.ip_address("169.254.169.254"), ())


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "100.63.255.255",  # just below CGNAT
        "100.128.0.0",  # just above CGNAT
        "172.32.0.1",  # just above 172.16.0.0/12
        "2606:2800:220:1:248:1893:25c8:1946",
        "::ffff:93.184.216.34",
        "64:ff9b::5db8:d822",  # DNS64 for 93.184.216.34 on IPv6-only networks
    ],
)
def test_check_address_accepts_public(address: str) -> None:
    ssrf.check_address(ipaddress.ip_address(address), ())


def test_allowlist_permits_listed_ranges_only() -> None:
    ssrf.check_address(ipaddress.ip_address("127.0.0.1"), LOOPBACK)
    ssrf.check_address(ipaddress.ip_address("::ffff:127.0.0.1"), LOOPBACK)
    with pytest.raises(UrlRefused, match="private"):
        ssrf.check_address(ipaddress.ip_address("10.0.0.1"), LOOPBACK)
    with pytest.raises(UrlRefused, match="loopback"):
        ssrf.check_address(ipaddress.ip_address("::1"), LOOPBACK)
    ssrf.check_address(ipaddress.ip_address("::1"), ssrf.parse_allowed_networks("::1/128"))


def test_url_refused_repr() -> None:
    exc = UrlRefused("loopback_address", "127.0.0.1 is a loopback address")
    assert repr(exc) == (
        "UrlRefused(reason='loopback_address', message='127.0.0.1 is a loopback address')"
    )


# --------------------------------------------------------------------------- URL vetting


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/", "scheme_not_allowed"),
        ("file:///etc/passwd", "scheme_not_allowed"),
        ("gopher://example.com:70/", "scheme_not_allowed"),
        ("example.com/hook", "scheme_not_allowed"),
        ("http://user:pw@example.com/", "credentials_in_url"),
        ("https://token@example.com/", "credentials_in_url"),
        ("http:///no-host", "invalid_url"),
        ("http://example.com:99999/", "invalid_url"),
        ("http://exa mple.com/", "invalid_url"),
    ],
)
async def test_resolve_and_vet_refuses_bad_urls(url: str, reason: str) -> None:
    resolver = resolver_for({"example.com": ["93.184.216.34"]})
    with pytest.raises(UrlRefused) as info:
        await ssrf.resolve_and_vet(url, (), resolver=resolver)
    assert info.value.reason == reason


async def test_resolve_and_vet_public_host() -> None:
    resolver = resolver_for({"example.com": ["93.184.216.34", "2606:2800:220:1::1"]})
    target = await ssrf.resolve_and_vet(
        "https://Example.COM/hooks/refund?x=1", (), resolver=resolver
    )
    assert target == VettedTarget(
        url="https://Example.COM/hooks/refund?x=1",
        host="example.com",
        port=443,
        scheme="https",
        addresses=("93.184.216.34", "2606:2800:220:1::1"),
    )
    assert resolver.calls == [("example.com", 443)]  # type: ignore[attr-defined]


async def test_resolve_and_vet_ports_and_dedup() -> None:
    resolver = resolver_for({"example.com": ["93.184.216.34", "93.184.216.34"]})
    target = await ssrf.resolve_and_vet("http://example.com/", (), resolver=resolver)
    assert (target.port, target.addresses) == (80, ("93.184.216.34",))
    target = await ssrf.resolve_and_vet("http://example.com:8443/", (), resolver=resolver)
    assert target.port == 8443


async def test_idna_host_is_resolved_as_punycode() -> None:
    resolver = resolver_for({"xn--bcher-kva.de": ["93.184.216.34"]})
    target = await ssrf.resolve_and_vet("https://bücher.de/", (), resolver=resolver)
    assert target.host == "xn--bcher-kva.de"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (["169.254.169.254"], "link_local_address"),
        (["10.0.0.1"], "private_address"),
        (["100.64.1.1"], "private_address"),
        (["::1"], "loopback_address"),
        (["::ffff:127.0.0.1"], "loopback_address"),
        (["0.0.0.0"], "unspecified_address"),
        (["224.0.0.1"], "multicast_address"),
        # One bad address among good ones is enough: a later connection could pick it.
        (["93.184.216.34", "10.0.0.1"], "private_address"),
        (["2606:2800:220:1::1", "fe80::1"], "link_local_address"),
    ],
)
async def test_resolve_and_vet_refuses_internal_answers(answer: list[str], reason: str) -> None:
    resolver = resolver_for({"hook.example": answer})
    with pytest.raises(UrlRefused) as info:
        await ssrf.resolve_and_vet("https://hook.example/x", (), resolver=resolver)
    assert info.value.reason == reason
    assert info.value.message.startswith("hook.example resolves to ")


async def test_loopback_allowed_when_listed() -> None:
    resolver = resolver_for({"receiver.test": ["127.0.0.1"]})
    target = await ssrf.resolve_and_vet("http://receiver.test:8080/", LOOPBACK, resolver=resolver)
    assert target.addresses == ("127.0.0.1",)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link_local_address"),
        ("http://10.0.0.1/", "private_address"),
        ("http://100.64.1.1/", "private_address"),
        ("http://[::1]:8080/", "loopback_address"),
        ("http://[::ffff:127.0.0.1]/", "loopback_address"),
        ("http://0.0.0.0:80/", "unspecified_address"),
        ("http://224.0.0.1/", "multicast_address"),
    ],
)
async def test_ip_literals_are_checked_without_resolving(url: str, reason: str) -> None:
    resolver = resolver_for({})
    with pytest.raises(UrlRefused) as info:
        await ssrf.resolve_and_vet(url, (), resolver=resolver)
    assert info.value.reason == reason
    assert resolver.calls == []  # type: ignore[attr-defined]


async def test_public_ip_literal_accepted() -> None:
    target = await ssrf.resolve_and_vet("https://93.184.216.34/hook", (), resolver=resolver_for({}))
    assert target.addresses == ("93.184.216.34",)
    assert target.host == "93.184.216.34"
    target = await ssrf.resolve_and_vet("http://[2606:2800:220:1::1]:81/", ())
    assert (target.host, target.port) == ("2606:2800:220:1::1", 81)


@pytest.mark.parametrize("url", ["http://2130706433/", "http://0x7f.1/", "http://127.1/"])
async def test_odd_numeric_hosts_are_caught_by_resolution(url: str) -> None:
    """Decimal/hex/short IPv4 forms are names to httpx but 127.0.0.1 to the C library.

    They go through the real resolver here: numeric forms never reach DNS.
    """
    with pytest.raises(UrlRefused) as info:
        await ssrf.resolve_and_vet(url, ())
    assert info.value.reason == "loopback_address"


async def test_unresolvable_hosts() -> None:
    with pytest.raises(UrlRefused) as info:
        await ssrf.resolve_and_vet("https://nowhere.test/", (), resolver=resolver_for({}))
    assert info.value.reason == "unresolvable_host"

    with pytest.raises(UrlRefused) as info:
        await ssrf.resolve_and_vet(
            "https://empty.test/", (), resolver=resolver_for({"empty.test": []})
        )
    assert info.value.reason == "unresolvable_host"

    with pytest.raises(UrlRefused) as info:
        await ssrf.resolve_and_vet(
            "https://weird.test/", (), resolver=resolver_for({"weird.test": ["not-an-ip"]})
        )
    assert info.value.reason == "unresolvable_host"


async def test_resolution_timeout() -> None:
    async def slow(host: str, port: int) -> Sequence[str]:
        await asyncio.sleep(5)
        return ["93.184.216.34"]

    with pytest.raises(UrlRefused) as info:
        await ssrf.resolve_and_vet("https://slow.test/", (), resolver=slow, resolve_timeout=0.05)
    assert info.value.reason == "unresolvable_host"
    assert "timed out" in info.value.message


# --------------------------------------------------------------------------- pinned transport


@dataclass
class Seen:
    requests: list[dict[str, Any]] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)


@asynccontextmanager
async def loopback_server(
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[tuple[int, Seen]]:
    """A tiny HTTP/1.1 responder on 127.0.0.1 that records what it receives."""
    seen = Seen()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, value in (line.split(":", 1) for line in lines[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            seen.requests.append(
                {"method": method, "target": target, "headers": headers, "body": body}
            )
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                b"Content-Length: 2\r\nConnection: close\r\n\r\nok"
            )
            await writer.drain()
        finally:
            writer.close()
            with suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_context)
    port = server.sockets[0].getsockname()[1]
    try:
        async with asyncio.timeout(20):
            yield port, seen
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail any name lookup (numeric ones are local and still allowed)."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        text = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ipaddress.ip_address(text)
        except ValueError:
            asked.append(text)
            raise socket.gaierror(socket.EAI_NONAME, f"DNS is off in this test ({text})") from None
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return asked


async def test_pinned_request_reaches_vetted_ip_with_original_host(no_dns: list[str]) -> None:
    async with loopback_server() as (port, seen):
        target = await ssrf.resolve_and_vet(
            f"http://example.test:{port}/hooks/a?b=1",
            LOOPBACK,
            resolver=resolver_for({"example.test": ["127.0.0.1"]}),
        )
        async with ssrf.pinned_client(target, timeout=5) as client:
            response = await client.post(target.url, content=b'{"x":1}')
    assert response.status_code == 200
    assert response.text == "ok"
    [request] = seen.requests
    assert request["method"] == "POST"
    assert request["target"] == "/hooks/a?b=1"
    assert request["headers"]["host"] == f"example.test:{port}"
    assert request["body"] == b'{"x":1}'
    assert no_dns == []  # the name was never looked up again: no rebinding window


async def test_pinned_transport_refuses_other_hosts_and_ports(no_dns: list[str]) -> None:
    async with loopback_server() as (port, seen):
        target = VettedTarget(
            f"http://example.test:{port}/", "example.test", port, "http", ("127.0.0.1",)
        )
        async with ssrf.pinned_client(target, timeout=5) as client:
            with pytest.raises(httpx.ConnectError, match="only the vetted target"):
                await client.get(f"http://other.test:{port}/")
            with pytest.raises(httpx.ConnectError, match="only the vetted target"):
                await client.get(f"http://example.test:{port + 1}/")
    assert seen.requests == []
    assert no_dns == []


async def test_pinned_transport_does_not_follow_redirects() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\n"
            b"Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        target = VettedTarget(
            f"http://example.test:{port}/", "example.test", port, "http", ("127.0.0.1",)
        )
        async with asyncio.timeout(10), ssrf.pinned_client(target, timeout=5) as client:
            response = await client.get(target.url)
        assert response.status_code == 302
        assert response.next_request is not None  # offered, not taken
    finally:
        server.close()
        await server.wait_closed()


async def test_pinned_transport_falls_back_to_next_vetted_address() -> None:
    async with loopback_server() as (port, seen):
        # Nothing listens on 127.0.0.2:port (Linux answers for all of 127/8).
        target = VettedTarget(
            f"http://example.test:{port}/", "example.test", port, "http", ("127.0.0.2", "127.0.0.1")
        )
        async with ssrf.pinned_client(target, timeout=5) as client:
            response = await client.get(target.url)
    assert response.status_code == 200
    assert len(seen.requests) == 1


async def test_pinned_transport_reports_when_no_address_answers() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # the port is now free: connections are refused
    target = VettedTarget(
        f"http://example.test:{port}/", "example.test", port, "http", ("127.0.0.1",)
    )
    async with asyncio.timeout(10), ssrf.pinned_client(target, timeout=5) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(target.url)


def test_pinned_transport_is_an_httpx_transport() -> None:
    target = VettedTarget("https://example.test/", "example.test", 443, "https", ("127.0.0.1",))
    assert isinstance(ssrf.pinned_transport(target), httpx.AsyncHTTPTransport)
    assert isinstance(ssrf.pinned_transport(target, verify=False), httpx.AsyncHTTPTransport)


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for example.test (needs the openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI not available to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=example.test",
            "-addext",
            "subjectAltName=DNS:example.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def _server_context(cert: Path, key: Path, seen_names: list[str | None]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def remember(sock: Any, server_name: str | None, ctx: ssl.SSLContext) -> None:
        seen_names.append(server_name)

    context.sni_callback = remember
    return context


async def test_tls_uses_original_hostname_for_sni_and_verification(
    tls_files: tuple[Path, Path],
) -> None:
    cert, key = tls_files
    names: list[str | None] = []
    client_context = ssl.create_default_context(cafile=str(cert))
    async with loopback_server(_server_context(cert, key, names)) as (port, seen):
        target = await ssrf.resolve_and_vet(
            f"https://example.test:{port}/secure",
            LOOPBACK,
            resolver=resolver_for({"example.test": ["127.0.0.1"]}),
        )
        async with ssrf.pinned_client(target, timeout=5, verify=client_context) as client:
            response = await client.post(target.url, content=b"{}")
    assert response.status_code == 200
    assert names == ["example.test"]
    assert seen.requests[0]["headers"]["host"] == f"example.test:{port}"


async def test_tls_certificate_must_match_the_url_host(tls_files: tuple[Path, Path]) -> None:
    """Pinning the IP must not weaken verification: the cert is for example.test only."""
    cert, key = tls_files
    names: list[str | None] = []
    client_context = ssl.create_default_context(cafile=str(cert))
    async with loopback_server(_server_context(cert, key, names)) as (port, seen):
        target = await ssrf.resolve_and_vet(
            f"https://impostor.test:{port}/",
            LOOPBACK,
            resolver=resolver_for({"impostor.test": ["127.0.0.1"]}),
        )
        async with ssrf.pinned_client(target, timeout=5, verify=client_context) as client:
            with pytest.raises(httpx.ConnectError, match=r"CERTIFICATE_VERIFY_FAILED|match"):
                await client.get(target.url)
    assert names == ["impostor.test"]
    assert seen.requests == []
