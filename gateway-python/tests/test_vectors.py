# The shared vectors of services/contracts (env-vectors.json, header-vectors.json), run
# against the gateway's config loader and its one header parser, and a few through the app.
from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_settings, parse_http_url
from gateway.context import new_context, outgoing_headers, trace_from
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
from test_products import assert_error

CONTRACTS = Path(__file__).resolve().parents[2] / "services" / "contracts"
ENV = json.loads((CONTRACTS / "env-vectors.json").read_text())
HEADERS = json.loads((CONTRACTS / "header-vectors.json").read_text())["headers"]
GATEWAY_VARS = {name for name, v in ENV["variables"].items() if "gateway" in v["services"]}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)})"


def _env_cases() -> list[Any]:
    cases = [c for c in ENV["cases"] if set(c["env"]) <= GATEWAY_VARS]
    return [pytest.param(c, id=f"{i}-{_short(c['env'])}") for i, c in enumerate(cases)]


def _header_cases(header: str) -> list[Any]:
    return [
        pytest.param(c, id=f"{i}-{_short(c['raw'])}")
        for i, c in enumerate(HEADERS[header]["cases"])
    ]


def test_the_gateway_runs_most_env_vectors() -> None:
    assert len(_env_cases()) > 400
    assert "TRUSTED_PROXIES" in GATEWAY_VARS


