"""Keep-alive POSTs to plain ``http://`` endpoints over the standard library's ``http.client``.

Why not httpx for everything: one ``httpx.Client.post`` costs 305-355 µs of CPU per request
on the benchmark box (request and response models, auth and redirect layers, the httpcore pool
and h11's state machine), against 65-110 µs for ``http.client`` (one ``HTTPConnection`` per
kept socket). With 16 requests in flight at batch 1, or a 2 ms model server at batch 1000,
that difference is most of the client's budget. So
:class:`~asaql.ml.client.EndpointClient` sends over this client when the URL is plain
``http://`` with no proxy configured for it, no user info and ASCII only, and over httpx
otherwise (TLS, proxies, and the tests' ``httpx.MockTransport``).

``http.client`` does all of HTTP/1.1 here: the request line and headers (validated),
``Content-Length``, ``TCP_NODELAY``, reading the status line and headers, chunked,
``Content-Length`` and until-close bodies, ``100 Continue`` (other 1xx interim answers, such
as 103 Early Hints, it returns as the answer; model servers do not send them), and whether the
server keeps the connection. An earlier version of this module framed HTTP itself on raw sockets for 17-50 µs
per request; the standard library's costs ~50 µs more (bench/README.md, "ML scoring", has what
that does to the throughput targets), and an HTTP parser is not worth owning for that. This
module adds only what ``http.client`` lacks:

* a LIFO stack of kept connections per origin, at most ``max_idle`` of them. A kept connection
  that the server closed meanwhile (idle keep-alive timeout) is detected when the request fails
  before any byte of the answer arrived, and the request goes once more on a new connection;
  any other failure closes the connection and raises (the caller's retry policy decides what
  happens next). A connection idle longer than ``STALE_AFTER`` seconds is checked for
  readability (a closed peer reads as EOF) before reuse;
* :meth:`WireClient.send` and :meth:`WireClient.receive` as two steps, so a worker can encode
  its next body while this answer is on the wire;
* a connect timeout apart from the read timeout, and gzip/deflate answers decoded (as httpx
  does; ``http.client`` hands back the encoded bytes);
* errors: :class:`WireTimeout` (a socket operation took longer than the timeout) and
  :class:`WireError` (anything else on the way: refused, reset, malformed answer), both with
  the underlying reason and never with request headers.
"""

from __future__ import annotations

import http.client
import select
import threading
import time
import urllib.request
import zlib
from urllib.parse import urlsplit

__all__ = ["Sent", "WireClient", "WireError", "WireResponse", "WireTimeout", "plain_http"]

