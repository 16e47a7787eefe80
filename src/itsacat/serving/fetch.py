"""Fetching a picture from a URL without letting the URL reach places it should not.

The service fetches `{"url": …}` and `GET /image?image=URL` itself, so a URL must not turn it
into a proxy towards the machine or its private network. Rules:

- only http and https, no user name or password, a port between 1 and 65535;
- the host's address must be a global unicast address, whether the URL gives it literally
  (also in the legacy decimal, octal and hex IPv4 forms that `inet_aton` accepts) or as a
  name. Loopback, private, link-local, multicast, shared (carrier-grade NAT), reserved and
  unspecified addresses are rejected, and so are IPv6 addresses that embed such an IPv4
  address (mapped, 6to4, NAT64);
- the name is resolved once per connection and the connection goes to the address that was
  checked, so a second DNS answer (DNS rebinding) is never used; the peer address of the
  socket is checked again after connecting;
- at most `max_redirects` redirects, each target checked by the same rules before it is
  requested;
- a connect timeout, a read timeout and an overall deadline for the whole fetch, redirects
  included, so a server that trickles one byte at a time is cut off too;
- a byte cap counted while streaming, so a huge body is never buffered whole.

An allow-list (`ITSACAT_FETCH_ALLOW`, `--fetch-allow`) lets a user permit networks, optionally
one port of them, on purpose: `127.0.0.1/32`, `10.0.0.0/8`, `127.0.0.1/32:8081`.
Proxy settings from the environment are ignored, because a proxy would connect on the
service's behalf to addresses this module never sees.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpcore

from itsacat.errors import ItsacatError
from itsacat.serving.errors import (
    ADDRESS_NOT_ALLOWED,
    FETCH_FAILED,
    FETCH_TIMED_OUT,
    HOST_NOT_FOUND,
    REMOTE_TOO_LARGE,
    TOO_MANY_REDIRECTS,
    URL_CREDENTIALS_NOT_ALLOWED,
    URL_INVALID,
    URL_SCHEME_NOT_ALLOWED,
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Every form `inet_aton` reads as IPv4: 1 to 4 parts, each decimal, octal (leading 0) or hex.
LEGACY_IPV4 = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?", re.IGNORECASE)
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
LOOPBACK_NAMES = ("localhost", "localhost.")
TIMEOUT_PHASES = {
    httpcore.ConnectTimeout: "connecting", httpcore.ReadTimeout: "waiting for data",
    httpcore.WriteTimeout: "sending the request", httpcore.PoolTimeout: "waiting for a "
    "connection"}


@dataclass(frozen=True)
class AllowRule:
    """A network the user permits on purpose, optionally only on one port."""

    network: Network
    port: int | None = None

    def permits(self, address: Address, port: int) -> bool:
        return address in self.network and self.port in (None, port)

    def __str__(self) -> str:
        return str(self.network) if self.port is None else f"{self.network}:{self.port}"


@dataclass(frozen=True)
class FetchPolicy:
    """Limits of one URL fetch; times in seconds, sizes in bytes."""

    allow: tuple[AllowRule, ...] = ()
    connect_timeout: float = 3.0
    read_timeout: float = 5.0
    total_timeout: float = 10.0  # the deadline of the whole fetch, redirects included
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 3


@dataclass(frozen=True)
class Target:
    """A checked URL, split into what a request needs."""

    url: str
    scheme: str
    host: str  # lowercase, IDNA-encoded, without brackets
    port: int
    target: str  # path and query
    address: Address | None  # when the host is an address literal

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


class AddressRejected(Exception):
    """Raised inside the connection layer; `fetch_image` turns it into ADDRESS_NOT_ALLOWED."""

    def __init__(self, host: str, address: Address, kind: str):
        super().__init__(f"{host} ({address}) is {kind}")
        self.host = host
        self.address = address
        self.kind = kind


class HostNotFound(Exception):
    """Raised inside the connection layer when the name has no address."""


def parse_allow_list(text: str) -> tuple[AllowRule, ...]:
    """Parse a comma-separated allow-list: `NETWORK` or `NETWORK/PREFIX:PORT` entries."""
    rules = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        network_text, port = entry, None
        with_port = re.fullmatch(r"(.+/\d+):(\d+)", entry)
        if with_port:
            network_text, port = with_port.group(1), int(with_port.group(2))
        try:
            network = ipaddress.ip_network(network_text.strip("[]"), strict=False)
        except ValueError:
            raise ItsacatError("invalid_setting", f"fetch allow-list entry {entry!r} is not a "
                               "network; write 127.0.0.1/32, 10.0.0.0/8 or, for one port, "
                               "127.0.0.1/32:8081") from None
        if port is not None and not 1 <= port <= 65535:
            raise ItsacatError("invalid_setting", f"fetch allow-list entry {entry!r}: port "
                               f"{port} is not between 1 and 65535")
        rules.append(AllowRule(network, port))
    return tuple(rules)


def address_kind(address: Address) -> str | None:
    """Describe why an address must not be fetched from, or return None for a global one."""
    if address.version == 6:
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_kind(embedded)
    checks = (
        (address.is_unspecified, "the unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address in SHARED_ADDRESS_SPACE, "a shared (carrier-grade NAT) address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "a non-global address"),
    )
    return next((kind for matched, kind in checks if matched), None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address that an IPv4-mapped, 6to4 or NAT64 address reaches, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def rejection_kind(address: Address, port: int, policy: FetchPolicy) -> str | None:
    """Return why `address:port` is rejected under `policy`, or None when it may be fetched."""
    if any(rule.permits(address, port) for rule in policy.allow):
        return None
    return address_kind(address)


def parse_host_address(host: str) -> Address | None:
    """Read a host as an IP address, legacy IPv4 forms included; None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            raise ValueError(f"{host!r} looks like an IPv4 address but is not one") from None
    return None


