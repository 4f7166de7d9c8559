"""Fetch a data URL without letting it reach into the server's own network.

A URL typed by a public-demo visitor must not become a request to the cloud metadata address,
a database on localhost or a router on the LAN (server-side request forgery). So, for every hop
(the first URL and each redirect):

1. the URL is checked: scheme in the policy, no ``user:password@``, a plain host name, a port the
   policy allows;
2. the host is resolved once, and EVERY address it resolves to must pass the policy's address
   predicate before any connection is made (one bad address refuses the URL: deny by default);
3. the connection goes to a vetted address, never to the name again (no DNS-rebinding window),
   while TLS's SNI and certificate check and the ``Host`` header use the original name.

Size is counted while the body streams in, and one deadline bounds the whole fetch (resolution,
connection, TLS, headers, body, redirects): a watchdog shuts the socket when it passes.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from core.errors import FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Decides, per resolved address, whether a connection to it is allowed.
AddressPolicy = Callable[[IPAddress], bool]
#: ``(host, port) -> addresses`` (strings); the default asks the system resolver (getaddrinfo).
Resolver = Callable[[str, int], Sequence[str]]
#: ``((ip, port), timeout) -> connected socket``; the default is ``socket.create_connection``.
Connector = Callable[[tuple[str, int], float], socket.socket]

DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 64 * 1024
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")

# Ranges refused by name (the reason goes into the message); anything else not globally routable
# is refused too, as "not a public address".
_SHARED_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, compatible, 6to4, Teredo, NAT64)."""
    found = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in _IPV4_COMPATIBLE:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if any(ip in net for net in _NAT64):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public internet address, as a phrase ("a loopback address"); None if it is."""
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in _embedded_ipv4(ip):
            reason = address_problem(inner)
            if reason is not None:
                return "an IPv6 form of " + reason
    checks = (
        ("a link-local address (the cloud metadata address is one)", ip.is_link_local),
        ("a shared (carrier-grade NAT) address", ip.version == 4 and ip in _SHARED_CGNAT),
        ("a private address", ip.is_private),
        ("a multicast address", ip.is_multicast),
        ("a reserved address", ip.is_reserved),
        ("a site-local address", ip.version == 6 and ip.is_site_local),
        ("not a public address", not ip.is_global),
    )
    return next((reason for reason, hit in checks if hit), None)


def is_public_address(ip: IPAddress) -> bool:
    """The demo's address policy: public internet addresses only."""
    return address_problem(ip) is None


def any_address(ip: IPAddress) -> bool:
    """The trusted local user's address policy: everything (their own network is theirs)."""
    return True


def default_port_only(scheme: str, port: int) -> bool:
    """The demo's port policy: 443 for https (80 for http), nothing else."""
    return DEFAULT_PORTS.get(scheme) == port


def any_port(scheme: str, port: int) -> bool:
    return True


@dataclass(frozen=True)
class FetchPolicy:
    """What a fetch may reach, and how much of it: one object per trust level."""

    schemes: frozenset[str] = frozenset({"https"})
    allow_address: AddressPolicy = is_public_address
    allow_port: Callable[[str, int], bool] = default_port_only
    max_bytes: int = 50_000_000
    timeout_s: float = 20.0
    max_redirects: int = 5


def demo_policy(max_bytes: int, timeout_s: float) -> FetchPolicy:
    """Public demo: https on port 443 to public addresses only."""
    return FetchPolicy(max_bytes=max_bytes, timeout_s=timeout_s)


def trusted_policy(max_bytes: int, timeout_s: float) -> FetchPolicy:
    """A trusted local user: http or https, any address and port; the size and time bounds stay."""
    return FetchPolicy(
        schemes=frozenset({"http", "https"}),
        allow_address=any_address,
        allow_port=any_port,
        max_bytes=max_bytes,
        timeout_s=timeout_s,
    )


@dataclass(frozen=True)
class Fetched:
    url: str  # where the body finally came from (after redirects)
    content: bytes
    content_type: str | None


def display_url(url: str, limit: int = 200) -> str:
    """A URL fit for a message: no user name or password, not endlessly long."""
    try:
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            url = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()
    except ValueError:
        pass
    url = "".join(ch if ch.isprintable() else "?" for ch in url)
    return url if len(url) <= limit else url[: limit - 3] + "..."


def _system_resolver(host: str, port: int) -> list[str]:
    # str(): typeshed also allows the (int, bytes) address of a Python built without IPv6.
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _system_connect(address: tuple[str, int], timeout: float) -> socket.socket:
    # Looked up at call time, so a test can replace socket.create_connection.
    return socket.create_connection(address, timeout=timeout)


class _NoReconnect:
    """http.client reconnects BY NAME when its socket is gone; that would re-resolve: refuse."""

    def connect(self) -> None:
        raise http.client.NotConnected("the vetted connection is closed")


