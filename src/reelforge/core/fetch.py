"""The address guard, and fetches and webhook posts that go only where it allows.

Every outgoing request made on a user's behalf (a source URL to download, a webhook to
call) passes :func:`check_url` first: http(s) only, no credentials in the URL, and every
address the host resolves to must be public — not private, loopback, link-local,
multicast, reserved, carrier-grade NAT, documentation, benchmarking, cloud metadata, nor
an IPv6 form that embeds such an IPv4 address. Networks listed in
``Settings.trusted_networks`` are exempt.

The request then goes to the very address that was checked (the URL's host is swapped for
the IP; ``Host`` and, for https, TLS SNI and certificate checks keep the real name), so a
DNS answer that changes between check and connect (rebinding) cannot redirect it.
Redirects are followed by hand, each hop checked again. httpx is used with
``trust_env=False`` so no proxy from the environment sits between the guard and the wire.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from reelforge.errors import SourceUnavailable, TooLarge, UnsafeUrl

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Trusted = Sequence[IPNetwork | str]

_RESPONSE_PREFIX = 1024
_HOST_CHARS = re.compile(r"^[a-z0-9._:-]+$")
_PUBLIC_FIX = ("Use a URL on the public internet that serves the file directly; private, "
               "loopback, link-local and cloud-metadata addresses are refused.")


@dataclass(frozen=True)
class ResolvedUrl:
    """A URL that passed the guard, with the addresses it may be fetched from."""

    url: str  # normalised, fragment removed
    scheme: str  # http | https
    host: str  # ASCII (punycode) host name or IP literal, no brackets
    port: int
    ips: tuple[str, ...]  # every address the host resolved to, all checked


@dataclass(frozen=True)
class FetchResult:
    url: str  # the final URL, after redirects
    path: Path
    size: int  # bytes written
    content_type: str | None  # what the server claimed; never trusted for the media type
    redirects: int


# --- the address classes --------------------------------------------------------------

def _blocks(*pairs: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), label) for net, label in pairs)


_V4_BLOCKS = _blocks(
    ("169.254.169.254/32", "cloud metadata"),
    ("168.63.129.16/32", "cloud metadata"),
    ("0.0.0.0/8", "unspecified ('this network')"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignment"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)
_V6_BLOCKS = _blocks(
    ("fd00:ec2::254/128", "cloud metadata"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001:2::/48", "benchmarking"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("2001::/23", "IETF protocol assignment"),
    ("fc00::/7", "unique-local (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
    ("::/8", "reserved"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
_V4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")


def address_problem(ip: IPAddress) -> str | None:
    """The class that makes ``ip`` unfit to fetch from, or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        return _v6_problem(ip)
    for net, label in _V4_BLOCKS:
        if ip in net:
            return label
    return None if ip.is_global else "non-public"


def _v6_problem(ip: ipaddress.IPv6Address) -> str | None:
    embedded = _embedded_v4(ip)
    if embedded is not None:
        form, v4 = embedded
        inner = address_problem(v4)
        if inner is not None:
            return f"{form} form of {inner} {v4}"
        if form in ("NAT64", "6to4"):
            return None  # a translation of a public IPv4 address
        return f"{form} tunnel"  # Teredo and the deprecated forms are never a fetch target
    for net, label in _V6_BLOCKS:
        if ip in net:
            return label
    return None if ip.is_global else "non-public"


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip.teredo is not None:
        return "Teredo", ip.teredo[1]
    low = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64:
        return "NAT64", low
    if ip in _V4_TRANSLATED:
        return "IPv4-translated", low
    if ip in _V4_COMPATIBLE and int(ip) > 1:
        return "IPv4-compatible", low
    return None


def parse_networks(networks: Trusted) -> tuple[IPNetwork, ...]:
    """``Settings.trusted_networks`` (strings) as network objects."""
    return tuple(n if not isinstance(n, str) else ipaddress.ip_network(n, strict=False)
                 for n in networks)


# --- the guard ------------------------------------------------------------------------

def check_url(url: str, *, allow_http: bool = True, trusted: Trusted = ()) -> ResolvedUrl:
    """Parse, resolve and check ``url``; raise :class:`UnsafeUrl` when it may not be fetched."""
    parsed = _parse(url, allow_http)
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    ips = _resolve(host, port)
    networks = parse_networks(trusted)
    for text in ips:
        _check_address(host, text, networks)
    return ResolvedUrl(url=str(parsed.copy_with(fragment=None)), scheme=parsed.scheme,
                       host=host, port=port, ips=ips)


