"""The keep-alive client for plain http:// endpoints (asaql.ml.wire, over http.client).

A scripted server on 127.0.0.1 answers each request with the raw bytes a test gives it, so
the tests can show what real servers do that a mock transport cannot: chunked bodies,
HTTP/1.0, ``Connection: close``, a kept connection closed by the server, silence.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Callable

import pytest

from asaql.errors import EndpointError
from asaql.ml.client import EndpointClient
from asaql.ml.endpoint import EndpointSpec
from asaql.ml.scorer import Scorer
from asaql.ml.secrets import SecretRef
from asaql.ml.wire import WireClient, WireError, WireTimeout, plain_http

KEY = "wire-s3cret-4711"

Answer = Callable[[bytes], bytes | None]  # request bytes -> raw answer (None: close, no answer)


def ok(body: bytes = b"[1]", extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"{extra}\r\n"
    ).encode() + body


class Scripted:
    """Serves each connection on a thread; ``answers`` are used in turn across connections."""

    def __init__(self, *answers: Answer | bytes, close_after: int = 0) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.close_after = close_after  # close each connection after this many answers (0: never)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/score?v=1"
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        file = conn.makefile("rb")
        served = 0
        with conn:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = file.readline()
                    if not line:
                        return
                    head += line
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                request = head + file.read(length)
                with self.lock:
                    self.requests.append(request)
                    answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
                raw = answer(request) if callable(answer) else answer
                if raw is None:
                    return
                conn.sendall(raw)
                served += 1
                if self.close_after and served >= self.close_after:
                    return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def client():
    c = WireClient(timeout=2.0, connect_timeout=2.0, max_idle=4)
    yield c
    c.close()


H = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}


def test_keep_alive_reuses_one_connection_and_sends_the_head(client):
    server = Scripted(ok(b"[1]"), ok(b"[2]", "Retry-After: 3\r\nX-A: 1\r\nX-A: 2\r\n"))
    first = client.post(server.url, b'{"data":[1]}', H)
    second = client.post(server.url, b'{"data":[2]}', H)
    assert (first.status_code, first.reason_phrase, first.content) == (200, "OK", b"[1]")
    assert second.content == b"[2]" and second.headers["retry-after"] == "3"
    assert second.headers["x-a"] == "1, 2"
    assert server.connections == 1
    request = server.requests[0]
    assert request.startswith(b"POST /score?v=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.url.split(':')[2].split('/')[0]}".encode() in request
    assert f"Authorization: Bearer {KEY}".encode() in request
    assert request.endswith(b"Content-Length: 12\r\n\r\n" + b'{"data":[1]}')
    server.close()


def test_chunked_gzip_and_interim_answers(client):
    packed = gzip.compress(b'{"predictions": [1, 2]}')
    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
        + f"{5:x};ext=1\r\n".encode() + packed[:5] + b"\r\n"
        + f"{len(packed) - 5:x}\r\n".encode() + packed[5:] + b"\r\n"
        + b"0\r\nX-Trailer: t\r\n\r\n"
    )
    server = Scripted(chunked, ok())
    assert client.post(server.url, b"{}", H).content == b'{"predictions": [1, 2]}'
    assert client.post(server.url, b"{}", H).content == b"[1]"
    assert server.connections == 1  # the chunked answer left the connection reusable
    server.close()


def test_head_and_body_leave_in_one_write(client, monkeypatch):
    server = Scripted(ok())
    client.post(server.url, b"{}", H)  # connect outside the count
    writes: list[bytes] = []
    sendall = socket.socket.sendall

    def counted(sock, data, *args):
        if not bytes(data).startswith(b"HTTP/"):  # not the scripted server's answer
            writes.append(bytes(data))
        return sendall(sock, data, *args)

    monkeypatch.setattr(socket.socket, "sendall", counted)
    client.post(server.url, b'{"data":[1]}', H)
    assert len(writes) == 1 and writes[0].endswith(b'\r\n\r\n{"data":[1]}')
    server.close()


@pytest.mark.parametrize("raw", [False, True], ids=["zlib", "raw"])
def test_deflate_answers(client, raw):
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
    packed = packer.compress(b"[3]") + packer.flush()
    server = Scripted(ok(packed, "Content-Encoding: deflate\r\n"))
    assert client.post(server.url, b"{}", H).content == b"[3]"
    server.close()


def test_a_header_http_rejects_is_an_error_without_its_value(client):
    server = Scripted(ok())
    with pytest.raises(WireError) as info:
        client.post(server.url, b"{}", {"Bad:Name": KEY})
    assert KEY not in str(info.value)
    assert client.post(server.url, b"{}", H).content == b"[1]"  # the client is still usable
    server.close()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n[7]",  # body until close
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\n[7]",
    ],
    ids=["http10-until-close", "connection-close"],
)
def test_answers_that_end_the_connection(client, answer):
    server = Scripted(answer, close_after=1)
    for _ in range(2):
        assert client.post(server.url, b"{}", H).content == b"[7]"
    assert server.connections == 2
    server.close()


def test_a_kept_connection_closed_by_the_server_is_replaced_silently(client):
    server = Scripted(ok(b"[1]"), close_after=1)  # closes without saying so
    assert client.post(server.url, b"{}", H).content == b"[1]"
    time.sleep(0.05)
    assert client.post(server.url, b"{}", H).content == b"[1]"
    assert server.connections == 2
    server.close()


def test_a_kept_connection_closed_after_reading_the_request_is_replaced_once(client):
    server = Scripted(ok(b"[1]"), lambda request: None, ok(b"[2]"))
    assert client.post(server.url, b"{}", H).content == b"[1]"
    assert client.post(server.url, b"{}", H).content == b"[2]"  # sent again, new connection
    assert server.connections == 2 and len(server.requests) == 3
    server.close()


def test_a_new_connection_that_closes_without_answer_is_an_error(client):
    server = Scripted(lambda request: None)
    with pytest.raises(WireError, match="closed the connection"):
        client.post(server.url, b"{}", H)
    server.close()


def test_timeout_refused_and_malformed(client):
    silent = Scripted(lambda request: (time.sleep(1.0), None)[1])
    quick = WireClient(timeout=0.2, connect_timeout=0.2, max_idle=1)
    started = time.monotonic()
    with pytest.raises(WireTimeout):
        quick.post(silent.url, b"{}", H)
    assert time.monotonic() - started < 0.9
    silent.close()

    port = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{port.getsockname()[1]}/score"
    port.close()
    with pytest.raises(WireError, match="cannot connect") as info:
        client.post(url, b"{}", H)
    assert not isinstance(info.value, WireTimeout)

    for raw in (b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n[1]"):
        server = Scripted(raw, close_after=1)
        with pytest.raises(WireError):
            client.post(server.url, b"{}", H)
        server.close()


def test_plain_http_decides_which_client_sends(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert plain_http("http://127.0.0.1:8080/score", H)
    assert not plain_http("https://h/score", H)
    assert not plain_http("http://user:pw@h/score", H)
    assert not plain_http("http://h/scöre", H)
    assert not plain_http("http://h/score", {"X-Bad": "a\r\nInjected: 1"})
    assert not plain_http("http://h/score", {"X-Name": "Zoë€"})
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    assert not plain_http("http://h/score", H)
    monkeypatch.setenv("NO_PROXY", "h")
    assert plain_http("http://h/score", H)


def test_endpoint_client_errors_name_the_wire_failure_without_the_key():
    port = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{port.getsockname()[1]}/score"
    port.close()
    spec = EndpointSpec(name="w", url=url, api_key=SecretRef.parse(f"literal:{KEY}"), retries=1,
                        backoff_base=0.001)
    endpoint = EndpointClient(spec)
    assert endpoint._config.plain
    with pytest.raises(EndpointError) as info:
        endpoint.score([{"x": 1}])
    endpoint.close()
    assert "could not be reached: WireError: cannot connect" in str(info.value)
    assert "gave up after 2 attempts" in str(info.value) and KEY not in str(info.value)


def test_scorer_over_the_wire_with_retry_after():
    answers = [
        (
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 22\r\n\r\n"
            b'{"message": "warming"}'
        ),
        lambda request: ok(b'[{"y": 2}, {"y": 4}]'),
    ]
    server = Scripted(*answers)
    spec = EndpointSpec(name="w", url=server.url, batch_size=2, backoff_base=5.0)
    started = time.monotonic()
    with Scorer(spec) as scorer:
        assert scorer.score([{"x": 1}, {"x": 2}]).values == [{"y": 2}, {"y": 4}]
        assert scorer.metrics.retries == 1
    assert time.monotonic() - started < 2.0  # Retry-After: 0 beat the 5 s backoff
    server.close()
