# The upstream HTTP/1.1 pool against real sockets: keep-alive reuse, framing, and what each
# way of failing says about whether the request left (the saga's "maybe applied").
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import uvloop

from gateway.clients.transport import HttpPool, TransportError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + (await reader.readexactly(length) if length else b"")


@asynccontextmanager
async def serve(
    answer: Callable[[Server, bytes, asyncio.StreamWriter], Awaitable[bool]],
) -> AsyncIterator[Server]:
    """A server that hands each request to `answer`; False from it ends the connection."""
    state = Server()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            while True:
                request = await read_request(reader)
                state.requests.append(request)
                if not await answer(state, request, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()


async def ok(_: Server, __: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(OK)
    await writer.drain()
    return True


async def test_connections_are_kept_alive_and_reused() -> None:
    async with serve(ok) as srv:
        pool = HttpPool(f"http://127.0.0.1:{srv.port}/prefix/", 4)
        for _ in range(3):
            resp = await pool.request("GET", "/api/x", {"X-Request-Id": "r1"}, None, 1)
            assert (resp.status, resp.body) == (200, b'{"ok":true}')
            assert resp.headers[b"content-type"] == b"application/json"
        await pool.close()
    assert srv.connections == 1
    first = srv.requests[0]
    assert first.startswith(b"GET /prefix/api/x HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{srv.port}\r\n".encode() in first
    assert b"X-Request-Id: r1\r\n" in first


async def test_a_body_goes_out_as_json_with_its_length() -> None:
    async with serve(ok) as srv:
        pool = HttpPool(f"http://127.0.0.1:{srv.port}", 4)
        await pool.request("POST", "/api/reserve", {}, b'{"q":1}', 1)
        await pool.close()
    assert b"Content-Type: application/json\r\nContent-Length: 7\r\n" in srv.requests[0]
    assert srv.requests[0].endswith(b'\r\n\r\n{"q":1}')


async def test_a_chunked_answer_is_read_whole() -> None:
    async def chunked(_: Server, __: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 421 Misdirected\r\nTransfer-Encoding: chunked\r\n")
        writer.write(b"X-Shard-Owner: http://b\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        await writer.drain()
        return True

    async with serve(chunked) as srv:
        pool = HttpPool(f"http://127.0.0.1:{srv.port}", 4)
        resp = await pool.request("GET", "/", {}, None, 1)
        assert (resp.status, resp.body) == (421, b"abcde")
        assert resp.headers[b"x-shard-owner"] == b"http://b"
        await pool.request("GET", "/", {}, None, 1)
        await pool.close()
    assert srv.connections == 1


async def test_a_refused_connection_was_never_sent() -> None:
    async with serve(ok) as srv:
        port = srv.port
    pool = HttpPool(f"http://127.0.0.1:{port}", 4)
    with pytest.raises(TransportError) as err:
        await pool.request("POST", "/api/commit", {}, b"{}", 1)
    assert not err.value.sent and not err.value.timed_out


async def test_a_connection_dropped_after_the_request_may_have_applied_it() -> None:
    async def drop(_: Server, __: bytes, ___: asyncio.StreamWriter) -> bool:
        return False

    async with serve(drop) as srv:
        pool = HttpPool(f"http://127.0.0.1:{srv.port}", 4)
        with pytest.raises(TransportError) as err:
            await pool.request("POST", "/api/commit", {}, b"{}", 1)
        await pool.close()
    assert err.value.sent and not err.value.timed_out


async def test_a_timeout_after_sending_is_sent_and_the_connection_is_not_reused() -> None:
    calls = 0

    async def slow_first(_: Server, __: bytes, writer: asyncio.StreamWriter) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(
                0.5
            )  # answers after the client gave up: never read as the next answer
        writer.write(OK)
        await writer.drain()
        return True

    async with serve(slow_first) as srv:
        pool = HttpPool(f"http://127.0.0.1:{srv.port}", 4)
        with pytest.raises(TransportError) as err:
            await pool.request("GET", "/", {}, None, 0.1)
        assert err.value.sent and err.value.timed_out
        resp = await pool.request("GET", "/", {}, None, 2)
        assert resp.status == 200
        await pool.close()
    assert srv.connections == 2


async def test_a_malformed_answer_is_an_error_not_an_answer() -> None:
    async def garbage(_: Server, __: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        return True

    async with serve(garbage) as srv:
        pool = HttpPool(f"http://127.0.0.1:{srv.port}", 4)
        with pytest.raises(TransportError) as err:
            await pool.request("GET", "/", {}, None, 1)
        await pool.close()
    assert err.value.sent and "malformed" in err.value.reason


async def test_connection_close_and_server_side_idle_close_open_a_new_connection() -> None:
    async def close_after(_: Server, request: bytes, writer: asyncio.StreamWriter) -> bool:
        if b"/close" in request:
            writer.write(OK.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
            await writer.drain()
            return False
        writer.write(OK)
        await writer.drain()
        return b"/idle-close" not in request  # answered, then closed while idle

    async with serve(close_after) as srv:
        pool = HttpPool(f"http://127.0.0.1:{srv.port}", 4)
        assert (await pool.request("GET", "/close", {}, None, 1)).status == 200
        assert (await pool.request("GET", "/idle-close", {}, None, 1)).status == 200
        await asyncio.sleep(0.05)  # the server's FIN arrives while the connection is idle
        assert (await pool.request("GET", "/", {}, None, 1)).status == 200
        await pool.close()
    assert srv.connections == 3


async def test_a_cancelled_exchange_closes_its_connection() -> None:
    async def never(_: Server, __: bytes, ___: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(10)
        return True

    async with serve(never) as srv:
        pool = HttpPool(f"http://127.0.0.1:{srv.port}", 4)
        task = asyncio.create_task(pool.request("GET", "/", {}, None, 5))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pool._idle == []
        await pool.close()


async def test_idle_connections_are_capped() -> None:
    async with serve(ok) as srv:
        pool = HttpPool(f"http://127.0.0.1:{srv.port}", 2)
        await asyncio.gather(*(pool.request("GET", "/", {}, None, 1) for _ in range(5)))
        assert len(pool._idle) == 2
        await pool.close()
    assert srv.connections == 5


async def test_cr_or_lf_never_reaches_the_wire() -> None:
    pool = HttpPool("http://127.0.0.1:9", 2)
    with pytest.raises(ValueError, match="CR or LF"):
        await pool.request("GET", "/", {"X-Request-Id": "a\r\nX-Evil: 1"}, None, 1)
    with pytest.raises(ValueError, match="CR or LF"):
        await pool.request("GET", "/a\nb", {}, None, 1)


def test_only_plain_http_origins() -> None:
    for bad in ("https://pricing:8001", "pricing:8001", "http://"):
        with pytest.raises(ValueError, match="http://"):
            HttpPool(bad, 1)


def test_the_pool_runs_on_uvloop_as_the_gateway_does() -> None:
    async def scenario() -> tuple[int, int]:
        async with serve(ok) as srv:
            pool = HttpPool(f"http://127.0.0.1:{srv.port}", 4)
            for _ in range(3):
                assert (await pool.request("GET", "/", {}, None, 1)).status == 200
            await pool.close()
            return srv.connections, len(srv.requests)

    assert uvloop.run(scenario()) == (1, 3)