def _parse(url: str, allow_http: bool) -> httpx.URL:
    if not isinstance(url, str) or not url or any(c.isspace() or c == "\\" for c in url):
        raise UnsafeUrl(f"{_show(url)} is not a well-formed URL.",
                        fix="Send an absolute http(s) URL without spaces or backslashes.")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise UnsafeUrl(f"{_show(url)} is not a well-formed URL: {exc}",
                        fix="Send an absolute http(s) URL such as https://example.com/a.mp4.") from exc
    if parsed.scheme not in ("http", "https"):
        raise UnsafeUrl(f"The URL scheme {parsed.scheme!r} is not allowed; only http(s) is fetched.",
                        fix="Use an https:// (or http://) URL.")
    if parsed.scheme == "http" and not allow_http:
        raise UnsafeUrl("Plain http URLs are not allowed here; https is required.",
                        fix="Use the https:// form of the URL.")
    if parsed.userinfo:
        raise UnsafeUrl("URLs with a user name or password in them are refused.",
                        fix="Remove the 'user:password@' part; use a pre-signed or public URL.")
    host = parsed.raw_host.decode("ascii")
    if not host or not _HOST_CHARS.match(host):
        raise UnsafeUrl(f"The URL's host {host!r} is missing or malformed.",
                        fix="Use a URL with a plain host name, e.g. https://cdn.example.com/a.mp4.")
    return parsed


def _resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise SourceUnavailable(f"The host {host!r} could not be resolved: {exc}",
                                fix="Check the URL's host name for typos.") from exc
    ips = tuple(dict.fromkeys(info[4][0] for info in infos))
    if not ips:
        raise SourceUnavailable(f"The host {host!r} resolved to no address.",
                                fix="Check the URL's host name for typos.")
    return ips


def _check_address(host: str, text: str, trusted: tuple[IPNetwork, ...]) -> None:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError as exc:
        raise UnsafeUrl(f"{host!r} resolved to an unreadable address {text!r}.",
                        fix=_PUBLIC_FIX) from exc
    if any(ip.version == net.version and ip in net for net in trusted):
        return
    problem = address_problem(ip)
    if problem is not None:
        where = f"{host!r} resolves to" if host != text else "The URL points at"
        raise UnsafeUrl(f"{where} {ip}, a {problem} address; it may not be fetched.",
                        fix=_PUBLIC_FIX, address=str(ip), address_class=problem)


def _show(url: object) -> str:
    text = repr(url)
    return text if len(text) <= 120 else text[:117] + "..."


# --- requests to a checked address ----------------------------------------------------