STALE_AFTER = 1.0  # seconds idle before a kept connection is checked before reuse


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
        self.headers = headers  # lower-case names; repeated headers joined with ", "
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
    """A URL and headers as ``http.client`` takes them, worked out once per configuration."""

    __slots__ = ("headers", "origin", "path", "skip_host")

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self.origin = (parts.hostname or "", parts.port or 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        names = {name.lower() for name in headers}
        self.skip_host = "host" in names
        self.headers = list(headers.items())
        if "user-agent" not in names:
            self.headers.insert(0, ("User-Agent", "asaql"))


class _Connection(http.client.HTTPConnection):
    """``http.client``'s connection, with the request head and body leaving in one write.

    ``endheaders(body)`` writes the head and then the body: two trips through the loopback
    stack (and two wake-ups of the server), ~10 µs more CPU per request here than one. So
    :func:`_request` leaves the body here and calls ``endheaders()``, and :meth:`send` (which
    ``http.client`` calls with the head) appends it.
    """

    body = b""

    def send(self, data: bytes) -> None:  # type: ignore[override]
        if self.body:
            data, self.body = data + self.body, b""
        super().send(data)


class WireClient:
    """Keep-alive HTTP/1.1 POSTs over ``http.client``; thread-safe (one request per connection)."""

    def __init__(self, *, timeout: float, connect_timeout: float, max_idle: int) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        # per origin, kept connections with the time each was put back (last in, first out)
        self._idle: dict[tuple[str, int], list[tuple[_Connection, float]]] = {}
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
        conn = self._take(target.origin)
        if conn is not None:
            try:
                return _write(conn, target, body, reused=True)
            except _Stale:
                pass  # the server closed it while it was kept: once more on a new one
        return self._send_new(target, body)

    def _send_new(self, target: _Target, body: bytes) -> Sent:
        host, port = target.origin
        conn = _Connection(host, port, timeout=self.connect_timeout)
        try:
            conn.connect()
            conn.sock.settimeout(self.timeout)
        except TimeoutError as exc:
            conn.close()
            raise WireTimeout(f"connect timed out: {exc}") from None
        except OSError as exc:
            conn.close()
            raise WireError(f"cannot connect: {exc}") from None
        return _write(conn, target, body, reused=False)

    def receive(self, sent: Sent) -> WireResponse:
        """The answer to a request written by :meth:`send`."""
        conn = sent.conn
        try:
            try:
                answer = conn.getresponse()
            except ConnectionResetError as exc:  # http.client.RemoteDisconnected included
                if not sent.reused:
                    raise WireError(f"server closed the connection without answering: {exc}")
                answer = None
            if answer is not None:
                headers = _headers(answer)
                content = answer.read()
                encoding = headers.get("content-encoding", "").lower()
                if encoding not in ("", "identity"):
                    content = _decode(content, encoding)
        except _FAILURES as exc:
            conn.close()
            raise _wire_error(exc) from None
        except BaseException:
            conn.close()
            raise
        if answer is None:  # a kept connection the server had closed: once more on a new one
            conn.close()
            return self.receive(self._send_new(sent.target, sent.body))
        response = WireResponse(answer.status, answer.reason, headers, content)
        if answer.will_close or conn.sock is None:
            conn.close()
        else:
            self._give(sent.target.origin, conn)
        return response

    def _take(self, origin: tuple[str, int]) -> _Connection | None:
        with self._lock:
            stack = self._idle.get(origin)
            if not stack:
                return None
            conn, idle_since = stack.pop()
        if time.monotonic() - idle_since > STALE_AFTER and _looks_closed(conn):
            conn.close()
            return None
        return conn

    def _give(self, origin: tuple[str, int], conn: _Connection) -> None:
        with self._lock:
            if not self._closed:
                stack = self._idle.setdefault(origin, [])
                if len(stack) < self.max_idle:
                    stack.append((conn, time.monotonic()))
                    return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            kept = [conn for stack in self._idle.values() for conn, _ in stack]
            self._idle.clear()
        for conn in kept:
            conn.close()


class Sent:
    """A request on the wire, waiting for :meth:`WireClient.receive`."""

    __slots__ = ("body", "conn", "reused", "target")

    def __init__(self, conn: _Connection, target: _Target, body: bytes, *, reused: bool) -> None:
        self.conn = conn
        self.target = target
        self.body = body
        self.reused = reused


class _Stale(Exception):
    """A kept connection turned out closed when the request was written to it."""


def _write(conn: _Connection, target: _Target, body: bytes, *, reused: bool) -> Sent:
    """Write one request; a connection that fails is closed."""
    try:
        _request(conn, target, body)
    except _FAILURES as exc:
        conn.close()
        if reused and isinstance(exc, ConnectionError):
            raise _Stale from None
        raise _wire_error(exc) from None
    except BaseException:
        conn.close()
        raise
    return Sent(conn, target, body, reused=reused)


def _request(conn: _Connection, target: _Target, body: bytes) -> None:
    """Write one POST (``http.client`` frames it; the body goes out with the head)."""
    conn.putrequest("POST", target.path, skip_host=target.skip_host, skip_accept_encoding=True)
    try:
        for name, value in target.headers:
            conn.putheader(name, value)
    except ValueError:  # its message would quote the value, maybe a key
        raise WireError("a request header is not valid in HTTP/1.1") from None
    conn.putheader("Content-Length", str(len(body)))
    conn.body = body
    conn.endheaders()


def _headers(answer: http.client.HTTPResponse) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in answer.getheaders():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _decode(content: bytes, encoding: str) -> bytes:
    """A gzip or deflate answer body, decoded."""
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompress(content, 16 + zlib.MAX_WBITS)
    if encoding == "deflate":  # zlib-wrapped as the RFC says, or raw as some servers send it
        try:
            return zlib.decompress(content)
        except zlib.error:
            return zlib.decompress(content, -zlib.MAX_WBITS)
    raise ValueError(f"answer has an unsupported Content-Encoding {encoding!r}")


def _looks_closed(conn: _Connection) -> bool:
    """A kept connection that is readable before we asked anything: EOF or junk."""
    try:
        readable, _, _ = select.select([conn.sock], [], [], 0)
    except (OSError, ValueError, TypeError):
        return True
    return bool(readable)


# what can go wrong on the socket or in the answer: http.client raises HTTPException for a
# malformed or cut-short answer, ValueError for a malformed chunk size
_FAILURES = (OSError, http.client.HTTPException, ValueError, zlib.error)


def _wire_error(exc: Exception) -> WireError:
    """What a failure on the socket or in the answer is raised as."""
    if isinstance(exc, WireError):
        return exc
    if isinstance(exc, TimeoutError):
        return WireTimeout("timed out")
    return WireError(f"{type(exc).__name__}: {exc}")
