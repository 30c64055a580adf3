# Property tests: arbitrary header bytes, methods, paths and bodies straight into the ASGI app
# (no HTTP client in between to refuse odd bytes) never give a 500 and every error is in the
# shared shape; the parsers and the config loader only ever fail the documented way.
# Short by default; HYPOTHESIS_PROFILE=fuzz runs the long profile (see conftest.py).
from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import load_settings
from gateway.errors import CODES
from gateway.headers import (
    MalformedHeader,
    is_json_content_type,
    parse_deadline,
    parse_idempotency_key,
    parse_request_id,
    parse_traceparent,
)
from gateway.netaddr import client_key, networks, parse_cidr_list

from conftest import Gateway

HEADER_NAMES = [
    b"x-request-deadline-ms",
    b"traceparent",
    b"x-request-id",
    b"idempotency-key",
    b"content-type",
    b"content-length",
    b"x-forwarded-for",
    b"authorization",
    b"accept",
]
NEAR_VALID = [
    b"0",
    b"250",
    b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    b"application/json",
    b"application/json; charset=utf-8",
    b"198.51.100.1, 10.0.0.7",
    b"[2001:db8::1]:443",
    b"k1",
    b"10",
]
PATHS = [
    "/health",
    "/ready",
    "/metrics",
    "/api/product/123",
    "/api/product/x",
    "/api/products?ids=1,123",
    "/api/stats",
    "/api/order/1",
    "/api/order",
    "/nowhere",
]
latin1 = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=200)
header_value = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(NEAR_VALID),
    st.tuples(st.sampled_from(NEAR_VALID), st.binary(max_size=8)).map(lambda t: t[0] + t[1]),
)
header_name = st.one_of(
    st.sampled_from(HEADER_NAMES), st.binary(min_size=1, max_size=20).map(bytes.lower)
)
method = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=8),
)
body = st.one_of(
    st.binary(max_size=300),
    st.just(b'{"product_id": 123, "quantity": 1}'),
    st.dictionaries(
        st.sampled_from(["product_id", "quantity", "x"]),
        st.one_of(st.integers(), st.text(max_size=5), st.none(), st.floats()),
    ).map(lambda d: json.dumps(d).encode()),
)


async def _call(app: Any, method: str, target: str, headers: list[Any], body: bytes) -> Any:
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("10.0.0.5", 40000),
        "server": ("gateway", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _check_answer(sent: list[dict[str, Any]]) -> None:
    start = next(m for m in sent if m["type"] == "http.response.start")
    status = start["status"]
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    rid = headers["x-request-id"]
    assert rid.isascii() and 1 <= len(rid) <= 128
    assert status != 500, payload
    if status < 400:
        return
    err = orjson.loads(payload)["error"]
    assert set(err) <= {"code", "message", "request_id", "details"}, err
    assert CODES[err["code"]] == status, err
    assert isinstance(err["message"], str) and err["message"]
    if headers.get("idempotent-replayed") != "true":
        # A replay is the first answer byte for byte, with that request's id.
        assert err["request_id"] == rid
    if status >= 500:
        assert err["code"] == "deadline_exceeded", err  # the upstream fakes never fail
    if status in (429, 503):
        assert int(headers["retry-after"]) >= 1


@given(
    method=method,
    target=st.sampled_from(PATHS),
    headers=st.lists(st.tuples(header_name, header_value), max_size=8),
    payload=body,
)
async def test_arbitrary_requests_never_500(
    gw: Gateway, method: str, target: str, headers: list[Any], payload: bytes
) -> None:
    _check_answer(await _call(gw.app, method, target, headers, payload))


@given(
    headers=st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_value), max_size=6),
    payload=body,
)
async def test_arbitrary_orders_never_500(gw: Gateway, headers: list[Any], payload: bytes) -> None:
    headers.append((b"content-type", b"application/json"))
    _check_answer(await _call(gw.app, "POST", "/api/order", headers, payload))


@given(raw=st.one_of(st.none(), latin1))
def test_header_parsers_fail_only_as_documented(raw: str | None) -> None:
    for parse in (parse_deadline, parse_idempotency_key):
        with contextlib.suppress(MalformedHeader):
            parse(raw)
    rid = parse_request_id(raw)
    assert rid is None or (rid.isascii() and 1 <= len(rid) <= 128)
    parent = parse_traceparent(raw)
    assert parent is None or len(parent.trace_id) == 32
    assert isinstance(is_json_content_type(raw), bool)


TRUSTED = networks(parse_cidr_list("10.0.0.0/8,fd00::/8"))


@given(peer=st.sampled_from(["10.0.0.5", "fd00::1", "203.0.113.9", "garbage"]), raw=latin1)
def test_client_key_is_always_a_bucket(peer: str, raw: str) -> None:
    key = client_key(peer, raw, TRUSTED)
    assert isinstance(key, str) and key
    if peer == "203.0.113.9":
        assert key == peer  # an untrusted peer's header is never read


GATEWAY_VARS = ["PORT", "RATE_LIMIT_RPS", "PRICING_URL", "INVENTORY_URLS", "REDIS_URL"]
GATEWAY_VARS += ["TRUSTED_PROXIES", "ADMIN_TOKEN", "INSTANCE_ID", "LOG_LEVEL"]


@given(name=st.sampled_from(GATEWAY_VARS), value=st.text(max_size=60))
def test_config_loads_or_exits_2_with_one_line(name: str, value: str) -> None:
    err = io.StringIO()
    code: Any = None
    with contextlib.redirect_stderr(err):
        try:
            load_settings({name: value})
        except SystemExit as exc:
            code = exc.code
    line = err.getvalue()
    if code is None:
        assert line == ""
    else:
        assert code == 2
        assert line.count("\n") == 1 and f": {name}: " in line, line


@pytest.mark.parametrize("value", [b"\x00", b"\r", b"\n", b"\xff" * 9000])
async def test_bytes_an_http_library_refuses_still_no_5xx(gw: Gateway, value: bytes) -> None:
    for name in HEADER_NAMES:
        _check_answer(await _call(gw.app, "GET", "/api/product/123", [(name, value)], b""))
