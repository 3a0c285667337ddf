"""Server-side request forgery guard for outbound webhooks (DESIGN §6).

A webhook URL is chosen by a client, and the service sends requests to it from
inside the operator's network. Without a guard, ``http://169.254.169.254/`` (the
cloud metadata service), ``http://10.0.0.5:5432`` or ``http://localhost:9090``
would let a client probe or poke internal systems. So:

1. :func:`resolve_and_vet` parses the URL with httpx's own parser (the parser
   that will send the request -- two different parsers disagreeing about the host
   is a classic SSRF bypass), allows only ``http``/``https`` without userinfo,
   resolves the host once, and refuses the URL if *any* address is not public
   (:func:`check_address`), unless an operator allowlist (e.g. ``127.0.0.0/8``
   in tests) permits it.
2. :func:`pinned_transport` connects only to those vetted addresses. Resolving
   again at connect time would open a DNS-rebinding gap: a hostile DNS server
   answers the check with a public address and the connection with
   ``127.0.0.1``. The transport keeps the URL's hostname for the ``Host`` header,
   TLS SNI and certificate verification, and only swaps the TCP destination.

Redirects are never followed (a 3xx could point anywhere); :func:`pinned_client`
builds a client configured that way.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

__all__ = [
    "IPAddress",
    "IPNetwork",
    "PinnedNetworkBackend",
    "Resolver",
    "UrlRefused",
    "VettedTarget",
    "check_address",
    "parse_allowed_networks",
    "pinned_client",
    "pinned_transport",
    "resolve_and_vet",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``async (host, port) -> addresses``; the default uses the event loop's getaddrinfo."""

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}
DEFAULT_RESOLVE_TIMEOUT = 10.0
# A delivery is one request: no keep-alive, so a pooled socket never outlives the
# vetting it was made under.
_DEFAULT_LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=0)

_PRIVATE_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("172.16.0.0/12"),
    ipaddress.ip_network("192.168.0.0/16"),
    ipaddress.ip_network("fc00::/7"),  # unique local addresses (ULA)
    ipaddress.ip_network("fec0::/10"),  # deprecated site-local, still routable in old LANs
)
# After httpx's IDNA encoding a host name is ASCII letters, digits, hyphens and
# dots (underscores occur in internal DNS); anything else cannot resolve sanely.
_HOSTNAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]{0,252}[a-z0-9_.])?")
_SHARED_NETWORK = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT
_NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix
_METADATA_ADDRESS = ipaddress.ip_address("169.254.169.254")


class UrlRefused(Exception):
    """A webhook URL that the service will not send to.

    ``reason`` is a stable machine code for API errors and attempt logs
    (``scheme_not_allowed``, ``credentials_in_url``, ``invalid_url``,
    ``unresolvable_host``, ``unspecified_address``, ``loopback_address``,
    ``link_local_address``, ``multicast_address``, ``private_address``,
    ``reserved_address``, ``non_public_address``); ``message`` says it in words.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"UrlRefused(reason={self.reason!r}, message={self.message!r})"


@dataclass(frozen=True, slots=True)
class VettedTarget:
    """A URL whose host resolved only to permitted addresses.

    ``host`` is the ASCII (IDNA-encoded, lower-case) host as httpx sends it, without
    IPv6 brackets; ``addresses`` are the vetted IPs in resolver order. Send the
    request to ``url`` through :func:`pinned_transport` so the connection goes to
    ``addresses`` and nowhere else.
    """

    url: str
    host: str
    port: int
    scheme: str
    addresses: tuple[str, ...]


def parse_allowed_networks(spec: str | Sequence[str]) -> tuple[IPNetwork, ...]:
    """Parse the outbound allowlist: CIDRs, comma-separated and/or as a list.

    ``""`` means no exception to the guard. A bare address is a one-host network
    (``127.0.0.1`` → ``127.0.0.1/32``). Host bits are tolerated
    (``127.0.0.1/8`` → ``127.0.0.0/8``): that is plainly what the operator meant.

    Raises:
        ValueError: naming the entry that is not a CIDR.
    """
    items: Iterable[str] = [spec] if isinstance(spec, str) else spec
    networks: list[IPNetwork] = []
    for item in items:
        for raw in item.split(","):
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as exc:
                raise ValueError(
                    f"invalid network {entry!r} in the outbound allowlist: expected a CIDR "
                    f"such as 127.0.0.0/8 or fd00::/8 ({exc})"
                ) from exc
    return tuple(networks)


def _refusal(ip: IPAddress) -> tuple[str, str] | None:
    """Return ``(reason, description)`` when ``ip`` is not a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        # Addresses that carry an IPv4 address inside are judged by it: on a
        # dual-stack host ::ffff:127.0.0.1 *is* 127.0.0.1, and a NAT64 or 6to4
        # gateway forwards to the embedded address.
        if ip.ipv4_mapped is not None:
            inner = _refusal(ip.ipv4_mapped)
            if inner is None:
                return None  # ::ffff:93.184.216.34 is 93.184.216.34: public
            return inner[0], f"{ip} is IPv4-mapped {ip.ipv4_mapped}, which {inner[1]}"
        if ip in _NAT64_PREFIX:
            # DNS64 synthesises these for every IPv4-only host on IPv6-only
            # networks, so a public embedded address must pass (64:ff9b::/96
            # sits inside the reserved ::/8 and would be refused below).
            nat64 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            inner = _refusal(nat64)
            if inner is None:
                return None
            return inner[0], f"{ip} is NAT64 for {nat64}, which {inner[1]}"
        if ip.sixtofour is not None:
            inner = _refusal(ip.sixtofour)
            if inner is not None:
                return inner[0], f"{ip} is 6to4 for {ip.sixtofour}, which {inner[1]}"
    if ip.is_unspecified:
        return "unspecified_address", "is the unspecified address"
    if ip.is_loopback:
        return "loopback_address", "is a loopback address"
    if ip.is_link_local:
        if ip == _METADATA_ADDRESS:
            return "link_local_address", "is the cloud metadata endpoint (link-local)"
        return "link_local_address", "is a link-local address"
    if ip.is_multicast:
        return "multicast_address", "is a multicast address"
    if any(ip in net for net in _PRIVATE_NETWORKS):
        return "private_address", "is a private address"
    if ip in _SHARED_NETWORK:
        return "private_address", "is in the carrier-grade NAT range 100.64.0.0/10"
    if ip.is_reserved:
        return "reserved_address", "is a reserved address"
    if not ip.is_global:
        # Documentation, benchmarking, protocol-assignment ranges and the like.
        return "non_public_address", "is not a public address"
    return None