@pytest.mark.parametrize("case", _env_cases())
def test_env_vector(case: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    if "error" in case:
        with pytest.raises(SystemExit) as exc:
            load_settings(case["env"])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.endswith("\n"), err
        assert f": {case['error']}: " in err, err
        return
    settings = load_settings(case["env"])
    assert capsys.readouterr().err == ""
    for name, expected in case["expect"].items():
        if name not in GATEWAY_VARS:
            continue
        if isinstance(expected, dict):
            expected = expected["gateway"]
        assert getattr(settings, name.lower()) == expected, name


def test_defaults_are_the_vector_defaults() -> None:
    settings = load_settings({})
    for name in GATEWAY_VARS - {"INSTANCE_ID"}:
        default = ENV["variables"][name]["default"]
        if isinstance(default, dict):
            default = default["gateway"]
        assert getattr(settings, name.lower()) == default, name


def test_secrets_never_reach_the_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        load_settings({"ADMIN_TOKEN": "s3cr\u00e9t"})
    assert "s3cr" not in capsys.readouterr().err


def test_http_url_keeps_a_prefix_and_drops_slashes() -> None:
    assert parse_http_url("http://a:1/x/y//") == "http://a:1/x/y"


# Header vectors: straight into the parser ---------------------------------------------------


@pytest.mark.parametrize("case", _header_cases("X-Request-Deadline-Ms"))
def test_deadline_vector(case: dict[str, Any]) -> None:
    if case["expect"] == "malformed":
        with pytest.raises(MalformedHeader):
            parse_deadline(case["raw"])
    elif case["expect"] == "absent":
        assert parse_deadline(case["raw"]) is None
    else:
        assert parse_deadline(case["raw"]) == case["expect"]


@pytest.mark.parametrize("case", _header_cases("traceparent"))
def test_traceparent_vector(case: dict[str, Any]) -> None:
    parent = parse_traceparent(case["raw"])
    trace_id, _ = trace_from(case["raw"])
    if case["expect"] == "continue":
        assert parent is not None and parent.trace_id == case["trace_id"]
        assert trace_id == case["trace_id"]
    else:
        assert parent is None
        assert len(trace_id) == 32


@pytest.mark.parametrize("case", _header_cases("X-Request-Id"))
def test_request_id_vector(case: dict[str, Any]) -> None:
    kept = parse_request_id(case["raw"])
    if case["expect"] == "keep":
        assert kept == case["raw"].strip(" \t")
    else:
        assert kept is None


@pytest.mark.parametrize("case", _header_cases("Idempotency-Key"))
def test_idempotency_key_vector(case: dict[str, Any]) -> None:
    if case["expect"] == "reject":
        with pytest.raises(MalformedHeader):
            parse_idempotency_key(case["raw"])
    elif case["expect"] == "absent":
        assert parse_idempotency_key(case["raw"]) is None
    else:
        assert parse_idempotency_key(case["raw"]) == case["raw"].strip(" \t")


@pytest.mark.parametrize("case", _header_cases("Content-Type"))
def test_content_type_vector(case: dict[str, Any]) -> None:
    assert is_json_content_type(case["raw"]) is (case["expect"] == "accept")


@pytest.mark.parametrize("case", _header_cases("X-Forwarded-For"))
def test_forwarded_for_vector(case: dict[str, Any]) -> None:
    trusted = networks(parse_cidr_list(case["trusted"]))
    assert client_key(case["peer"], case["raw"], trusted) == case["expect"]


def test_forwarded_for_extras() -> None:
    trusted = networks(parse_cidr_list("10.0.0.0/8"))
    # A dual-stack listener reports an IPv4 peer as IPv4-mapped IPv6: still trusted.
    assert client_key("::ffff:10.0.0.5", "198.51.100.1", trusted) == "198.51.100.1"
    assert client_key(None, "198.51.100.1", trusted) == "unknown"
    assert client_key("10.0.0.5", "fe80::1%eth0", trusted) == "10.0.0.5"  # no zones
    assert client_key("10.0.0.5", "[::1]:99999999", trusted) == "10.0.0.5"
    assert client_key("10.0.0.5", "1.2.3.4:x", trusted) == "10.0.0.5"


def test_outgoing_headers_are_what_the_parser_accepts() -> None:
    incoming = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-x"
    for ctx in (None, new_context(" rid-1 ", incoming, 900, 2500)):
        headers = outgoing_headers(ctx, 250)
        assert parse_request_id(headers["X-Request-Id"]) == headers["X-Request-Id"]
        assert parse_traceparent(headers["traceparent"]) is not None
        assert parse_deadline(headers["X-Request-Deadline-Ms"]) == 250
    assert headers["X-Request-Id"] == "rid-1"
    assert headers["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert headers["traceparent"].endswith("-01")  # a higher version: the sampled bit only
    assert parse_deadline(outgoing_headers(None, -5)["X-Request-Deadline-Ms"]) == 0
    assert parse_deadline(outgoing_headers(None, 2**40)["X-Request-Deadline-Ms"]) == 2**31 - 1


def test_cidr_list_normalises() -> None:
    assert parse_cidr_list("10.1.2.3/8, ::1") == ["10.0.0.0/8", "::1/128"]
    for bad in ("10.0.0.0/255.0.0.0", "::1%lo", "10.0.0.0/ 8", "10.0.0.1/08a"):
        with pytest.raises(ValueError, match=r"\S"):
            parse_cidr_list(bad)
    assert ipaddress.ip_network(parse_cidr_list("fd00::1/8")[0]).prefixlen == 8


# Header vectors through the real app -----------------------------------------------------------

ORDER = b'{"product_id": 123, "quantity": 1}'


def _raw(value: str) -> bytes:
    return value.encode("latin-1")


def _sendable_cases(name: str) -> list[Any]:
    # httpx refuses to send what h11 refuses (NUL, CR, LF), and so does uvicorn's h11 on
    # the wire: those vectors run against the parsers above, not as skips here.
    return [
        p
        for p in _header_cases(name)
        if p.values[0]["raw"] is None or not any(x in p.values[0]["raw"] for x in "\x00\r\n")
    ]


@pytest.mark.parametrize("case", _sendable_cases("Content-Type"))
async def test_content_type_vector_through_the_app(gw: Gateway, case: dict[str, Any]) -> None:
    headers = [] if case["raw"] is None else [(b"content-type", _raw(case["raw"]))]
    resp = await gw.client.post("/api/order", content=ORDER, headers=headers)
    if case["expect"] == "accept":
        assert resp.status_code == 201, resp.text
    else:
        assert_error(resp, 415, "unsupported_media_type")


@pytest.mark.parametrize("case", _sendable_cases("Idempotency-Key"))
async def test_idempotency_key_vector_through_the_app(gw: Gateway, case: dict[str, Any]) -> None:
    headers = [(b"content-type", b"application/json")]
    if case["raw"] is not None:
        headers.append((b"idempotency-key", _raw(case["raw"])))
    resp = await gw.client.post("/api/order", content=ORDER, headers=headers)
    if case["expect"] == "reject":
        err = assert_error(resp, 422, "validation_failed")
        assert err["details"][0]["field"] == "Idempotency-Key"
    else:
        assert resp.status_code == 201, resp.text


async def test_idempotency_key_is_trimmed(gw: Gateway) -> None:
    first = await gw.client.post(
        "/api/order",
        content=ORDER,
        headers={"content-type": "application/json", "idempotency-key": " k1 "},
    )
    again = await gw.client.post(
        "/api/order",
        content=ORDER,
        headers={"content-type": "application/json", "idempotency-key": "k1"},
    )
    assert first.status_code == 201
    assert again.json()["order_id"] == first.json()["order_id"]


@pytest.mark.parametrize(
    ("raw", "kept"), [(" abc ", "abc"), ("a b", None), ("x" * 129, None), ("A-b_c.9", "A-b_c.9")]
)
async def test_request_id_through_the_app(gw: Gateway, raw: str, kept: str | None) -> None:
    resp = await gw.client.get("/health", headers={"x-request-id": raw})
    rid = resp.headers["x-request-id"]
    if kept is None:
        assert len(rid) == 32 and rid != raw
    else:
        assert rid == kept


async def test_higher_traceparent_version_is_continued_upstream(
    gw: Gateway, fake_pricing: Any
) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    raw = f"cc-{trace}-00f067aa0ba902b7-01-what-the-future-holds"
    resp = await gw.client.get("/api/product/123", headers={"traceparent": raw})
    assert resp.status_code == 200
    sent = fake_pricing.calls[-1]["headers"]["traceparent"]
    parent = parse_traceparent(sent)
    assert parent is not None and parent.trace_id == trace and sent.startswith("00-")
    assert parent.parent_id != "00f067aa0ba902b7"
