"""A small HTTP/1.1 client for plain ``http://`` endpoints: keep-alive sockets, nothing else.

Why not httpx for everything: one ``httpx.Client.post`` costs about 340 µs of Python per
request on the benchmark box (request and response models, auth and redirect layers, the
httpcore pool and h11's state machine), against about 15 µs for a pre-built request head
written to a keep-alive socket and a response read with ``BufferedReader.readline``. With 16
requests in flight at batch 1, or a 2 ms model server at batch 1000, that difference is the
client's whole budget. So :class:`~asaql.ml.client.EndpointClient` sends over this client when
the URL is plain ``http://`` with no proxy configured for it, no user info and ASCII only, and
over httpx otherwise (TLS, proxies, and the tests' ``httpx.MockTransport``).

What it does (and all it does)::

    POST <path?query> HTTP/1.1        <- head built once per configuration (Host, headers)
    Content-Length: <n>                  then the body; one sendall
    <- HTTP/1.x <status> <reason>        1xx skipped; headers into a dict (lower-case names)
       body: Content-Length, chunked, or until close; gzip/deflate decoded
       keep-alive unless "Connection: close" or HTTP/1.0 without keep-alive

Connections are kept in a LIFO stack per origin, at most ``max_idle`` of them. A kept
connection that the server closed meanwhile (idle keep-alive timeout) is detected when the
request fails before any byte of the answer arrived, and the request goes once more on a new
connection; any other failure closes the connection and raises (the caller's retry policy
decides what happens next). A connection idle longer than ``STALE_AFTER`` seconds is checked
for readability (a closed peer reads as EOF) before reuse.

Errors: :class:`WireTimeout` (a socket operation took longer than the timeout) and
:class:`WireError` (anything else on the way: refused, reset, malformed answer), both with
the underlying reason and never with request headers.
"""

from __future__ import annotations

import select
import socket
import threading
import time
import urllib.request
import zlib
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Sent", "WireClient", "WireError", "WireResponse", "WireTimeout", "plain_http"]

STALE_AFTER = 1.0  # seconds idle before a kept connection is checked before reuse
_MAX_LINE = 65536
_MAX_HEADERS = 200


class WireError(OSError):
    """The request could not be sent or its answer could not be read."""


class WireTimeout(WireError):
    """A socket operation took longer than the timeout."""