def _remaining(deadline: float, what: str, timeout_s: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise SourceUnavailable(f"{what} took longer than {timeout_s:g} s.",
                                fix="Serve the file from a faster host, or send a smaller file.")
    return left


@contextmanager
def _pinned(target: ResolvedUrl, method: str, *, headers: Mapping[str, str],
            content: bytes | None, timeout: float) -> Iterator[httpx.Response]:
    """Send the request to one of ``target.ips`` (in order), never to a fresh lookup."""
    url = httpx.URL(target.url)
    send_headers = httpx.Headers(headers)
    send_headers["Host"] = url.netloc.decode("ascii")
    send_headers["Accept-Encoding"] = "identity"  # bytes on disk = bytes on the wire
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    last: Exception | None = None
    with httpx.Client(trust_env=False, follow_redirects=False) as client:
        for ip in target.ips:
            request = client.build_request(
                method, url.copy_with(host=ip.split("%", 1)[0]), headers=send_headers,
                content=content, timeout=httpx.Timeout(timeout), extensions=extensions)
            try:
                response = client.send(request, stream=True)
            except httpx.ConnectError as exc:
                last = exc
                continue
            except httpx.HTTPError as exc:
                raise _unavailable(target, exc) from exc
            try:
                yield response
            finally:
                response.close()
            return
    raise _unavailable(target, last) from last


def _unavailable(target: ResolvedUrl, exc: Exception | None) -> SourceUnavailable:
    if isinstance(exc, httpx.TimeoutException):
        return SourceUnavailable(f"{target.host}:{target.port} did not answer in time.",
                                 fix="Check that the host is up, or serve the file from a faster host.")
    return SourceUnavailable(
        f"Could not reach {target.host}:{target.port}: {exc or 'no address answered'}.",
        fix="Check that the URL is public and the server is up; retry later.")


# --- fetching a file ------------------------------------------------------------------

def fetch_to_file(url: str, dest: Path, *, max_bytes: int, timeout_s: float,
                  max_redirects: int = 5, allow_http: bool = True,
                  trusted: Trusted = (),
                  stopped: Callable[[], bool] | None = None) -> FetchResult:
    """Download ``url`` to ``dest`` under the guard, a size cap and a total time limit.

    Redirects are followed by hand (each hop checked again). ``stopped`` is asked after
    each chunk; when it says yes (the job was cancelled) the download ends at once.
    Nothing is left at ``dest`` or beside it when this raises.
    """
    deadline = time.monotonic() + timeout_s
    part = dest.with_name(dest.name + ".part")
    try:
        current = url
        for hop in range(max_redirects + 1):
            target = check_url(current, allow_http=allow_http, trusted=trusted)
            left = _remaining(deadline, "Downloading the URL", timeout_s)
            with _pinned(target, "GET", headers={}, content=None, timeout=left) as response:
                if response.is_redirect:
                    current = _next_hop(target, response)
                    continue
                _require_success(target, response)
                size = _stream_to(response, part, max_bytes, deadline, timeout_s, stopped)
                content_type = response.headers.get("content-type")
            os.replace(part, dest)
            return FetchResult(url=target.url, path=dest, size=size,
                               content_type=content_type, redirects=hop)
        raise SourceUnavailable(f"The URL redirected more than {max_redirects} times.",
                                fix="Use the final URL of the file directly.")
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _next_hop(target: ResolvedUrl, response: httpx.Response) -> str:
    location = response.headers["location"]
    try:
        return str(httpx.URL(target.url).join(location))
    except (httpx.InvalidURL, ValueError) as exc:
        raise SourceUnavailable(f"{target.host} redirected to a malformed URL {_show(location)}.",
                                fix="Use the final URL of the file directly.") from exc


def _require_success(target: ResolvedUrl, response: httpx.Response) -> None:
    if 200 <= response.status_code < 300:
        return
    raise SourceUnavailable(
        f"{target.host} answered HTTP {response.status_code} "
        f"{response.reason_phrase or ''}".rstrip() + f" for {_show(target.url)}.",
        fix="Make sure the URL is public, answers 200 and serves the media directly "
            "(no login page, no expired link).", status_code=response.status_code)


def _stream_to(response: httpx.Response, part: Path, max_bytes: int, deadline: float,
               timeout_s: float, stopped: Callable[[], bool] | None = None) -> int:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes)
    size = 0
    try:
        with open(part, "wb") as f:
            for chunk in response.iter_raw():
                size += len(chunk)
                if size > max_bytes:  # the header is a claim; the count is the truth
                    raise _too_large(size, max_bytes, so_far=True)
                f.write(chunk)
                _remaining(deadline, "Downloading the URL", timeout_s)
                if stopped is not None and stopped():
                    raise SourceUnavailable("The download was stopped.",
                                            fix="The job was cancelled; submit it again.")
    except httpx.HTTPError as exc:
        raise SourceUnavailable(f"The download from {response.url.host} broke off: {exc}",
                                fix="Retry; if it keeps failing, serve the file from another host."
                                ) from exc
    return size


def _too_large(size: int, max_bytes: int, *, so_far: bool = False) -> TooLarge:
    mib = 1024 * 1024
    amount = f"more than {max_bytes / mib:.1f} MiB" if so_far else f"{size / mib:.1f} MiB"
    return TooLarge(f"The file at the URL is {amount}; the limit is {max_bytes / mib:.1f} MiB.",
                    fix=f"Send a file under {max_bytes / mib:.1f} MiB: compress it, shorten it "
                        "or lower its resolution.")


# --- webhooks -------------------------------------------------------------------------

def post_json_guarded(url: str, body: bytes, headers: Mapping[str, str], *, timeout_s: float,
                      allow_http: bool = False, trusted: Trusted = ()) -> tuple[int, str]:
    """POST ``body`` to ``url`` under the guard; return (status, start of the response text).

    Redirects are not followed: a 3xx comes back as its status. Raises
    :class:`UnsafeUrl` when the guard refuses and :class:`SourceUnavailable` when the
    receiver cannot be reached or does not answer within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    target = check_url(url, allow_http=allow_http, trusted=trusted)
    send = {"Content-Type": "application/json", **headers}
    left = _remaining(deadline, "The webhook call", timeout_s)
    with _pinned(target, "POST", headers=send, content=body, timeout=left) as response:
        prefix = _read_prefix(response, deadline, timeout_s)
        return response.status_code, prefix


def _read_prefix(response: httpx.Response, deadline: float, timeout_s: float) -> str:
    data = b""
    try:
        for chunk in response.iter_raw():
            data += chunk
            if len(data) >= _RESPONSE_PREFIX:
                break
            _remaining(deadline, "The webhook call", timeout_s)
    except httpx.HTTPError:
        pass  # the status is what matters; a body cut short is still a prefix
    return data[:_RESPONSE_PREFIX].decode("utf-8", errors="replace")
