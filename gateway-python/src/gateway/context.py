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

    def outgoing_headers(self) -> dict[str, str]:
        """Headers for an upstream call: same request and trace, a new child span."""
        return {
            "X-Request-Id": self.request_id,
            "traceparent": f"00-{self.trace_id}-{new_span_id()}-{self.flags}",
            "X-Request-Deadline-Ms": str(self.remaining_ms()),
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


def parse_deadline_header(value: str | None) -> int | None:
    """Remaining budget in ms from X-Request-Deadline-Ms; None when absent or unparsable."""
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


def new_context(
    request_id: str | None,
    traceparent: str | None,
    deadline_header: str | None,
    default_budget_ms: int,
) -> RequestContext:
    now = time.monotonic()
    budget = default_budget_ms
    incoming = parse_deadline_header(deadline_header)
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