class _PinnedHTTP(_NoReconnect, http.client.HTTPConnection):
    pass


class _PinnedHTTPS(_NoReconnect, http.client.HTTPSConnection):
    pass


class _Deadline:
    """One clock for the whole fetch, and a watchdog that shuts the current socket when it runs out."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = threading.Event()
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
        if sock is not None and self.expired.is_set():
            self._shut(sock)

    def _expire(self) -> None:
        self.expired.set()
        with self._lock:
            sock = self._sock
        if sock is not None:
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        # socket.socket's own shutdown, also for an SSLSocket: wakes a blocked read in another thread.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


@dataclass(frozen=True)
class _Target:
    url: str
    scheme: str
    host: str
    port: int
    path: str


class Fetcher:
    """Fetches one URL under a policy; ``resolve``, ``connect`` and ``ssl_context`` are replaceable."""

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        resolve: Resolver | None = None,
        connect: Connector | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.policy = policy
        self._resolve = resolve or _system_resolver
        self._connect = connect or _system_connect
        self._ssl_context = ssl_context

    # -- public ------------------------------------------------------------------------------

    def fetch(self, url: str) -> Fetched:
        """The body of ``url`` (status 200), following vetted redirects; FetchError otherwise."""
        deadline = _Deadline(self.policy.timeout_s)
        seen: set[str] = set()
        try:
            for _hop in range(self.policy.max_redirects + 1):
                target = self.vet_url(url)
                if target.url in seen:
                    raise FetchError(f"Refused the URL {display_url(url)}: its redirects go round in a loop")
                seen.add(target.url)
                fetched, location = self._one_hop(target, deadline)
                if fetched is not None:
                    return fetched
                url = urljoin(target.url, location)
            raise FetchError(f"Refused the URL {display_url(url)}: more than {self.policy.max_redirects} redirects")
        finally:
            deadline.cancel()

    def vet_url(self, url: str) -> _Target:
        """Scheme, userinfo, host and port checked against the policy (no network use)."""
        shown = display_url(url)
        if not isinstance(url, str) or not url.isprintable() or any(ch.isspace() for ch in url):
            raise FetchError(f"Refused the URL {shown}: it contains spaces or control characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise FetchError(f"Refused the URL {shown}: {exc}") from exc
        scheme = parts.scheme.lower()
        if scheme not in self.policy.schemes:
            allowed = " or ".join(f"{s}://" for s in sorted(self.policy.schemes))
            raise FetchError(f"Refused the URL {shown}: only {allowed} URLs are allowed here")
        if "@" in parts.netloc:
            raise FetchError(f"Refused the URL {shown}: URLs with a user name or password are not allowed")
        host = parts.hostname or ""
        if not host:
            raise FetchError(f"Refused the URL {shown}: it names no host")
        if not _is_ip_literal(host):
            try:
                host = host.encode("idna").decode("ascii").lower()
            except UnicodeError as exc:
                raise FetchError(f"Refused the URL {shown}: {host!r} is not a valid host name") from exc
            if not _HOST_NAME.match(host):
                raise FetchError(f"Refused the URL {shown}: {host!r} is not a valid host name")
        port = DEFAULT_PORTS[scheme] if port is None else port
        if not self.policy.allow_port(scheme, port):
            raise FetchError(f"Refused the URL {shown}: port {port} is not allowed here")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return _Target(url=url, scheme=scheme, host=host, port=port, path=path)

    def vet_addresses(self, target: _Target, deadline: _Deadline | None = None) -> list[IPAddress]:
        """Every address the host resolves to, each allowed by the policy (else FetchError)."""
        shown = display_url(target.url)
        if _is_ip_literal(target.host):
            raw: Sequence[str] = [target.host]
        else:
            raw = self._resolve_with_deadline(target, deadline)
        addresses: list[IPAddress] = []
        for text in raw:
            try:
                ip = ipaddress.ip_address(text)
            except ValueError as exc:
                raise FetchError(f"Refused the URL {shown}: {text!r} is not an IP address") from exc
            if not self.policy.allow_address(ip):
                reason = address_problem(ip) or "an address not allowed here"
                where = str(ip) if ip == _literal(target.host) else f"{target.host} resolves to {ip}, which"
                raise FetchError(f"Refused the URL {shown}: {where} is {reason}")
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise FetchError(f"Could not read the URL {shown}: {target.host} resolves to no address")
        return addresses

    # -- one request -------------------------------------------------------------------------

    def _resolve_with_deadline(self, target: _Target, deadline: _Deadline | None) -> Sequence[str]:
        shown = display_url(target.url)
        if deadline is None:
            try:
                return list(self._resolve(target.host, target.port))
            except OSError as exc:
                raise FetchError(f"Could not read the URL {shown}: {target.host} was not found ({exc})") from exc
        # getaddrinfo takes no timeout: wait for it in a thread, no longer than the deadline allows.
        box: dict[str, object] = {}

        def work() -> None:
            try:
                box["result"] = list(self._resolve(target.host, target.port))
            except Exception as exc:  # noqa: BLE001 - handed to the waiting thread
                box["error"] = exc

        worker = threading.Thread(target=work, daemon=True, name="modelshelf-resolve")
        worker.start()
        worker.join(self._remaining(deadline, target))
        if worker.is_alive():
            raise self._timeout(target)
        if "error" in box:
            error = box["error"]
            assert isinstance(error, BaseException)
            raise FetchError(f"Could not read the URL {shown}: {target.host} was not found ({error})") from error
        result = box["result"]
        assert isinstance(result, list)
        return result

    def _one_hop(self, target: _Target, deadline: _Deadline) -> tuple[Fetched | None, str]:
        """GET one vetted target: (the body, "") or (None, the redirect's Location)."""
        shown = display_url(target.url)
        addresses = self.vet_addresses(target, deadline)
        conn = None
        try:
            sock = self._open(target, addresses, deadline)
            cls = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
            conn = cls(target.host, target.port)
            conn.sock = sock
            conn.putrequest("GET", target.path, skip_accept_encoding=True)
            for name, value in (
                ("User-Agent", "ModelShelf"),
                ("Accept", "text/csv, text/plain;q=0.9, */*;q=0.5"),
                ("Accept-Encoding", "identity"),
                ("Connection", "close"),
            ):
                conn.putheader(name, value)
            conn.endheaders()
            response = conn.getresponse()
            if response.status in REDIRECTS:
                location = response.getheader("Location")
                if not location:
                    raise FetchError(f"Could not read the URL {shown}: a redirect without a Location")
                return None, location
            if response.status != 200:
                raise FetchError(
                    f"Could not read the URL {shown}: the server answered {response.status} {response.reason}"
                )
            body = self._read_body(response, target, deadline)
            return Fetched(target.url, body, response.getheader("Content-Type")), ""
        except FetchError:
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if deadline.expired.is_set() or isinstance(exc, TimeoutError):
                raise self._timeout(target) from exc
            raise FetchError(f"Could not read the URL {shown}: {_reason(exc)}") from exc
        finally:
            deadline.watch(None)
            if conn is not None:
                conn.close()

    def _open(self, target: _Target, addresses: list[IPAddress], deadline: _Deadline) -> socket.socket:
        """A connected (and for https, verified) socket to the first vetted address that answers."""
        last: OSError | None = None
        for ip in addresses:
            try:
                raw = self._connect((str(ip), target.port), self._remaining(deadline, target))
            except OSError as exc:
                last = exc
                continue
            deadline.watch(raw)
            raw.settimeout(self._remaining(deadline, target))
            if target.scheme != "https":
                return raw
            context = self._ssl_context or ssl.create_default_context()
            try:
                secure = context.wrap_socket(raw, server_hostname=target.host)
            except BaseException:
                raw.close()
                raise
            deadline.watch(secure)
            return secure
        assert last is not None
        raise last

    def _read_body(self, response: http.client.HTTPResponse, target: _Target, deadline: _Deadline) -> bytes:
        limit = self.policy.max_bytes
        declared = response.getheader("Content-Length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            raise self._too_large(target)
        parts: list[bytes] = []
        total = 0
        while True:
            self._remaining(deadline, target)
            chunk = response.read(min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise self._too_large(target)
            parts.append(chunk)
        if deadline.expired.is_set():
            raise self._timeout(target)  # the watchdog cut the body short
        return b"".join(parts)

    # -- messages ----------------------------------------------------------------------------

    def _remaining(self, deadline: _Deadline | None, target: _Target) -> float:
        if deadline is None:
            return self.policy.timeout_s
        try:
            return deadline.remaining()
        except TimeoutError as exc:
            raise self._timeout(target) from exc

    def _timeout(self, target: _Target) -> FetchError:
        return FetchError(
            f"Could not read the URL {display_url(target.url)}: it took longer than the limit of "
            f"{self.policy.timeout_s:g} s (MODELSHELF_URL_TIMEOUT_S)"
        )

    def _too_large(self, target: _Target) -> FetchError:
        return FetchError(
            f"Refused the URL {display_url(target.url)}: it is larger than the limit of "
            f"{self.policy.max_bytes:,} bytes (MODELSHELF_URL_MAX_MB)"
        )


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_ip_literal(host: str) -> bool:
    return _literal(host) is not None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"its certificate could not be verified ({exc.verify_message})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