def _allowed(ip: IPAddress, allowed: Sequence[IPNetwork]) -> bool:
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        candidates.append(ip.ipv4_mapped)
    return any(candidate in net for candidate in candidates for net in allowed)


def check_address(ip: IPAddress, allowed: Sequence[IPNetwork] = ()) -> None:
    """Raise :class:`UrlRefused` unless ``ip`` is public or inside ``allowed``.

    Refused: unspecified (0.0.0.0, ::), loopback, link-local (169.254.0.0/16 with
    the metadata service, fe80::/10), multicast, private (RFC 1918, ULA fc00::/7,
    site-local), carrier-grade NAT 100.64.0.0/10, reserved (240.0.0.0/4, ::/8 …),
    any other non-global range (documentation, benchmarking), and IPv6 forms that
    embed such an IPv4 address (IPv4-mapped, NAT64, 6to4).
    """
    if _allowed(ip, allowed):
        return
    refusal = _refusal(ip)
    if refusal is None:
        return
    reason, description = refusal
    if not description.startswith(str(ip)):
        description = f"{ip} {description}"
    raise UrlRefused(
        reason,
        f"{description}; webhooks may only target public addresses "
        "unless the outbound allowlist permits it",
    )


async def _default_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(sockaddr[0]) for *_, sockaddr in infos]


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


