"""The address guard and the guarded fetcher, against a real HTTP server on loopback.

Only loopback is ever connected to. Public literals are checked by ``check_url`` (which
resolves but never connects), and redirects to private or metadata addresses must be
refused before any connection is tried.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from reelforge.core.fetch import (
    ResolvedUrl,
    address_problem,
    check_url,
    fetch_to_file,
    post_json_guarded,
)
from reelforge.errors import SourceUnavailable, TooLarge, UnsafeUrl

TRUST_LOOPBACK = [ipaddress.ip_network("127.0.0.1/32")]
PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


# --- a loopback server ----------------------------------------------------------------

@dataclass
class Seen:
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: Seen

    def log_message(self, *args: object) -> None:
        pass

    def _record(self, body: bytes = b"") -> tuple[str, dict[str, list[str]]]:
        self.seen.requests.append((self.command, self.path, dict(self.headers), body))
        parts = urlsplit(self.path)
        return parts.path, parse_qs(parts.query)

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _chunked(self, total: int, *, delay: float = 0.0, chunk: int = 8192) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            sent = 0
            while sent < total:
                n = min(chunk, total - sent)
                self.wfile.write(b"%x\r\n" % n + b"x" * n + b"\r\n")
                self.wfile.flush()
                sent += n
                time.sleep(delay)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True  # the client gave up, as it should

    def do_GET(self) -> None:
        path, query = self._record()
        if path == "/file":
            self._send(200, PAYLOAD, {"Content-Type": "video/mp4"})
        elif path == "/chunked":
            self._chunked(int(query["n"][0]))
        elif path == "/drip":
            self._chunked(10_000, delay=0.1, chunk=100)
        elif path == "/claims-huge":
            self.send_response(200)
            self.send_header("Content-Length", str(10**12))
            self.end_headers()
            self.close_connection = True
        elif path == "/redirect":
            self._send(302, b"", {"Location": query["to"][0]})
        elif path == "/loop":
            self._send(302, b"", {"Location": "/loop"})
        else:
            self._send(404, b"not here")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        path, _ = self._record(body)
        if path == "/hook":
            self._send(200, b"ok-" + b"y" * 5000)
        elif path == "/hook-redirect":
            self._send(307, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
        elif path == "/hook-slow":
            time.sleep(2)
            self._send(200, b"late")
        else:
            self._send(404)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up early (timeouts, size caps) is what the tests want


@dataclass
class Server:
    port: int
    seen: Seen

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    seen = Seen()
    handler = type("Handler", (_Handler,), {"seen": seen})
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield Server(port=httpd.server_address[1], seen=seen)
    httpd.shutdown()
    httpd.server_close()


def _fetch(url: str, dest: Path, **kw) -> object:
    opts = dict(max_bytes=1_000_000, timeout_s=5.0, max_redirects=5, allow_http=True,
                trusted=TRUST_LOOPBACK)
    opts.update(kw)
    return fetch_to_file(url, dest, **opts)


def _leftovers(dest: Path) -> list[Path]:
    return sorted(dest.parent.glob(dest.name + "*"))


# --- check_url: the address matrix ----------------------------------------------------

@pytest.mark.parametrize("url, names", [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.0.0.2:8080/x", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped form of loopback"),
    ("http://[::ffff:7f00:1]/", "IPv4-mapped"),
    ("http://[::127.0.0.1]/", "IPv4-compatible"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://[fd00:ec2::254]/", "cloud metadata"),
    ("http://2130706433/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://0x7f.1/", "loopback"),
    ("http://017700000001/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://localhost:8000/", "loopback"),
    ("http://LocalHost:80/", "loopback"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://[fe80::1]/", "link-local"),
    ("http://169.254.10.10/", "link-local"),
    ("http://[::ffff:10.0.0.1]/", "IPv4-mapped form of private"),
    ("http://[64:ff9b::a00:1]/", "NAT64 form of private"),
    ("http://[2002:a00:1::1]/", "6to4 form of private"),
    ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "Teredo"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://198.18.0.1/", "benchmarking"),
    ("http://192.0.2.10/", "documentation"),
    ("http://[2001:db8::1]/", "documentation"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://255.255.255.255/", "broadcast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://[fc00::1]/", "unique-local"),
    ("http://[fec0::1]/", "site-local"),
])
def test_check_url_refuses_non_public_addresses(url: str, names: str) -> None:
    with pytest.raises(UnsafeUrl) as err:
        check_url(url)
    assert err.value.status == 400
    assert names in err.value.message
    assert err.value.fix


@pytest.mark.parametrize("url, names", [
    ("ftp://93.184.216.34/file.mp4", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://93.184.216.34/", "scheme"),
    ("http://user:pw@93.184.216.34/", "password"),
    ("http://user@93.184.216.34/", "password"),
    ("http://93.184.216.34\\@127.0.0.1/", "well-formed"),
    ("http://[fe80::1%25eth0]/", "malformed"),
    ("not a url", "well-formed"),
    ("http:///nohost", "malformed"),
])
def test_check_url_refuses_malformed_urls(url: str, names: str) -> None:
    with pytest.raises(UnsafeUrl) as err:
        check_url(url)
    assert names in err.value.message


def test_check_url_passes_public_literals_without_connecting() -> None:
    resolved = check_url("http://93.184.216.34/video.mp4#frag")
    assert resolved == ResolvedUrl(url="http://93.184.216.34/video.mp4", scheme="http",
                                   host="93.184.216.34", port=80, ips=("93.184.216.34",))
    v6 = check_url("https://[2606:2800:220:1:248:1893:25c8:1946]:8443/a")
    assert (v6.scheme, v6.port, v6.ips) == ("https", 8443, ("2606:2800:220:1:248:1893:25c8:1946",))
    assert check_url("https://[64:ff9b::5db8:d822]/").ips == ("64:ff9b::5db8:d822",)


def test_check_url_https_only_when_asked() -> None:
    with pytest.raises(UnsafeUrl, match="https is required"):
        check_url("http://93.184.216.34/", allow_http=False)
    assert check_url("https://93.184.216.34/", allow_http=False).port == 443


def test_trusted_networks_are_exempt_and_nothing_else() -> None:
    assert check_url("http://127.0.0.1:9/", trusted=["127.0.0.1/32"]).ips == ("127.0.0.1",)
    assert check_url("http://localhost:9/", trusted=TRUST_LOOPBACK).host == "localhost"
    for url in ("http://127.0.0.2:9/", "http://[::ffff:127.0.0.1]:9/", "http://10.0.0.1/"):
        with pytest.raises(UnsafeUrl):
            check_url(url, trusted=TRUST_LOOPBACK)


def test_any_bad_address_among_several_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(UnsafeUrl, match="10.1.2.3"):
        check_url("https://mixed.example/")


def test_unresolvable_host_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def nxdomain(host, port, *args, **kwargs):  # no DNS query leaves the machine
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", nxdomain)
    with pytest.raises(SourceUnavailable):
        check_url("http://no-such-host.invalid/")


def test_address_problem_names_classes() -> None:
    assert address_problem(ipaddress.ip_address("8.8.8.8")) is None
    assert address_problem(ipaddress.ip_address("2001:4860:4860::8888")) is None
    assert address_problem(ipaddress.ip_address("169.254.169.254")) == "cloud metadata"
    assert address_problem(ipaddress.ip_address("::ffff:169.254.169.254")).endswith(
        "cloud metadata 169.254.169.254")


# --- fetch_to_file --------------------------------------------------------------------

def test_fetch_writes_the_file(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "in.bin"
    result = _fetch(server.url("/file"), dest)
    assert dest.read_bytes() == PAYLOAD
    assert (result.size, result.redirects, result.content_type) == (len(PAYLOAD), 0, "video/mp4")
    assert _leftovers(dest) == [dest]
    method, path, headers, _ = server.seen.requests[-1]
    assert (method, path, headers["Host"]) == ("GET", "/file", f"127.0.0.1:{server.port}")


def test_fetch_connects_to_the_checked_address_only(server: Server, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: a second lookup would answer another address; none must happen."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host, port, *args, **kwargs):
        if host == "media.rebind.test":
            lookups.append(host)
            ip = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]
        return real(host, port, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    dest = tmp_path / "rebind.bin"
    _fetch(server.url("/file", host="media.rebind.test"), dest)
    assert dest.read_bytes() == PAYLOAD and lookups == ["media.rebind.test"]
    assert server.seen.requests[-1][2]["Host"] == f"media.rebind.test:{server.port}"


def test_redirect_is_followed_when_safe(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "redirected.bin"
    result = _fetch(server.url(f"/redirect?to=http://127.0.0.1:{server.port}/file"), dest)
    assert result.redirects == 1 and result.url.endswith("/file")
    assert dest.read_bytes() == PAYLOAD


@pytest.mark.parametrize("target", [
    "http://127.0.0.2:{port}/file",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:{port}/file",
    "http://10.0.0.1/file",
    "http://[::ffff:127.0.0.1]:{port}/file",
    "http://0x7f000002:{port}/file",
    "ftp://127.0.0.1/file",
])
def test_redirect_to_an_unsafe_address_is_refused(server: Server, tmp_path: Path,
                                                  target: str) -> None:
    dest = tmp_path / "never.bin"
    before = len(server.seen.requests)
    with pytest.raises(UnsafeUrl):
        _fetch(server.url("/redirect?to=" + target.format(port=server.port)), dest)
    assert _leftovers(dest) == []
    assert len(server.seen.requests) == before + 1  # only the redirecting hop was made


def test_redirect_loop_is_cut(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "loop.bin"
    with pytest.raises(SourceUnavailable, match="redirected more than 3"):
        _fetch(server.url("/loop"), dest, max_redirects=3)
    assert _leftovers(dest) == []


def test_size_cap_holds_without_content_length(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "big.bin"
    with pytest.raises(TooLarge) as err:
        _fetch(server.url("/chunked?n=5000000"), dest, max_bytes=100_000)
    assert err.value.status == 413 and err.value.fix
    assert _leftovers(dest) == []


def test_chunked_under_the_cap_is_fine(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "small.bin"
    assert _fetch(server.url("/chunked?n=100000"), dest, max_bytes=100_000).size == 100_000


def test_declared_length_over_the_cap_is_refused_at_once(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "claims.bin"
    with pytest.raises(TooLarge):
        _fetch(server.url("/claims-huge"), dest)
    assert _leftovers(dest) == []


def test_not_found_is_unavailable_with_the_status(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "missing.bin"
    with pytest.raises(SourceUnavailable) as err:
        _fetch(server.url("/missing"), dest)
    assert err.value.status == 451 and "404" in err.value.message
    assert _leftovers(dest) == []


def test_total_time_is_capped(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "slow.bin"
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match="longer than 0.6 s"):
        _fetch(server.url("/drip"), dest, timeout_s=0.6)
    assert time.monotonic() - started < 2.0
    assert _leftovers(dest) == []


def test_a_cancelled_job_stops_its_download_at_once(server: Server, tmp_path: Path) -> None:
    """``stopped`` is asked after every chunk: a slow 10 s download ends as soon as it
    says yes, and leaves nothing behind."""
    dest = tmp_path / "cancelled.bin"
    stop_at = time.monotonic() + 0.3
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match="stopped"):
        _fetch(server.url("/drip"), dest, timeout_s=30.0,
               stopped=lambda: time.monotonic() > stop_at)
    assert time.monotonic() - started < 1.5
    assert _leftovers(dest) == []


def test_connection_refused_is_unavailable(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceUnavailable):
        _fetch(f"http://127.0.0.1:{port}/", tmp_path / "refused.bin")


def test_https_keeps_the_real_name_for_sni_and_verification(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Connected by IP, the TLS handshake still names (and verifies) the URL's host."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=media.tls.test", "-addext", "subjectAltName=DNS:media.tls.test",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_once() -> None:
        conn, _ = listener.accept()
        try:
            context.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            pass  # the client refuses our self-signed certificate
        finally:
            conn.close()
    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, p, *a, **k: (
        [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p))]
        if host == "media.tls.test" else real(host, p, *a, **k)))
    dest = tmp_path / "tls.bin"
    try:
        with pytest.raises(SourceUnavailable):  # certificate not trusted: verification is on
            _fetch(f"https://media.tls.test:{port}/file", dest)
    finally:
        thread.join(5)
        listener.close()
    assert names == ["media.tls.test"]
    assert _leftovers(dest) == []


# --- post_json_guarded ----------------------------------------------------------------

def test_post_delivers_and_returns_a_prefix(server: Server) -> None:
    status, text = post_json_guarded(server.url("/hook"), b'{"id":"job_1"}',
                                     {"webhook-id": "msg_1", "Host": "evil.example"},
                                     timeout_s=5, allow_http=True, trusted=TRUST_LOOPBACK)
    assert status == 200 and text.startswith("ok-y") and len(text) == 1024
    method, path, headers, body = server.seen.requests[-1]
    assert (method, path, body) == ("POST", "/hook", b'{"id":"job_1"}')
    assert headers["webhook-id"] == "msg_1" and headers["Content-Type"] == "application/json"
    assert headers["Host"] == f"127.0.0.1:{server.port}"


def test_post_does_not_follow_redirects(server: Server) -> None:
    status, _ = post_json_guarded(server.url("/hook-redirect"), b"{}", {}, timeout_s=5,
                                  allow_http=True, trusted=TRUST_LOOPBACK)
    assert status == 307


def test_post_is_guarded(server: Server) -> None:
    with pytest.raises(UnsafeUrl):
        post_json_guarded(server.url("/hook", host="127.0.0.2"), b"{}", {}, timeout_s=5,
                          allow_http=True, trusted=TRUST_LOOPBACK)
    with pytest.raises(UnsafeUrl, match="https is required"):
        post_json_guarded(server.url("/hook"), b"{}", {}, timeout_s=5, trusted=TRUST_LOOPBACK)
    with pytest.raises(UnsafeUrl):
        post_json_guarded("http://169.254.169.254/", b"{}", {}, timeout_s=5, allow_http=True,
                          trusted=TRUST_LOOPBACK)


def test_post_times_out(server: Server) -> None:
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match="in time"):
        post_json_guarded(server.url("/hook-slow"), b"{}", {}, timeout_s=0.5, allow_http=True,
                          trusted=TRUST_LOOPBACK)
    assert time.monotonic() - started < 1.5
