# The gateway's HTTP/1.1 client: a keep-alive pool of asyncio protocol connections to one
# upstream origin, answers read by httptools (llhttp, the parser uvicorn already runs for the
# gateway's own server side).
#
# Why not aiohttp's client, which this replaced: profiled under load (docs/ARCHITECTURE.md,
# Decisions), aiohttp spent ~150 µs of Python per call, half of the gateway's CPU
# per product read, on machinery the gateway never uses (cookies, redirects, proxies,
# compression, streaming, tracing hooks). Every upstream here is a known HTTP/1.1 service
# answering a few kB with Content-Length or chunked bodies, so this is all the gateway needs,
# and it says exactly what the saga must know about a failed call: whether the request's
# bytes left for the socket (`sent`), so "maybe applied" is never guessed.
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

# An idle connection older than this is closed rather than reused: the upstream's own idle
# timeout (Go's net/http IdleTimeout, hyper's keep-alive) may be about to close it.
IDLE_S = 30.0


class TransportError(Exception):
    """No complete answer came.

    sent: the request's bytes were handed to the socket, so the upstream may have received
    and applied it. timed_out: the time given ran out (else the connection failed or the
    answer was not HTTP)."""

    def __init__(self, reason: str, *, sent: bool, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sent = sent
        self.timed_out = timed_out


@dataclass(slots=True)
class RawResponse:
    status: int
    headers: dict[bytes, bytes]  # names lower-cased; a repeated header keeps its last value
    body: bytes


class _Connection(asyncio.Protocol):
    """One TCP connection carrying one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[RawResponse] | None = None
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []

    # asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport quacks like asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Bytes nobody asked for (a late answer to an abandoned exchange, or garbage):
            # the stream's framing can no longer be trusted.
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportError(f"malformed answer: {exc}", sent=True))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(TransportError("connection closed before the answer", sent=True))

    # httptools callbacks --------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        response = RawResponse(self._parser.get_status_code(), self._headers, b"".join(self._body))
        self._headers, self._body = {}, []
        self.reusable = self._parser.should_keep_alive()
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    # the pool's side ------------------------------------------------------------------
    def exchange(self, data: bytes) -> asyncio.Future[RawResponse]:
        assert self.transport is not None and self._waiter is None
        self.reusable = False
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self._waiter

    def usable(self, now: float) -> bool:
        return (
            not self.closed
            and self.transport is not None
            and not self.transport.is_closing()
            and now - self.idle_since < IDLE_S
        )

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: TransportError) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)


class HttpPool:
    """Keep-alive connections to one http:// origin (config.py refuses https: TLS ends at
    the ingress or mesh). Concurrency is bounded by the caller (the upstream's bulkhead); the
    pool keeps at most max_idle connections between calls and closes the rest."""

    def __init__(self, base_url: str, max_idle: int) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not an http:// URL: {base_url!r}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._authority = parts.netloc.rpartition("@")[2].encode("ascii")
        self._prefix = parts.path.rstrip("/")
        self._max_idle = max_idle
        self._idle: list[_Connection] = []  # a stack: the warmest connection is reused first
        self._closed = False

    async def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes | None,
        within_s: float,
    ) -> RawResponse:
        """One exchange, finished within within_s seconds or TransportError."""
        data = self._encode(method, path, headers, body)
        conn: _Connection | None = None
        sent = done = False
        try:
            async with asyncio.timeout(within_s):
                conn = await self._acquire()
                waiter = conn.exchange(data)
                sent = True
                response = await waiter
            done = True
            return response
        except TimeoutError:
            raise TransportError("timeout", sent=sent, timed_out=True) from None
        except OSError as exc:
            # Only connect raises OSError here (a write error arrives as connection_lost).
            raise TransportError(f"connect: {exc.strerror or exc}", sent=False) from None
        finally:
            if conn is not None:
                self._release(conn, done)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def _acquire(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable(now):
                return conn
            conn.close()
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Connection, self._host, self._port)
        return conn

    def _release(self, conn: _Connection, done: bool) -> None:
        # An exchange that did not finish (timeout, cancel, error) leaves the stream
        # mid-message: that connection is never reused.
        keep = done and conn.reusable and not conn.closed and not self._closed
        if keep and len(self._idle) < self._max_idle:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()

    def _encode(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> bytes:
        # Values come from our own formatters, but a CR or LF must never split a request.
        probe = "".join((method, path, *headers.keys(), *headers.values()))
        if "\r" in probe or "\n" in probe:
            raise ValueError("CR or LF inside a request line or header")
        lines = [f"{method} {self._prefix}{path} HTTP/1.1"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        if body is not None:
            lines.append("Content-Type: application/json")
            lines.append(f"Content-Length: {len(body)}")
        head = "\r\n".join(lines)
        return b"%s\r\nHost: %s\r\n\r\n%s" % (
            head.encode("latin-1"),
            self._authority,
            body or b"",
        )
