"""core.fetch and data sources in the public demo: nothing inside the server's network is reachable.

Every refusal of an internal address is proven BEFORE any connection: the connection factory fails
the test if it is called, and names are resolved by stub resolvers, never by real DNS. Real
traffic only goes to servers these tests start on 127.0.0.1 (HTTPS with a certificate authority
made here, and plain HTTP), admitted by a test policy that allows 127.0.0.1 and nothing else.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import pytest
import streamlit as st
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.cli import main
from core.datasets import DEMO_REFUSAL, SourceAccess, load_dataset, load_frame
from core.errors import DatasetError, FetchError, InvalidParameterError
from core.fetch import Fetcher, FetchPolicy, address_problem, any_port, demo_policy, is_public_address
from core.settings import Settings, load_settings

LOOPBACK = ipaddress.ip_address("127.0.0.1")
CSV = b"a,b,label\n1,2,yes\n3,4,no\n5,6,yes\n7,8,no\n"


# -- guards: no connection, no real DNS ---------------------------------------------------------


def never_connect(address, timeout):
    raise AssertionError(f"a connection to {address} was attempted")


def never_resolve(host, port):
    raise AssertionError(f"{host} was resolved")


def stub_resolver(table: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything opens a connection or asks the system resolver."""
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network use was attempted: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.fixture
def demo(monkeypatch):
    monkeypatch.setenv("MODELSHELF_DEMO", "1")


# -- the address policy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "link-local"),
        ("169.254.0.1", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "private"),  # reserved, listed among Python's private ranges
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "IPv6 form of a loopback"),
        ("::ffff:169.254.169.254", "IPv6 form of a link-local"),
        ("::ffff:10.0.0.1", "IPv6 form of a private"),
        ("::ffff:100.64.0.1", "IPv6 form of a shared"),
        ("::ffff:0.0.0.0", "IPv6 form of the unspecified"),
        ("::127.0.0.1", "IPv6 form of a loopback"),  # IPv4-compatible
        ("64:ff9b::a9fe:a9fe", "IPv6 form of a link-local"),  # NAT64
        ("2002:a9fe:a9fe::1", "IPv6 form of a link-local"),  # 6to4
        ("fec0::1", "site-local"),
        ("192.0.2.1", "private"),  # documentation range: not public either
    ],
)
def test_internal_addresses_are_not_public(address, reason):
    ip = ipaddress.ip_address(address)
    assert not is_public_address(ip)
    assert reason in address_problem(ip)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "151.101.0.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert is_public_address(ipaddress.ip_address(address))


# -- demo policy: refused before any connection -------------------------------------------------

INTERNAL_NAMES = {
    "metadata.example": ["169.254.169.254"],
    "loop.example": ["127.0.0.1"],
    "lan.example": ["192.168.0.10"],
    "mapped.example": ["::ffff:169.254.169.254"],
    "v6lan.example": ["fd00::5"],
    "cgnat.example": ["100.64.3.4"],
    # One public and one internal address: the internal one alone refuses the URL (every address is checked).
    "mixed.example": ["93.184.216.34", "10.0.0.7"],
    "mixed6.example": ["2606:4700::1", "fe80::1"],
}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::ffff:169.254.169.254]/", "IPv6 form of a link-local"),
        ("https://[::ffff:7f00:1]/", "IPv6 form of a loopback"),
        ("https://127.0.0.1/", "loopback"),
        ("https://[::1]/", "loopback"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://10.0.0.1/", "private"),
        ("https://[fe80::1]/", "link-local"),
        ("https://metadata.example/latest/meta-data/", "resolves to 169.254.169.254"),
        ("https://loop.example/x.csv", "loopback"),
        ("https://lan.example/x.csv", "private"),
        ("https://mapped.example/x.csv", "IPv6 form of a link-local"),
        ("https://v6lan.example/x.csv", "private"),
        ("https://cgnat.example/x.csv", "carrier-grade NAT"),
        ("https://mixed.example/x.csv", "resolves to 10.0.0.7"),
        ("https://mixed6.example/x.csv", "resolves to fe80::1"),
    ],
)
def test_demo_refuses_internal_addresses_before_connecting(url, expected):
    fetcher = Fetcher(demo_policy(1_000_000, 5.0), resolve=stub_resolver(INTERNAL_NAMES), connect=never_connect)
    with pytest.raises(FetchError, match=r"^Refused the URL") as caught:
        fetcher.fetch(url)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///etc/passwd", "only https:// URLs"),
        ("http://169.254.169.254/latest/meta-data/", "only https:// URLs"),
        ("ftp://example.com/x.csv", "only https:// URLs"),
        ("gopher://127.0.0.1:6379/_INFO", "only https:// URLs"),
        ("https://user@example.com/x.csv", "user name or password"),
        ("https://user:s3cret@example.com/x.csv", "user name or password"),
        ("https://example.com@169.254.169.254/", "user name or password"),
        ("https://example.com:8443/x.csv", "port 8443"),
        ("https://example.com:80/x.csv", "port 80"),
        ("https://exa mple.com/x.csv", "spaces or control characters"),
        ("https://example.com/\r\nX-Injected: 1", "spaces or control characters"),
        ("https://exa_mple.com/x.csv", "not a valid host name"),
        ("https:///x.csv", "names no host"),
        ("https://example.com:99999/", "Port out of range"),
    ],
)
def test_demo_refuses_the_url_itself_before_resolving(url, expected):
    fetcher = Fetcher(demo_policy(1_000_000, 5.0), resolve=never_resolve, connect=never_connect)
    with pytest.raises(FetchError, match=r"^Refused the URL") as caught:
        fetcher.fetch(url)
    assert expected in str(caught.value)
    assert "s3cret" not in str(caught.value)