def validate_url(url: str, policy: FetchPolicy) -> Target:
    """Check a URL by the rules of this module without any network access.

    Hosts given as names are checked again when they are resolved, at connection time.
    Raises a `ServingError` naming the URL and the rule it breaks.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise URL_INVALID.error(url=url, reason=str(error)) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise URL_SCHEME_NOT_ALLOWED.error(url=url, scheme=scheme or "(none)")
    if parts.username is not None or parts.password is not None:
        raise URL_CREDENTIALS_NOT_ALLOWED.error(url=url)
    if not parts.hostname:
        raise URL_INVALID.error(url=url, reason="it has no host")
    if port == 0:
        raise URL_INVALID.error(url=url, reason="port 0 is not a valid port")
    port = port or DEFAULT_PORTS[scheme]

    try:
        host = parts.hostname.encode("idna").decode("ascii")
        address = parse_host_address(host)
    except (UnicodeError, ValueError) as error:
        raise URL_INVALID.error(url=url, reason=str(error)) from None

    # "localhost" resolves to loopback by definition (RFC 6761), so it is checked without DNS.
    checked = address
    if address is None and (host in LOOPBACK_NAMES or host.rstrip(".").endswith(".localhost")):
        checked = ipaddress.IPv4Address("127.0.0.1")
    if checked is not None:
        kind = rejection_kind(checked, port, policy)
        if kind is not None:
            raise _address_error(url, host, checked, kind)

    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, scheme, host, port, target, address)


def _address_error(url: str, host: str, address: Address, kind: str) -> ItsacatError:
    try:
        literal = ipaddress.ip_address(host.strip("[]")) == address
    except ValueError:
        literal = False
    where = host if literal else f"{host}, which resolves to {address},"
    return ADDRESS_NOT_ALLOWED.error(url=url, target=where, kind=kind)


async def resolve_host(host: str, port: int) -> list[str]:
    """Resolve a name with the system resolver and return its addresses in the order given."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that resolves once, checks, and connects to that address.

    TLS still verifies the certificate against the host name, because httpcore passes the
    URL's host, not the address, as the server name when it starts TLS.
    """

    def __init__(self, policy: FetchPolicy, resolver: Resolver = resolve_host,
                 inner: httpcore.AsyncNetworkBackend | None = None):
        self.policy = policy
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None, socket_options=None
                          ) -> httpcore.AsyncNetworkStream:
        address = await self._checked_address(host, port)
        stream = await self.inner.connect_tcp(str(address), port, timeout=timeout,
                                              local_address=local_address,
                                              socket_options=socket_options)

        peer = stream.get_extra_info("server_addr")
        if peer is None or ipaddress.ip_address(peer[0]) != address:
            await stream.aclose()
            reached = peer[0] if peer else "unknown"
            raise AddressRejected(host, address, f"not the address the connection reached "
                                  f"({reached})")
        return stream

    async def _checked_address(self, host: str, port: int) -> Address:
        """Resolve `host` once and check every address it has; return the first."""
        literal = parse_host_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                answers = await self.resolver(host, port)
            except (OSError, UnicodeError) as error:
                raise HostNotFound(str(error)) from None
            addresses = [ipaddress.ip_address(answer.split("%")[0]) for answer in answers]
        if not addresses:
            raise HostNotFound("no address")

        # A name with one private address among public ones is rejected as a whole, because
        # its owner controls which address a later lookup lists first.
        for address in addresses:
            kind = rejection_kind(address, port, self.policy)
            if kind is not None:
                raise AddressRejected(host, address, kind)
        return addresses[0]

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


async def fetch_image(url: str, policy: FetchPolicy, resolver: Resolver = resolve_host,
                      network: httpcore.AsyncNetworkBackend | None = None) -> bytes:
    """Fetch the body of `url` under `policy` and return it, following checked redirects.

    `resolver` and `network` (the backend that opens sockets once an address is checked)
    can be replaced, for tests. Raises a `ServingError` (400 or 413) naming the URL and what
    went wrong.
    """
    backend = GuardedNetworkBackend(policy, resolver, network)
    try:
        async with asyncio.timeout(policy.total_timeout):
            return await _fetch_following_redirects(url, policy, backend)
    except TimeoutError:
        raise FETCH_TIMED_OUT.error(url=url, seconds=policy.total_timeout,
                                    phase="the overall deadline passed") from None


async def _fetch_following_redirects(url: str, policy: FetchPolicy,
                                     backend: GuardedNetworkBackend) -> bytes:
    target = validate_url(url, policy)
    async with httpcore.AsyncConnectionPool(ssl_context=_ssl_context(),
                                            network_backend=backend, retries=0) as pool:
        for redirects in range(policy.max_redirects + 1):
            reply = await _request_once(pool, target, policy)
            if reply.location is None:
                return reply.body
            if redirects == policy.max_redirects:
                break
            target = validate_url(urljoin(target.url, reply.location), policy)
    raise TOO_MANY_REDIRECTS.error(url=url, limit=policy.max_redirects)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the system's CA certificates takes tens of milliseconds and blocks the event
    # loop, so it is done once. One SSLContext can serve many connections.
    return ssl.create_default_context()


@dataclass(frozen=True)
class _Reply:
    """One response: a redirect's location, or the body of a 200."""

    location: str | None = None
    body: bytes = b""


