# The one parser of the headers every service understands (env.md, header-vectors.json):
# X-Request-Deadline-Ms, traceparent, X-Request-Id, Idempotency-Key and Content-Type. The
# server side (middleware, routes) parses with it and the client side (upstream calls)
# formats with it, so what the gateway sends is always what it would accept. Values are
# str as Starlette gives them (latin-1: one character per byte).
from __future__ import annotations

import re
from dataclasses import dataclass

OWS = " \t"  # RFC 9110 optional whitespace, trimmed from every value

DEADLINE = "X-Request-Deadline-Ms"
TRACEPARENT = "traceparent"
REQUEST_ID = "X-Request-Id"
IDEMPOTENCY_KEY = "Idempotency-Key"

# A budget this large is "no limit" for any request: longer digit strings saturate without
# being converted (Python refuses int() of > 4300 digits, and no deadline needs more).
MAX_DEADLINE_MS = 2**31 - 1
_DIGITS = re.compile(r"[0-9]+")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_HEX2 = re.compile(r"[0-9a-f]{2}")
_TRACE_V00 = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_JSON = "application/json"


class MalformedHeader(ValueError):
    """A header the service must use cannot be parsed."""

    def __init__(self, header: str, message: str) -> None:
        super().__init__(f"{header} {message}")
        self.header = header
        self.message = message


def trim(value: str) -> str:
    return value.strip(OWS)


# X-Request-Deadline-Ms ---------------------------------------------------------------------


def parse_deadline(value: str | None) -> int | None:
    """Remaining budget in ms: None when absent, saturating at 2^31-1.

    Only ASCII digits count (str.isdigit() also takes "²" and other Unicode digits).
    Raises MalformedHeader for anything else, the empty value included.
    """
    if value is None:
        return None
    digits = trim(value)
    if not _DIGITS.fullmatch(digits):
        raise MalformedHeader(DEADLINE, "must be an integer >= 0")
    digits = digits.lstrip("0") or "0"
    if len(digits) > 10:
        return MAX_DEADLINE_MS
    return min(int(digits), MAX_DEADLINE_MS)


def format_deadline(budget_ms: int) -> str:
    return str(min(max(0, budget_ms), MAX_DEADLINE_MS))


# traceparent -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TraceParent:
    trace_id: str
    parent_id: str
    flags: str


def parse_traceparent(value: str | None) -> TraceParent | None:
    """A W3C traceparent to continue, or None (absent or invalid: start a new trace).

    Version 00 is exactly four fields. A higher version (not ff) is parsed as 00 from its
    first 55 characters, which must be followed by the end or a dash; of its flags only the
    sampled bit is kept, as W3C Trace Context says.
    """
    if value is None:
        return None
    value = trim(value)
    m = _TRACE_V00.match(value)
    if m is None:
        return None
    version, trace_id, parent_id, flags = m.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    if version == "00":
        if len(value) != 55:
            return None
    else:
        if len(value) > 55 and value[55] != "-":
            return None
        flags = "01" if int(flags, 16) & 1 else "00"
    return TraceParent(trace_id, parent_id, flags)


def format_traceparent(trace_id: str, span_id: str, flags: str) -> str:
    return f"00-{trace_id}-{span_id}-{flags if _HEX2.fullmatch(flags) else '01'}"


# X-Request-Id ------------------------------------------------------------------------------


def parse_request_id(value: str | None) -> str | None:
    """The id to keep (trimmed, 1..128 of [A-Za-z0-9._-]), or None: make a new one."""
    if value is None:
        return None
    value = trim(value)
    return value if _REQUEST_ID.fullmatch(value) else None


# Idempotency-Key ---------------------------------------------------------------------------


def parse_idempotency_key(value: str | None) -> str | None:
    """The key (trimmed, 1..128 printable ASCII, inner spaces allowed), None when absent.

    Raises MalformedHeader otherwise (the route answers 422 validation_failed).
    """
    if value is None:
        return None
    key = trim(value)
    if not 1 <= len(key) <= 128 or not all(0x20 <= ord(c) <= 0x7E for c in key):
        raise MalformedHeader(IDEMPOTENCY_KEY, "must be 1 to 128 printable ASCII characters")
    return key


# Content-Type ------------------------------------------------------------------------------


def is_json_content_type(value: str | None) -> bool:
    """application/json, case-insensitive, with no parameter but charset=utf-8 (the value
    optionally quoted). Anything else, absence included, is 415 for a JSON body."""
    if value is None:
        return False
    media, *params = trim(value).split(";")
    if trim(media).lower() != _JSON:
        return False
    for param in params:
        param = trim(param)
        if not param:
            continue  # `application/json;` has an empty parameter, which RFC 9110 allows
        name, eq, charset = param.partition("=")
        if len(charset) >= 2 and charset[0] == charset[-1] == '"':
            charset = charset[1:-1]
        if not eq or name.lower() != "charset" or charset.lower() != "utf-8":
            return False
    return True
