"""EndpointClient: one batch of argument values in, one list of results out, over HTTP.

It owns the connections (one endpoint's keep-alive pool, at most ``max_in_flight`` requests on
the wire: plain ``http://`` over :class:`~asaql.ml.wire.WireClient` (``http.client``), 65-110 µs
of CPU per request, and TLS, proxies and test transports over an ``httpx.Client``, ~330 µs), the
auth headers, the retry policy and the periodic re-read of the endpoint configuration.
:meth:`score` (or its three steps :meth:`prepare`, :meth:`send`, :meth:`finish`, which let a
Scorer worker encode its next batch while an answer is on the way) is called from worker
threads and is thread-safe.

Retry policy (ASA retries 503 "with exponential backoff"; 400/401/404/409 fail the job):

=========================  ===========================================================
408, 429, 5xx, timeouts,   retried: delay = ``Retry-After`` if the server sent one, else
connection errors          ``min(backoff_max, backoff_base * 2**(attempt-1))`` with full
                           jitter in [delay/2, delay]; at most ``retries`` retries and never
                           past ``max_retry_time`` seconds after the first attempt
413 (payload too large)    the batch is split in two halves, each scored on its own
                           (down to one event, which then fails)
other 4xx                  not retried (424: the model container's own status and reason,
                           from Azure ML's ``ms-azureml-model-error-*`` headers, are shown)
200 with a wrong shape     not retried (the model answered; asking again won't fix it)
=========================  ===========================================================

Every message that leaves this module goes through :func:`~asaql.ml.secrets.redact` with
every credential this client has ever sent (the key, credential headers, the URL's user info
and query values), and shows the URL with query values masked. An answer's body is redacted
before it is trimmed, so a key the server echoes is never cut in half and half shown. httpx
logs every request's URL at INFO (httpcore, at DEBUG, quotes a header it refuses); a filter on
those loggers masks the same values.
"""

from __future__ import annotations

import email.utils
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import pyarrow as pa

from asaql.errors import AsaqlError, ConfigError, EndpointError
from asaql.ml.endpoint import EndpointSpec, load_function_spec
from asaql.ml.metrics import EndpointMetrics
from asaql.ml.protocols import (
    ResponseShapeError,
    dumps,
    error_message,
    first_row,
    loads,
    make_codec,
)
from asaql.ml.secrets import redact
from asaql.ml.wire import Sent, WireClient, WireError, WireResponse, WireTimeout, plain_http

__all__ = ["Call", "EndpointClient", "describe_event"]

_RETRYABLE = frozenset({408, 429})
_EVENT_CHARS = 200


def describe_event(value: Any, secrets: list[str] | None = None) -> str:
    """A short JSON rendering of one event's argument for error messages."""
    try:
        text = dumps(value).decode("utf-8", "replace")
    except (TypeError, ValueError):
        text = repr(value)
    text = redact(text, secrets or [])  # before trimming: a cut key would show its first half
    if len(text) > _EVENT_CHARS:
        text = text[: _EVENT_CHARS - 3] + "..."
    return text


class _Resolved:
    """The parts of the configuration that are re-read every update_frequency."""

    __slots__ = ("headers", "key", "loaded_at", "plain", "spec", "url")

    def __init__(self, spec: EndpointSpec, loaded_at: float) -> None:
        self.spec = spec
        self.url = spec.url
        self.key = spec.api_key.resolve() if spec.api_key is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        headers.update(dict(spec.headers))
        if self.key is not None and spec.auth_header == "bearer":
            headers["Authorization"] = f"Bearer {self.key}"
        elif self.key is not None and spec.auth_header == "api-key":
            headers["api-key"] = self.key
        if spec.deployment:
            headers["azureml-model-deployment"] = spec.deployment
        _check_headers(spec, headers)
        self.headers = headers
        self.loaded_at = loaded_at
        self.plain = plain_http(self.url, headers)  # sent over the WireClient


def _check_headers(spec: EndpointSpec, headers: dict[str, str]) -> None:
    """Refuse a header HTTP cannot carry (a key read with its line end, say) before it is
    sent: the HTTP libraries' own errors, and httpcore's debug log, quote the value."""
    for name, value in headers.items():
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            bad = True
        else:
            bad = any(c in value for c in "\r\n\0")
        if not bad:
            continue
        is_key = spec.api_key is not None and name.lower() in ("authorization", "api-key")
        what = f"the API key ({spec.api_key})" if is_key else f"the value of header {name!r}"
        raise ConfigError(
            f"function '{spec.name}': {what} holds a line break, a NUL or a character "
            "outside Latin-1, which an HTTP header cannot carry",
            help="check the key for a trailing newline or a stray character",
        )