class WireResponse:
    """The parts of an answer the endpoint client reads (named as in httpx)."""

    __slots__ = ("content", "headers", "reason_phrase", "status_code")

    def __init__(self, status: int, reason: str, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status
        self.reason_phrase = reason
        self.headers = headers
        self.content = content


def plain_http(url: str, headers: dict[str, str]) -> bool:
    """Whether this client can send to ``url`` with ``headers`` (else use httpx)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme != "http" or not parts.hostname or "@" in parts.netloc:
        return False
    if not url.isascii() or any(c in url for c in " \r\n\t"):
        return False
    for name, value in headers.items():
        if not name.isascii() or any(c in name + value for c in "\r\n\0"):
            return False
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            return False
    proxies = urllib.request.getproxies()  # httpx honours the same variables (trust_env)
    if proxies.get("http") or proxies.get("all"):
        host = parts.hostname if port is None else f"{parts.hostname}:{port}"
        if not urllib.request.proxy_bypass(host):
            return False
    return True


class _Target:
    """A URL and headers turned into the bytes every request to it starts with."""

    __slots__ = ("address", "head", "origin")

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        port = parts.port or 80
        host = parts.hostname or ""
        self.address = (host, port)
        self.origin = (host, port)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        netloc = parts.netloc
        lines = [f"POST {path} HTTP/1.1", f"Host: {netloc}", "User-Agent: asaql"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")


class _Connection:
    __slots__ = ("file", "idle_since", "sock", "used")

    def __init__(self, address: tuple[str, int], connect_timeout: float, timeout: float) -> None:
        sock = socket.create_connection(address, timeout=connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(timeout)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.file = sock.makefile("rb")
        self.used = False
        self.idle_since = 0.0

    def looks_closed(self) -> bool:
        """A kept connection that is readable before we asked anything: EOF or junk."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        try:
            self.file.close()
        finally:
            self.sock.close()


class WireClient:
    """Keep-alive HTTP/1.1 POSTs over plain sockets; thread-safe (one request per connection)."""

    def __init__(self, *, timeout: float, connect_timeout: float, max_idle: int) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._lock = threading.Lock()
        self._targets: dict[tuple[str, tuple[tuple[str, str], ...]], _Target] = {}
        self._closed = False

    def target(self, url: str, headers: dict[str, str]) -> _Target:
        key = (url, tuple(headers.items()))
        found = self._targets.get(key)
        if found is None:
            if len(self._targets) > 64:  # configurations rotate rarely; keep a few
                self._targets.clear()
            found = self._targets[key] = _Target(url, headers)
        return found

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> WireResponse:
        return self.receive(self.send(url, body, headers))

    def send(self, url: str, body: bytes, headers: dict[str, str]) -> Sent:
        """Write the request; :meth:`receive` reads its answer (the caller may do other work
        in between, such as encoding its next body)."""
        target = self.target(url, headers)
        data = target.head + b"%d\r\n\r\n" % len(body) + body
        conn = self._take(target.origin)
        if conn is not None:
            try:
                self._write(conn, data, reused=True)
                return Sent(conn, target, data, reused=True)
            except _Stale:
                pass  # the server closed it while it was kept: once more on a new one
        return self._send_new(target, data)

    def _send_new(self, target: _Target, data: bytes) -> Sent:
        try:
            conn = _Connection(target.address, self.connect_timeout, self.timeout)
        except TimeoutError as exc:
            raise WireTimeout(f"connect timed out: {exc}") from None
        except OSError as exc:
            raise WireError(f"cannot connect: {exc}") from None
        self._write(conn, data, reused=False)
        return Sent(conn, target, data, reused=False)

    def receive(self, sent: Sent) -> WireResponse:
        """The answer to a request written by :meth:`send`."""
        conn = sent.conn
        try:
            response, keep = _read_response(conn.file)
        except _NothingYet as exc:
            conn.close()
            if not sent.reused:
                raise WireError(str(exc)) from None
            # a kept connection the server had closed: once more on a new one
            return self.receive(self._send_new(sent.target, sent.data))
        except (OSError, ValueError, zlib.error) as exc:
            conn.close()
            raise _wire_error(exc) from None
        except BaseException:
            conn.close()
            raise
        if keep:
            self._give(sent.target.origin, conn)
        else:
            conn.close()
        return response

    def _write(self, conn: _Connection, data: bytes, *, reused: bool) -> None:
        try:
            conn.sock.sendall(data)
        except OSError as exc:
            conn.close()
            if reused and isinstance(exc, ConnectionError):
                raise _Stale(str(exc)) from None
            raise _wire_error(exc) from None
        except BaseException:
            conn.close()
            raise

    def _take(self, origin: tuple[str, int]) -> _Connection | None:
        with self._lock:
            stack = self._idle.get(origin)
            if not stack:
                return None
            conn = stack.pop()
        if time.monotonic() - conn.idle_since > STALE_AFTER and conn.looks_closed():
            conn.close()
            return None
        return conn

    def _give(self, origin: tuple[str, int], conn: _Connection) -> None:
        conn.idle_since = time.monotonic()
        with self._lock:
            if not self._closed:
                stack = self._idle.setdefault(origin, [])
                if len(stack) < self.max_idle:
                    stack.append(conn)
                    return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            kept = [conn for stack in self._idle.values() for conn in stack]
            self._idle.clear()
        for conn in kept:
            conn.close()


class Sent:
    """A request on the wire, waiting for :meth:`WireClient.receive`."""

    __slots__ = ("conn", "data", "reused", "target")

    def __init__(self, conn: _Connection, target: _Target, data: bytes, *, reused: bool) -> None:
        self.conn = conn
        self.target = target
        self.data = data
        self.reused = reused


def _wire_error(exc: Exception) -> WireError:
    """What a failure on the socket or in the answer is raised as."""
    if isinstance(exc, WireError):
        return exc
    if isinstance(exc, TimeoutError):
        return WireTimeout("timed out")
    return WireError(f"{type(exc).__name__}: {exc}")


class _NothingYet(ConnectionError):
    """The connection ended before the first byte of the answer."""


class _Stale(Exception):
    """A kept connection turned out closed before the answer started."""


def _read_response(file: Any) -> tuple[WireResponse, bool]:
    readline = file.readline
    while True:
        try:
            line = readline(_MAX_LINE)
        except ConnectionError as exc:
            raise _NothingYet(f"server closed the connection: {exc}") from None
        if not line:
            raise _NothingYet("server closed the connection without answering")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise ValueError(f"malformed status line {line[:80]!r}")
        version = parts[0]
        status = int(parts[1])
        reason = parts[2].strip().decode("latin-1") if len(parts) > 2 else ""
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS + 1):
            line = readline(_MAX_LINE)
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise ValueError("connection closed in the middle of the headers")
            name, colon, value = line.partition(b":")
            if not colon:
                raise ValueError(f"malformed header line {line[:80]!r}")
            key = name.strip().lower().decode("latin-1")
            text = value.strip().decode("latin-1")
            headers[key] = headers[key] + ", " + text if key in headers else text
        else:
            raise ValueError(f"more than {_MAX_HEADERS} header lines")
        if 100 <= status < 200:
            continue  # 100 Continue and friends: the real answer follows
        break
    connection = headers.get("connection", "").lower()
    if version == b"HTTP/1.1":
        keep = "close" not in connection
    else:
        keep = "keep-alive" in connection
    if status in (204, 304):
        content = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        content = _read_chunked(file)
    elif "content-length" in headers:
        length = int(headers["content-length"].split(",")[0])
        content = file.read(length)
        if len(content) != length:
            raise ValueError(f"answer ended after {len(content)} of {length} bytes")
    else:
        content = file.read()
        keep = False
    encoding = headers.get("content-encoding", "").lower()
    if encoding in ("gzip", "x-gzip"):
        content = zlib.decompress(content, 16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        try:
            content = zlib.decompress(content)
        except zlib.error:
            content = zlib.decompress(content, -zlib.MAX_WBITS)
    elif encoding not in ("", "identity"):
        raise ValueError(f"answer has an unsupported Content-Encoding {encoding!r}")
    return WireResponse(status, reason, headers, content), keep


def _read_chunked(file: Any) -> bytes:
    parts: list[bytes] = []
    while True:
        line = file.readline(_MAX_LINE)
        if not line:
            raise ValueError("connection closed in the middle of a chunked answer")
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while True:  # trailers, up to the empty line
                line = file.readline(_MAX_LINE)
                if line in (b"\r\n", b"\n", b""):
                    return b"".join(parts)
        chunk = file.read(size)
        if len(chunk) != size:
            raise ValueError("connection closed in the middle of a chunk")
        parts.append(chunk)
        file.readline(_MAX_LINE)  # the CRLF after the chunk
