# Per-request context (env.md headers): request id, W3C trace context and the request's
# deadline, carried in a ContextVar so logs and upstream calls see them without plumbing.
from __future__ import annotations

import os
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field

from gateway.headers import (
    DEADLINE,
    REQUEST_ID,
    TRACEPARENT,
    format_deadline,
    format_traceparent,
    parse_request_id,
    parse_traceparent,
)


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
    fresh id and trace outside a request, e.g. the recovery loop), and the call's budget,
    formatted by the same module that parses them on the way in."""
    if ctx is None:
        request_id, trace_id, flags = uuid.uuid4().hex, os.urandom(16).hex(), "01"
    else:
        request_id, trace_id, flags = ctx.request_id, ctx.trace_id, ctx.flags
    return {
        REQUEST_ID: request_id,
        TRACEPARENT: format_traceparent(trace_id, new_span_id(), flags),
        DEADLINE: format_deadline(budget_ms),
    }


_current: ContextVar[RequestContext | None] = ContextVar("gateway_request", default=None)


def current() -> RequestContext | None:
    return _current.get()


def activate(ctx: RequestContext) -> None:
    _current.set(ctx)


def new_span_id() -> str:
    return os.urandom(8).hex()


def request_id_from(header: str | None) -> str:
    """The incoming X-Request-Id (trimmed) when valid, else a new UUID4 (hex)."""
    return parse_request_id(header) or uuid.uuid4().hex


def trace_from(header: str | None) -> tuple[str, str]:
    """(trace_id, flags) continuing a valid traceparent, or a fresh trace."""
    parent = parse_traceparent(header)
    if parent is not None:
        return parent.trace_id, parent.flags
    return os.urandom(16).hex(), "01"


def new_context(
    request_id: str | None,
    traceparent: str | None,
    incoming: int | None,
    default_budget_ms: int,
) -> RequestContext:
    """`incoming`: the caller's X-Request-Deadline-Ms, parsed (None: absent or malformed;
    the middleware answers a malformed one with 400 on API routes, probes ignore it)."""
    now = time.monotonic()
    budget = default_budget_ms
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
