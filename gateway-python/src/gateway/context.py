# Per-request context (env.md headers): request id, W3C trace context and the request's
# deadline, carried in a ContextVar so logs and upstream calls see them without plumbing.
from __future__ import annotations

import os
import re
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


@dataclass(slots=True)
class RequestContext:
    request_id: str
    trace_id: str
    span_id: str
    flags: str
    start: float  # time.monotonic() at arrival
    deadline: float  # time.monotonic() by which the whole request must be answered
    route: str = field(default="unmatched")

    def remaining_ms(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))

    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.start) * 1000, 2)


def outgoing_headers(ctx: RequestContext | None, budget_ms: int) -> dict[str, str]:
    """Headers of an upstream call: the request's id and trace with a new child span (a
    fresh id and trace outside a request, e.g. the recovery loop), and the call's budget."""
    if ctx is None:
        request_id, trace = uuid.uuid4().hex, f"00-{os.urandom(16).hex()}-{new_span_id()}-01"
    else:
        request_id, trace = ctx.request_id, f"00-{ctx.trace_id}-{new_span_id()}-{ctx.flags}"
    return {
        "X-Request-Id": request_id,
        "traceparent": trace,
        "X-Request-Deadline-Ms": str(max(0, budget_ms)),
    }


_current: ContextVar[RequestContext | None] = ContextVar("gateway_request", default=None)


def current() -> RequestContext | None:
    return _current.get()


def activate(ctx: RequestContext) -> None:
    _current.set(ctx)


def new_span_id() -> str:
    return os.urandom(8).hex()


def request_id_from(header: str | None) -> str:
    if header is not None and _REQUEST_ID_RE.match(header):
        return header
    return uuid.uuid4().hex


def trace_from(header: str | None) -> tuple[str, str]:
    """(trace_id, flags) continuing a valid traceparent, or a fresh trace."""
    if header is not None:
        m = _TRACEPARENT_RE.match(header.strip())
        if m and m[1] != "ff" and m[2] != _ZERO_TRACE and m[3] != _ZERO_SPAN:
            return m[2], m[4]
    return os.urandom(16).hex(), "01"


# A budget this large is "no limit" for any request: longer digit strings are accepted as
# valid but never converted (Python refuses int() of > 4300 digits, and no deadline needs it).
_MAX_DEADLINE_MS = 2**31 - 1
_DEADLINE_RE = re.compile(r"[0-9]+")


class MalformedHeader(ValueError):
    """A header the service must use cannot be parsed (400 malformed_request)."""


def parse_deadline_header(value: str | None) -> int | None:
    """Remaining budget in ms from X-Request-Deadline-Ms: None when absent.

    Only ASCII digits count (str.isdigit() also takes "²" and other Unicode digits, whose
    int() then fails); surrounding spaces and tabs are allowed, as HTTP allows them.
    Raises MalformedHeader for anything else.
    """
    if value is None:
        return None
    digits = value.strip(" \t")
    if not _DEADLINE_RE.fullmatch(digits):
        raise MalformedHeader("X-Request-Deadline-Ms must be an integer >= 0")
    digits = digits.lstrip("0") or "0"
    if len(digits) > 10:
        return _MAX_DEADLINE_MS
    return min(int(digits), _MAX_DEADLINE_MS)


def new_context(
    request_id: str | None,
    traceparent: str | None,
    deadline_header: str | None,
    default_budget_ms: int,
) -> RequestContext:
    now = time.monotonic()
    budget = default_budget_ms
    try:
        incoming = parse_deadline_header(deadline_header)
    except MalformedHeader:
        incoming = None  # the middleware answers 400 on API routes; probes ignore it
    if incoming is not None:
        budget = min(budget, incoming)
    trace_id, flags = trace_from(traceparent)
    return RequestContext(
        request_id=request_id_from(request_id),
        trace_id=trace_id,
        span_id=new_span_id(),
        flags=flags,
        start=now,
        deadline=now + budget / 1000,
    )