# -- a certificate authority and servers on 127.0.0.1 --------------------------------------------


@dataclass
class TLS:
    ca_pem: bytes
    cert_file: Path
    key_file: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem.decode("ascii"))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> TLS:
    """A CA made for this test run, and a certificate it signed for localhost and 127.0.0.1."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("ModelShelf test CA"))
        .issuer_name(_name("ModelShelf test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(LOOPBACK)]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "server.pem", folder / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return TLS(ca_cert.public_bytes(serialization.Encoding.PEM), cert_file, key_file)


@dataclass
class Server:
    port: int
    scheme: str
    hosts_seen: list[str] = field(default_factory=list)
    paths_seen: list[str] = field(default_factory=list)

    def url(self, path: str, host: str = "localhost") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


def _handler(server: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the test output quiet
            pass

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            server.hosts_seen.append(self.headers.get("Host", ""))
            server.paths_seen.append(self.path)
            path = self.path
            try:
                if path == "/data.csv":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/csv")
                    self.send_header("Content-Length", str(len(CSV)))
                    self.end_headers()
                    self.wfile.write(CSV)
                elif path == "/to-data":
                    self._redirect("/data.csv")
                elif path == "/to-metadata":
                    self._redirect("https://169.254.169.254/latest/meta-data/")
                elif path == "/to-metadata-name":
                    self._redirect(f"https://metadata.example:{server.port}/latest/meta-data/")
                elif path == "/to-mapped":
                    self._redirect("https://[::ffff:169.254.169.254]/")
                elif path == "/to-http":
                    self._redirect(f"http://localhost:{server.port}/data.csv")
                elif path == "/to-file":
                    self._redirect("file:///etc/passwd")
                elif path == "/to-userinfo":
                    self._redirect(f"https://admin:pw@localhost:{server.port}/data.csv")
                elif path == "/loop":
                    self._redirect("/loop")
                elif path.startswith("/chain/"):
                    self._redirect(f"/chain/{int(path.rsplit('/', 1)[1]) + 1}")
                elif path == "/endless":
                    # No Content-Length: the body ends when the connection does, i.e. never.
                    self.send_response(200)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    block = b"1,2,3\n" * 10_000
                    for _ in range(100_000):
                        self.wfile.write(block)
                elif path == "/declared-huge":
                    self.send_response(200)
                    self.send_header("Content-Length", str(10**12))
                    self.end_headers()
                    self.wfile.write(CSV)
                elif path == "/trickle":
                    # Headers at once, then one byte every 0.1 s: each read is quick, the whole is not.
                    self.send_response(200)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.flush()
                    for _ in range(300):
                        self.wfile.write(b"1")
                        self.wfile.flush()
                        time.sleep(0.1)
                elif path == "/trickle-headers":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    for _ in range(300):
                        self.wfile.write(b"X")
                        self.wfile.flush()
                        time.sleep(0.1)
                else:
                    self.send_error(404)
            except OSError:
                pass  # the client hung up, as it should on the hostile routes

    return Handler


def _serve(scheme: str, tls: TLS | None) -> Iterator[Server]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    httpd.daemon_threads = True
    server = Server(port=httpd.server_address[1], scheme=scheme)
    httpd.RequestHandlerClass = _handler(server)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert_file, tls.key_file)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def https_server(tls) -> Iterator[Server]:
    yield from _serve("https", tls)


@pytest.fixture(scope="module")
def http_server() -> Iterator[Server]:
    yield from _serve("http", None)


@dataclass
class Connections:
    made: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, address: tuple[str, int], timeout: float) -> socket.socket:
        if address[0] != "127.0.0.1":
            raise AssertionError(f"a connection to {address} was attempted")
        self.made.append(address)
        return socket.create_connection(address, timeout=timeout)


def allow_loopback_only(ip) -> bool:
    """The test policy: 127.0.0.1 and nothing else (the demo policy refuses it, as it should)."""
    return ip == LOOPBACK


def test_fetcher(tls: TLS, connections: Connections, resolve=None, **limits) -> Fetcher:
    policy = FetchPolicy(
        allow_address=allow_loopback_only,
        allow_port=any_port,
        max_bytes=limits.get("max_bytes", 1_000_000),
        timeout_s=limits.get("timeout_s", 10.0),
        max_redirects=limits.get("max_redirects", 5),
    )
    names = {"localhost": ["127.0.0.1"], **INTERNAL_NAMES}
    return Fetcher(
        policy, resolve=resolve or stub_resolver(names), connect=connections, ssl_context=tls.client_context()
    )


test_fetcher.__test__ = False  # a helper, not a test


# -- real fetches from 127.0.0.1 ----------------------------------------------------------------


def test_a_csv_over_https_is_read_with_the_host_name_checked(tls, https_server):
    connections = Connections()
    fetcher = test_fetcher(tls, connections)
    fetched = fetcher.fetch(https_server.url("/data.csv"))
    assert fetched.content == CSV and fetched.content_type == "text/csv"
    assert connections.made == [("127.0.0.1", https_server.port)]  # the vetted address, not the name
    assert https_server.hosts_seen[-1] == f"localhost:{https_server.port}"  # Host: the original name

    # The same through the data-set reader, as the Train page reads it in demo mode.
    frame = load_frame(https_server.url("/data.csv"), access=SourceAccess(local_files=False, fetcher=fetcher))
    assert list(frame.columns) == ["a", "b", "label"] and len(frame) == 4


def test_the_certificate_is_checked_against_the_url_host_not_the_address(tls, https_server):
    # other.example resolves to the same vetted 127.0.0.1, but the certificate is not for that name.
    resolve = stub_resolver({"other.example": ["127.0.0.1"]})
    fetcher = test_fetcher(tls, Connections(), resolve=resolve)
    with pytest.raises(FetchError, match="certificate could not be verified"):
        fetcher.fetch(https_server.url("/data.csv", host="other.example"))
    # And a server whose CA is not trusted is refused too (the system CAs do not know the test CA).
    untrusting = Fetcher(
        FetchPolicy(allow_address=allow_loopback_only, allow_port=any_port),
        resolve=stub_resolver({"localhost": ["127.0.0.1"]}),
        connect=Connections(),
    )
    with pytest.raises(FetchError, match="certificate could not be verified"):
        untrusting.fetch(https_server.url("/data.csv"))


def test_the_name_is_resolved_once_per_hop_no_rebinding(tls, https_server):
    """A resolver that answers 127.0.0.1 first and an internal address after: the vetted one is used."""
    answers = iter([["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1"]])
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    connections = Connections()
    fetched = test_fetcher(tls, connections, resolve=rebinding).fetch(https_server.url("/data.csv"))
    assert fetched.content == CSV
    assert calls == ["localhost"] and connections.made == [("127.0.0.1", https_server.port)]


def test_a_redirect_on_the_same_server_is_followed(tls, https_server):
    connections = Connections()
    fetched = test_fetcher(tls, connections).fetch(https_server.url("/to-data"))
    assert fetched.content == CSV and fetched.url.endswith("/data.csv")
    assert len(connections.made) == 2  # each hop vetted and connected afresh


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/to-metadata", "169.254.169.254 is a link-local address"),
        ("/to-metadata-name", "metadata.example resolves to 169.254.169.254"),
        ("/to-mapped", "IPv6 form of a link-local"),
        ("/to-http", "only https:// URLs"),
        ("/to-file", "only https:// URLs"),
        ("/to-userinfo", "user name or password"),
    ],
)
def test_a_redirect_to_a_refused_target_is_refused_before_connecting_to_it(tls, https_server, path, expected):
    connections = Connections()
    with pytest.raises(FetchError, match=r"^Refused the URL") as caught:
        test_fetcher(tls, connections).fetch(https_server.url(path))
    assert expected in str(caught.value)
    assert connections.made == [("127.0.0.1", https_server.port)]  # the first server only
    assert "pw@" not in str(caught.value)


def test_a_redirect_loop_and_a_long_chain_are_refused(tls, https_server):
    connections = Connections()
    with pytest.raises(FetchError, match="loop"):
        test_fetcher(tls, connections).fetch(https_server.url("/loop"))
    assert len(connections.made) == 1
    connections = Connections()
    with pytest.raises(FetchError, match="more than 3 redirects"):
        test_fetcher(tls, connections, max_redirects=3).fetch(https_server.url("/chain/0"))
    assert len(connections.made) == 4  # the first URL and three redirects, no more


def test_an_endless_body_is_stopped_at_the_size_limit(tls, https_server):
    started = time.monotonic()
    with pytest.raises(FetchError, match="larger than the limit of 200,000 bytes"):
        test_fetcher(tls, Connections(), max_bytes=200_000, timeout_s=30).fetch(https_server.url("/endless"))
    assert time.monotonic() - started < 10  # stopped by the size, long before the time limit


def test_a_declared_oversized_body_is_refused_before_reading(tls, https_server):
    with pytest.raises(FetchError, match="larger than the limit"):
        test_fetcher(tls, Connections(), max_bytes=200_000).fetch(https_server.url("/declared-huge"))


@pytest.mark.parametrize("path", ["/trickle", "/trickle-headers"])
def test_a_slow_server_is_stopped_at_the_total_time_limit(tls, https_server, path):
    """Every byte arrives quickly after the last one; only a total deadline stops this."""
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"took longer than the limit of 1 s"):
        test_fetcher(tls, Connections(), timeout_s=1.0).fetch(https_server.url(path))
    assert time.monotonic() - started < 4


def test_slow_name_resolution_counts_against_the_time_limit(tls):
    def slow(host: str, port: int) -> list[str]:
        time.sleep(3)
        return ["127.0.0.1"]

    started = time.monotonic()
    with pytest.raises(FetchError, match="took longer than"):
        test_fetcher(tls, Connections(), resolve=slow, timeout_s=0.5).fetch("https://localhost/x.csv")
    assert time.monotonic() - started < 2


# -- data sources in and out of demo mode --------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    ["/etc/passwd", "file:///etc/passwd", "FILE:///etc/passwd", "file://localhost/etc/passwd", "../../etc/passwd"],
)
def test_demo_refuses_local_files(demo, no_network, source):
    with pytest.raises(DatasetError) as caught:
        load_frame(source)
    assert str(caught.value) == DEMO_REFUSAL
    with pytest.raises(DatasetError, match="public demo"):
        load_dataset(Path(source) if source.startswith("/") else source)


@pytest.mark.parametrize(
    "source",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:a9fe:a9fe]/",
        "https://127.0.0.1:8501/",
        "https://user@8.8.8.8/",
        "s3://bucket/x.csv",
    ],
)
def test_demo_refuses_internal_urls_before_any_network_use(demo, no_network, source):
    with pytest.raises(DatasetError):
        load_frame(source)
    assert no_network == []


def test_uploaded_bytes_and_builtins_still_work_in_demo(demo, no_network):
    assert len(load_frame(CSV)) == 4
    assert len(load_dataset("builtin:iris").X) == 150


def test_outside_demo_paths_and_http_urls_work_through_the_bounded_fetcher(monkeypatch, tmp_path, http_server):
    monkeypatch.delenv("MODELSHELF_DEMO", raising=False)
    path = tmp_path / "local.csv"
    path.write_bytes(CSV)
    assert len(load_frame(str(path))) == 4
    assert len(load_frame(path.as_uri())) == 4  # file:// as before, for the trusted local user

    calls: list[tuple[str, int]] = []
    real = socket.create_connection

    def record(address, *args, **kwargs):
        assert address[0] == "127.0.0.1"
        calls.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", record)
    frame = load_frame(http_server.url("/data.csv", host="127.0.0.1"))
    assert len(frame) == 4 and calls == [("127.0.0.1", http_server.port)]

    # The size bound applies outside the demo too (1 MB here, from the settings).
    monkeypatch.setenv("MODELSHELF_URL_MAX_MB", "1")
    with pytest.raises(FetchError, match="larger than the limit of 1,000,000 bytes"):
        load_frame(http_server.url("/endless", host="127.0.0.1"))


def test_unreachable_url_outside_demo_is_one_clear_error(monkeypatch):
    monkeypatch.delenv("MODELSHELF_DEMO", raising=False)
    with pytest.raises(FetchError, match=r"^Could not read the URL http://127.0.0.1:9/x.csv: connection refused"):
        load_frame("http://127.0.0.1:9/x.csv")


def test_url_settings_defaults_environment_and_bad_values(tmp_path):
    defaults = load_settings(tmp_path / "absent.toml", environ={})
    assert (defaults.url_max_mb, defaults.url_timeout_s, defaults.url_max_bytes) == (50, 20.0, 50_000_000)
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("[modelshelf]\nurl_max_mb = 5\nurl_timeout_s = 3\n")
    from_file = load_settings(secrets, environ={"MODELSHELF_URL_TIMEOUT_S": "2.5"})
    assert (from_file.url_max_mb, from_file.url_timeout_s) == (5, 2.5)
    for name, value in (("MODELSHELF_URL_MAX_MB", "0"), ("MODELSHELF_URL_TIMEOUT_S", "soon")):
        with pytest.raises(InvalidParameterError, match=name):
            load_settings(tmp_path / "absent.toml", environ={name: value})
    demo = SourceAccess.from_settings(Settings(demo=True, url_max_mb=7, url_timeout_s=3.0))
    assert demo.local_files is False and demo.fetcher.policy == demo_policy(7_000_000, 3.0)
    trusted = SourceAccess.from_settings(Settings(url_max_mb=7, url_timeout_s=3.0))
    assert trusted.local_files is True and trusted.fetcher.policy.schemes == {"http", "https"}
    assert (trusted.fetcher.policy.max_bytes, trusted.fetcher.policy.timeout_s) == (7_000_000, 3.0)


# -- every entry point: the command line and the Train page --------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "/etc/passwd", "--estimator", "naive_bayes", "--name", "x"],
        ["train", "--data", "file:///etc/passwd", "--estimator", "naive_bayes", "--name", "x"],
        ["predict", "x:1", "--data", "/etc/passwd"],
        ["evaluate", "x:1", "--data", "/etc/passwd"],
        ["train", "--data", "http://169.254.169.254/", "--estimator", "naive_bayes", "--name", "x"],
        ["import", "MODEL_FILE", "--name", "y", "--data", "/etc/passwd"],
    ],
)
def test_cli_data_is_refused_in_demo_mode(demo, no_network, capsys, store, tmp_path, argv):
    result = _iris_result()
    if argv[0] != "train":
        store.save_trained(result, "x")
    model_file = tmp_path / "model.joblib"
    joblib.dump(result.model, model_file)
    argv = [str(model_file) if a == "MODEL_FILE" else a for a in argv]
    code = main([*argv, "--store", str(store.location)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "public demo" in err or "only https:// URLs" in err
    assert "root:" not in err


def _iris_result():
    from core.training import train

    return train(load_dataset("builtin:iris"), "naive_bayes")


@pytest.fixture
def fresh_app(monkeypatch, tmp_path):
    monkeypatch.setenv("MODEL_STORE", str(tmp_path / "store"))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


def _train_page_with_url(source: str):
    from streamlit.testing.v1 import AppTest

    from tests.test_app import APP, TRAIN

    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(TRAIN).run()
    # Typed in before the URL field first shows, so the page's example URL is never fetched.
    at.session_state["train_url"] = source
    at.session_state["train_url_names"] = ""
    at.radio(key="train_source").set_value("CSV from a URL").run()
    assert at.text_input(key="train_url").value == source
    return at


@pytest.mark.parametrize("source", ["file:///etc/passwd", "/etc/passwd", "http://169.254.169.254/"])
def test_train_page_in_demo_mode_refuses_local_and_internal_sources(fresh_app, demo, no_network, source):
    at = _train_page_with_url(source)
    assert not at.exception
    assert len(at.error) == 1
    shown = re.sub(r"\\(.)", r"\1", at.error[0].value)  # as the browser shows it (Markdown escapes resolved)
    assert shown in (DEMO_REFUSAL, "Refused the URL http://169.254.169.254/: only https:// URLs are allowed here")
    assert not at.dataframe, "no table may be shown"
    assert "train_target" not in [s.key for s in at.selectbox]
    assert no_network == []


def test_train_page_outside_demo_still_reads_a_local_csv(fresh_app, monkeypatch, tmp_path):
    monkeypatch.delenv("MODELSHELF_DEMO", raising=False)
    path = tmp_path / "local.csv"
    path.write_bytes(CSV)
    at = _train_page_with_url(str(path))
    assert not at.exception and not at.error
    assert len(at.dataframe) == 1 and list(at.dataframe[0].value.columns) == ["a", "b", "label"]