async def resolve_and_vet(
    url: str,
    allowed: Sequence[IPNetwork] = (),
    *,
    resolver: Resolver | None = None,
    resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT,
) -> VettedTarget:
    """Vet ``url`` for sending: scheme, userinfo, and every address of its host.

    An IP-literal host is checked as is; a name is resolved once (``resolver`` is
    injectable for tests) and refused if *any* of its addresses is refused, since
    we cannot know which one a later connection would pick. The result pins those
    addresses for :func:`pinned_transport`.

    Raises:
        UrlRefused: with ``reason`` saying why.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise UrlRefused("invalid_url", f"not a valid URL: {exc}") from exc
    scheme = parsed.scheme
    if scheme not in ALLOWED_SCHEMES:
        raise UrlRefused(
            "scheme_not_allowed",
            f"scheme {scheme!r} is not allowed; webhook URLs must use http or https",
        )
    if parsed.userinfo:
        raise UrlRefused(
            "credentials_in_url",
            "webhook URLs must not carry a user name or password; use the subscription "
            "secret for authentication",
        )
    host = parsed.raw_host.decode("ascii").lower()
    if not host:
        raise UrlRefused("invalid_url", "the URL has no host")
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise UrlRefused("invalid_url", f"port {port} is out of range")

    literal = _parse_ip(host)
    if literal is not None:
        check_address(literal, allowed)
        return VettedTarget(url, host, port, scheme, (str(literal),))

    if not _HOSTNAME.fullmatch(host):
        raise UrlRefused("invalid_url", f"{host!r} is not a valid host name")
    resolve = resolver if resolver is not None else _default_resolver
    try:
        async with asyncio.timeout(resolve_timeout):
            raw_addresses = await resolve(host, port)
    except TimeoutError as exc:
        raise UrlRefused("unresolvable_host", f"resolving {host!r} timed out") from exc
    except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
        raise UrlRefused("unresolvable_host", f"cannot resolve {host!r}: {exc}") from exc

    addresses: list[str] = []
    for raw in raw_addresses:
        ip = _parse_ip(raw)
        if ip is None:
            raise UrlRefused(
                "unresolvable_host", f"{host!r} resolved to {raw!r}, which is not an IP address"
            )
        try:
            check_address(ip, allowed)
        except UrlRefused as exc:
            raise UrlRefused(exc.reason, f"{host} resolves to {exc.message}") from None
        if str(ip) not in addresses:
            addresses.append(str(ip))
    if not addresses:
        raise UrlRefused("unresolvable_host", f"{host!r} has no addresses")
    return VettedTarget(url, host, port, scheme, tuple(addresses))


class PinnedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore backend that dials only the vetted addresses of one target.

    httpcore asks the backend to ``connect_tcp(host, port)`` with the URL's host,
    then starts TLS with ``server_hostname`` = that same host. Swapping only the
    TCP destination here therefore keeps the ``Host`` header, SNI and certificate
    checks on the original name while making a second DNS lookup impossible.

    A connection to any other host or port (a proxy picked up from the
    environment, a redirect followed by mistake) is refused outright.
    """

    def __init__(
        self, target: VettedTarget, backend: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._target = target
        self._backend = backend if backend is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 -- httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        target = self._target
        if host.lower() != target.host or port != target.port:
            raise httpcore.ConnectError(
                f"refusing to connect to {host}:{port}: only the vetted target "
                f"{target.host}:{target.port} is allowed"
            )
        options = list(socket_options) if socket_options is not None else None
        last_error: Exception | None = None
        for address in target.addresses:
            try:
                return await self._backend.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc  # try the next vetted address, as a resolver would
        assert last_error is not None  # addresses is never empty
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 -- httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes milliseconds; one verifying context serves every
    # delivery (SSLContext is safe to share between connections).
    return httpx.create_ssl_context(verify=True, trust_env=False)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connection pool uses the pinned backend.

    httpx does not expose the pool's network backend, so after the normal set-up
    the pool is replaced by one built with :class:`PinnedNetworkBackend`. httpx is
    pinned below 1.0, and the loopback tests in ``tests/webhooks/test_ssrf.py`` fail
    loudly if this ever stops routing through the backend.
    """

    def __init__(
        self,
        target: VettedTarget,
        *,
        verify: ssl.SSLContext | bool = True,
        cert: Any = None,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = _DEFAULT_LIMITS,
        retries: int = 0,
        socket_options: Iterable[Any] | None = None,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        if verify is True and cert is None:
            ssl_context = _default_ssl_context()
        else:
            ssl_context = httpx.create_ssl_context(verify=verify, cert=cert, trust_env=False)
        super().__init__(
            verify=ssl_context,
            trust_env=False,
            http1=http1,
            http2=http2,
            limits=limits,
            retries=retries,
            socket_options=socket_options,
        )
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=http1,
            http2=http2,
            retries=retries,
            socket_options=socket_options,
            network_backend=PinnedNetworkBackend(target, backend),
        )


def pinned_transport(target: VettedTarget, **kwargs: Any) -> httpx.AsyncHTTPTransport:
    """Return an httpx transport that connects only to ``target.addresses``.

    ``kwargs``: ``verify`` (bool or ``ssl.SSLContext``), ``cert``, ``http1``,
    ``http2``, ``limits``, ``retries``, ``socket_options``, ``backend`` (the inner
    httpcore backend, default AnyIO). Proxies are deliberately not supported: a
    proxy would make the connection on our behalf to wherever it resolves.
    Keep-alive is off by default (see ``_DEFAULT_LIMITS``).
    """
    return _PinnedTransport(target, **kwargs)


def pinned_client(
    target: VettedTarget,
    *,
    timeout: httpx.Timeout | float = 10.0,
    **transport_kwargs: Any,
) -> httpx.AsyncClient:
    """Return an ``AsyncClient`` for one delivery to ``target``.

    Redirects are not followed and the environment is ignored (``trust_env=False``,
    so no ``HTTP(S)_PROXY`` can reroute the request and no ``.netrc`` adds
    credentials). Use it as ``async with pinned_client(t) as c: await c.post(t.url, …)``.
    """
    return httpx.AsyncClient(
        transport=pinned_transport(target, **transport_kwargs),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