class Call:
    """One batch between :meth:`EndpointClient.prepare` and :meth:`EndpointClient.finish`."""

    __slots__ = ("body", "config", "error", "rows", "sent", "sent_at", "started")

    def __init__(self, config: _Resolved, rows: list[Any] | pa.Array, started: float) -> None:
        self.config = config
        self.rows = rows
        self.started = started
        self.body: bytes | None = None
        self.error: str | None = None
        self.sent: Sent | WireError | None = None  # the first attempt, when send wrote it
        self.sent_at = 0.0


class EndpointClient:
    """Sends batches to one endpoint; see the module docstring for the retry policy."""

    def __init__(
        self,
        spec: EndpointSpec,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        metrics: EndpointMetrics | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.spec = spec
        self.metrics = metrics or EndpointMetrics(spec.name)
        self._codec = make_codec(spec)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._lock = threading.Lock()
        self._seen_keys: list[str] = []
        self._config = self._resolve(spec)
        # at most max_in_flight requests on the wire (the Scorer runs that many workers, each
        # encoding its next body while its answer is on the way; direct score() calls from
        # more threads wait here). A queue of tokens rather than threading.Semaphore: get/put
        # are C, no Python-level Condition
        self._wire: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(spec.max_in_flight):
            self._wire.put(None)
        self.lookahead = spec.max_in_flight  # each worker prepares its next batch
        self.takes_arrow = True  # rows may be one Arrow array (see Codec.encode_rows)
        self._transport = transport
        timeout = httpx.Timeout(spec.timeout, connect=min(spec.timeout, 10.0))
        self._timeout = timeout
        # plain http:// goes over the small keep-alive client (see asaql.ml.wire for why);
        # TLS, proxies and test transports over httpx, created on first use
        self._plain: WireClient | None = None
        if transport is None:
            self._plain = WireClient(
                timeout=spec.timeout,
                connect_timeout=min(spec.timeout, 10.0),
                max_idle=spec.max_in_flight,
            )
        self._httpx: httpx.Client | None = None

    def _httpx_client(self) -> httpx.Client:
        if self._httpx is not None:
            return self._httpx
        with self._lock:
            if self._httpx is None:
                limits = httpx.Limits(
                    max_connections=self.spec.max_in_flight,
                    max_keepalive_connections=self.spec.max_in_flight,
                )
                self._httpx = httpx.Client(
                    transport=self._transport, limits=limits, timeout=self._timeout
                )
            return self._httpx

    # -- configuration ------------------------------------------------------------------------

    def _resolve(self, spec: EndpointSpec) -> _Resolved:
        config = _Resolved(spec, self._clock())
        # the key, the values of extra headers that carry credentials (an
        # Ocp-Apim-Subscription-Key, a token; a deployment name or a content type stays shown),
        # and the URL's user info and query values (Azure Functions' ?code=, SAS signatures)
        found = [config.key, *(value for name, value in spec.headers if _secret_header(name))]
        found += url_secrets(spec.url)
        for secret in found:
            if secret and secret not in self._seen_keys:
                self._seen_keys.append(secret)
        _LOG_FILTER.add(self._seen_keys)
        return config

    def current(self) -> _Resolved:
        """The configuration to use now, re-read when update_frequency has passed."""
        config = self._config
        every = self.spec.update_frequency
        if every is None or self._clock() - config.loaded_at < every:
            return config
        with self._lock:
            if self._config is not config:
                return self._config
            try:
                fresh = self.spec
                if self.spec.source:
                    fresh = load_function_spec(self.spec.name, self.spec.source)
                    fresh = self.spec.with_options(
                        url=fresh.url,
                        api_key=fresh.api_key,
                        deployment=fresh.deployment,
                        auth_header=fresh.auth_header,
                        headers=fresh.headers,
                    )
                self._config = self._resolve(fresh)
            except AsaqlError:  # keep the last good configuration; try again next period
                config.loaded_at = self._clock()
            return self._config

    def redact(self, text: str) -> str:
        return redact(text, self._seen_keys)

    # -- scoring ------------------------------------------------------------------------------

    def score(self, rows: list[Any] | pa.Array) -> list[Any]:
        """Score one batch (a list of rows or one Arrow array of them); returns one result per
        row, in order, or raises EndpointError."""
        call = self.prepare(rows)
        self.send(call)
        return self.finish(call)

    # The Scorer's workers split score() in three so that a worker can encode its next batch
    # while the answer to this one is on its way: prepare (encode), send (write the first
    # attempt; plain http only), finish (read the answer, retry, decode).

    def prepare(self, rows: list[Any] | pa.Array) -> Call:
        """Encode one batch into a request body (an encoding failure is raised by finish)."""
        call = Call(self.current(), rows, self._clock())
        try:
            call.body = dumps(self._codec.encode_rows(rows))
        except (TypeError, ValueError) as exc:
            call.error = f"cannot encode the request: {exc}"
        return call

    def send(self, call: Call) -> None:
        """Write the first attempt of a prepared call (plain http only; else finish sends)."""
        if call.body is None or not call.config.plain or self._plain is None:
            return
        self._wire.get()  # given back once finish has read the answer
        call.sent_at = self._clock()
        try:
            call.sent = self._plain.send(call.config.url, call.body, call.config.headers)
        except WireError as exc:
            call.sent = exc  # the first attempt failed; finish reports and retries it
        except BaseException:
            self._wire.put(None)
            raise

    def finish(self, call: Call) -> list[Any]:
        """The results of a prepared (and maybe sent) call, after retries, or EndpointError."""
        config, rows, body, started = call.config, call.rows, call.body, call.started
        n = len(rows)
        if body is None:
            self.metrics.record_request(events=n, latency=0.0, ok=False, retries=0)
            raise self._error(config, rows, call.error or "cannot encode the request", None)
        attempt = 0
        while True:
            attempt += 1
            status, message, response, latency = self._attempt(config, body, call)
            call = None  # retries go out afresh
            if response is not None and status < 300:
                results = self._decode(config, rows, response, attempt - 1)
                self.metrics.record_request(events=n, latency=latency, ok=True, retries=attempt - 1)
                return results
            if status == 413 and n > 1:  # too large for the endpoint: score each half
                self.metrics.record_request(events=0, latency=0.0, ok=False, retries=attempt - 1)
                return self._split(rows)
            retryable = status == 0 or status in _RETRYABLE or status >= 500
            delay = self._delay(attempt, response)
            elapsed = self._clock() - started
            if not retryable or attempt > self.spec.retries or (
                elapsed + delay > self.spec.max_retry_time
            ):
                self.metrics.record_request(events=n, latency=0.0, ok=False, retries=attempt - 1)
                why = "not retried" if not retryable else (
                    f"gave up after {attempt} attempts in {elapsed:.1f} s"
                )
                raise self._error(config, rows, f"{message} ({why})", status or None)
            self._sleep(delay)
            config = self.current()

    def _split(self, rows: list[Any] | pa.Array) -> list[Any]:
        """Score the two halves of a batch the endpoint refused as too large (413)."""
        half = len(rows) // 2
        return self.score(rows[:half]) + self.score(rows[half:])

    def _attempt(
        self, config: _Resolved, body: bytes, call: Call | None
    ) -> tuple[int, str, httpx.Response | WireResponse | None, float]:
        sent = call.sent if call is not None else None
        if sent is None:
            self._wire.get()
            sent_at = self._clock()
        else:
            sent_at = call.sent_at  # type: ignore[union-attr]
        try:
            if isinstance(sent, WireError):
                raise sent
            if sent is not None:
                response: httpx.Response | WireResponse = self._plain.receive(sent)  # type: ignore[union-attr]
            elif config.plain and self._plain is not None:
                response = self._plain.post(config.url, body, config.headers)
            else:
                response = self._httpx_client().post(
                    config.url, content=body, headers=config.headers
                )
            latency = self._clock() - sent_at
        except (httpx.TimeoutException, WireTimeout):
            return 0, f"did not answer within {self.spec.timeout:g} s (timeout)", None, 0.0
        except (httpx.RequestError, WireError) as exc:  # transport, decoding, redirects
            return 0, f"could not be reached: {type(exc).__name__}: {exc}", None, 0.0
        except httpx.InvalidURL as exc:
            return 0, f"could not be sent: the URL is not valid: {exc}", None, 0.0
        finally:
            self._wire.put(None)
        status = response.status_code
        if status < 300:
            return status, "", response, latency
        reason = response.reason_phrase or ""
        # redacted before error_message trims it, so an echoed key is never cut in half
        content = self.redact(response.content.decode("utf-8", "replace")).encode()
        detail = error_message(content)
        message = f"answered {status} {reason}".rstrip() + (f": {detail}" if detail else "")
        return status, message + _model_error(response), response, latency

    def _decode(
        self, config: _Resolved, rows: list[Any], response: httpx.Response | WireResponse, retries: int
    ) -> list[Any]:
        n = len(rows)
        try:
            return self._codec.decode(loads(response.content), n)
        except ResponseShapeError as exc:
            message = f"answered with a response that does not match the batch: {exc}"
        except ValueError as exc:
            message = f"answered with a body that is not JSON: {exc}"
        self.metrics.record_request(events=n, latency=0.0, ok=False, retries=retries)
        raise self._error(config, rows, message, response.status_code)

    def _delay(self, attempt: int, response: httpx.Response | WireResponse | None) -> float:
        if response is not None:
            retry_after = _retry_after(response.headers.get("retry-after"))
            if retry_after is not None:
                return retry_after
        base = min(self.spec.backoff_max, self.spec.backoff_base * 2 ** (attempt - 1))
        return base * (0.5 + self._rng() / 2)

    def _error(
        self, config: _Resolved, rows: list[Any], message: str, status: int | None
    ) -> EndpointError:
        first = describe_event(first_row(rows), self._seen_keys) if len(rows) else "-"
        text = (
            f"ML endpoint '{self.spec.name}' at {config.spec.display_url} {message}; "
            f"batch of {len(rows)} events, first event: {first}"
        )
        error = EndpointError(self.redact(text), status=status)
        error.url = config.spec.display_url  # type: ignore[attr-defined]
        return error

    def close(self) -> None:
        if self._plain is not None:
            self._plain.close()
        with self._lock:
            if self._httpx is not None:
                self._httpx.close()


_SECRET_HEADER_WORDS = ("key", "token", "auth", "secret", "signature", "password", "credential", "cookie")


def url_secrets(url: str) -> list[str]:
    """The credentials a URL carries, in the forms they are sent and echoed: the user info
    (``user:password`` as given and decoded, whose base64 is a Basic credential; the password
    alone) and the values of query parameters that name a credential or are long enough to be
    one (``?code=...``, ``&sig=...``). Short values such as ``api-version=1`` stay shown.

    >>> url_secrets("https://u:p%2Bw0rd@h/score?code=abc%2Bdefghij&api-version=1")
    ['u:p%2Bw0rd', 'u:p+w0rd', 'p%2Bw0rd', 'p+w0rd', 'abc%2Bdefghij', 'abc+defghij']
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found: list[str] = []
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    if userinfo:
        found += [userinfo, unquote(userinfo)]
        password = userinfo.partition(":")[2]
        if password:
            found += [password, unquote(password)]
    for item in parts.query.split("&"):
        name, equals, raw = item.partition("=")
        if not equals:  # a bare ?VALUE
            name, raw = "", item
        if not raw:
            continue
        value = parse_qsl(f"v={raw}", keep_blank_values=True)[0][1]
        if _secret_param(name) or len(value) >= _LONG_PARAM:
            found += [raw, value]
    return list(dict.fromkeys(v for v in found if v))


_LONG_PARAM = 16  # a query value this long may be a credential whatever its name
_SECRET_PARAM_WORDS = (*_SECRET_HEADER_WORDS, "code", "sig")  # Azure Functions, SAS tokens


def _secret_param(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_PARAM_WORDS)


class _RedactingFilter(logging.Filter):
    """Masks the credentials of every EndpointClient in records of the ``httpx`` logger (it
    logs each request's URL, user info and query included, at INFO) and of httpcore's (at
    DEBUG, its failures quote what was sent)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: list[str] = []
        self._lock = threading.Lock()
        self._installed = False

    def add(self, secrets: list[str]) -> None:
        with self._lock:
            for secret in secrets:
                if secret not in self._secrets:
                    self._secrets.append(secret)
            if not self._installed and self._secrets:
                for name in _HTTP_LOGGERS:  # a logger's filters skip its children's records
                    logging.getLogger(name).addFilter(self)
                self._installed = True

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's to report, not ours
            return True
        clean = redact(message, self._secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_HTTP_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
_LOG_FILTER = _RedactingFilter()


def _secret_header(name: str) -> bool:
    """Whether an extra header's value is a credential (masked wherever it would show)."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_HEADER_WORDS)


def _model_error(response: httpx.Response | WireResponse) -> str:
    """What an Azure ML endpoint says of its model container's own failure (424 answers carry
    it in ``ms-azureml-model-error-statuscode`` / ``-reason`` headers)."""
    code = response.headers.get("ms-azureml-model-error-statuscode")
    reason = response.headers.get("ms-azureml-model-error-reason")
    if not code and not reason:
        return ""
    return " (model container answered " + " ".join(str(p) for p in (code, reason) if p) + ")"


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