async def _request_once(pool: httpcore.AsyncConnectionPool, target: Target,
                        policy: FetchPolicy) -> _Reply:
    """GET one URL and return where it redirects to or its body."""
    url = httpcore.URL(scheme=target.scheme, host=target.host, port=target.port,
                       target=target.target)
    headers = [(b"Host", target.host_header.encode("ascii")), (b"Accept", b"image/*"),
               (b"User-Agent", b"itsacat-serving")]
    timeouts = {"connect": policy.connect_timeout, "read": policy.read_timeout,
                "write": policy.read_timeout, "pool": policy.connect_timeout}
    try:
        async with pool.stream("GET", url, headers=headers,
                               extensions={"timeout": timeouts}) as response:
            if response.status in REDIRECT_STATUSES:
                location = _header(response, b"location")
                if not location:
                    raise FETCH_FAILED.error(url=target.url, reason=f"HTTP {response.status} "
                                             "redirect without a Location header")
                return _Reply(location=location)
            if response.status != 200:
                raise FETCH_FAILED.error(url=target.url, reason=f"the server returned HTTP "
                                         f"{response.status}, expected 200")
            return _Reply(body=await _read_capped(response, target, policy.max_bytes))
    except AddressRejected as rejected:
        raise _address_error(target.url, rejected.host, rejected.address,
                             rejected.kind) from None
    except HostNotFound:
        raise HOST_NOT_FOUND.error(url=target.url, host=target.host) from None
    except httpcore.TimeoutException as error:
        phase = TIMEOUT_PHASES.get(type(error), "waiting")
        seconds = policy.connect_timeout if isinstance(error, httpcore.ConnectTimeout) else (
            policy.read_timeout)
        raise FETCH_TIMED_OUT.error(url=target.url, seconds=seconds, phase=phase) from None
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol,
            ssl.SSLError) as error:
        reason = str(error) or type(error).__name__
        raise FETCH_FAILED.error(url=target.url, reason=reason) from None


async def _read_capped(response: httpcore.Response, target: Target, limit: int) -> bytes:
    """Read a response body, stopping as soon as it passes `limit` bytes."""
    declared = _header(response, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise REMOTE_TOO_LARGE.error(url=target.url, limit=limit)
    body = bytearray()
    async for chunk in response.aiter_stream():
        body += chunk
        if len(body) > limit:
            raise REMOTE_TOO_LARGE.error(url=target.url, limit=limit)
    return bytes(body)


def _header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None
