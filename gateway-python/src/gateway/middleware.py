# The gateway's outermost ASGI layer: request context (id, trace, deadline), header, query and
# body size limits, the per-client rate limit, fault injection, the access log line and the
# server histogram, and the last-resort 500.
from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.config import Settings
from gateway.context import activate, new_context
from gateway.errors import ApiError, error_body
from gateway.headers import DEADLINE, MalformedHeader, parse_deadline
from gateway.metrics import Metrics
from gateway.netaddr import client_key, networks

log = logging.getLogger("gateway.http")
# observability.md: these are neither recorded in the histogram nor access-logged.
UNTRACKED = frozenset({"/health", "/ready", "/metrics"})
# No env knob in env.md: fixed limits far above any legitimate client of this API.
MAX_QUERY_BYTES = 4096
MAX_HEADER_BYTES = 16384
MAX_HEADERS = 100


# path, error -> the HTML page for it, or None for the shared JSON body.
ErrorPage = Callable[[str, ApiError], Response | None]


class BodyTooLarge(Exception):
    """Raised from receive() as soon as the body passes MAX_BODY_BYTES."""


class GatewayMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        metrics: Metrics,
        plain_routes: dict[Any, str] | None = None,
        error_page: ErrorPage | None = None,
    ) -> None:
        self.app = app
        # The storefront's HTML for the errors answered here on its paths (None: JSON).
        self.error_page = error_page
        # FastAPI sets scope["route"] for its own routes only; plain routes are named by
        # their endpoint so the histogram still gets the template.
        self.plain_routes = plain_routes or {}
        self.settings = settings
        self.metrics = metrics
        self.max_body = settings.max_body_bytes
        self.trusted = networks(settings.trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Probes still get a request id (a 405 on /health is in the shared shape too), but
        # no rate limit, histogram sample or access line.
        tracked = scope["path"] not in UNTRACKED
        request_id = traceparent = deadline = length = None
        forwarded: list[str] = []
        header_bytes = 0
        for name, value in scope["headers"]:
            header_bytes += len(name) + len(value)
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"traceparent":
                traceparent = value.decode("latin-1")
            elif name == b"x-request-deadline-ms":
                deadline = value.decode("latin-1")
            elif name == b"content-length":
                length = value
            elif name == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
        # Parsed once: the context takes the budget, the precheck answers a malformed one.
        bad_deadline: MalformedHeader | None = None
        try:
            incoming = parse_deadline(deadline)
        except MalformedHeader as exc:
            incoming, bad_deadline = None, exc
        ctx = new_context(request_id, traceparent, incoming, self.settings.request_deadline_ms)
        activate(ctx)
        rid_header = (b"x-request-id", ctx.request_id.encode())
        state: dict[str, Any] = {"status": 500, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        received = 0
        max_body = self.max_body

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    raise BodyTooLarge
            return message

        try:
            early = None
            if tracked:
                early = self._precheck(scope, incoming, bad_deadline, length, header_bytes)
                if early is None:
                    early = await self._rate_limit(scope, forwarded)
            if early is None and self.settings.fault_delay_ms and scope["path"].startswith("/api/"):
                await asyncio.sleep(self.settings.fault_delay_ms / 1000)
            if early is not None:
                await _send_error(send_wrapper, early, self._html(scope, early))
            else:
                await self.app(scope, receive_limited, send_wrapper)
        except BodyTooLarge:
            if not state["started"]:
                too_large = ApiError("payload_too_large", "request body is too large")
                await _send_error(send_wrapper, too_large, self._html(scope, too_large))
        except Exception:
            log.exception("unhandled_error", extra={"path": scope["path"]})
            if not state["started"]:
                internal = ApiError("internal_error", "internal error")
                await _send_error(send_wrapper, internal, self._html(scope, internal))
        finally:
            route = (
                getattr(scope.get("route"), "path", None)
                or self.plain_routes.get(scope.get("endpoint"))
                or "unmatched"
            )
            seconds = time.monotonic() - ctx.start
            if tracked:
                self.metrics.observe_server(scope["method"], route, state["status"], seconds)
            if tracked and log.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "status": state["status"],
                        "duration_ms": round(seconds * 1000, 2),
                    },
                )

    def _html(self, scope: Scope, exc: ApiError) -> Response | None:
        return None if self.error_page is None else self.error_page(scope["path"], exc)

    def _precheck(
        self,
        scope: Scope,
        budget: int | None,
        bad_deadline: MalformedHeader | None,
        length: bytes | None,
        header_bytes: int,
    ) -> ApiError | None:
        path: str = scope["path"]
        if len(scope["query_string"]) > MAX_QUERY_BYTES:
            return ApiError("malformed_request", f"query string above {MAX_QUERY_BYTES} bytes")
        if header_bytes > MAX_HEADER_BYTES or len(scope["headers"]) > MAX_HEADERS:
            return ApiError("malformed_request", "request headers are too large")
        if bad_deadline is not None:
            return ApiError(
                "malformed_request",
                str(bad_deadline),
                [{"field": DEADLINE, "message": bad_deadline.message}],
            )
        if budget == 0:
            return ApiError("deadline_exceeded", "the request's deadline has already passed")
        if length is not None:
            digits = length.strip(b" \t")
            if not digits.isdigit():  # bytes.isdigit() is ASCII digits only
                return ApiError("malformed_request", "Content-Length is not a number")
            if len(digits) > 20 or int(digits) > self.max_body:
                return ApiError("payload_too_large", "request body is too large")
        rate = self.settings.fault_error_rate
        if rate and path.startswith("/api/") and random.random() < rate:
            return ApiError("fault_injected", "injected fault")
        return None

    async def _rate_limit(self, scope: Scope, forwarded: list[str]) -> ApiError | None:
        if not self.settings.rate_limit_rps:
            return None
        # The lifespan puts the limiter (memory or Redis) on the app's state.
        services = getattr(scope["app"].state, "services", None)
        if services is None or services.limiter is None:
            return None
        # The bucket: the TCP peer, or the client a trusted proxy names in X-Forwarded-For
        # (several X-Forwarded-For lines are one comma list, in order).
        client = scope.get("client")
        key = client_key(client[0] if client else None, ",".join(forwarded), self.trusted)
        wait = await services.limiter.hit(key)
        if wait <= 0:
            return None
        return ApiError(
            "rate_limited", "too many requests; slow down", retry_after=max(1, math.ceil(wait))
        )


async def _send_error(send: Send, exc: ApiError, html: Response | None = None) -> None:
    """The error in the shared JSON shape, or as `html` (a storefront page) when given."""
    if html is not None:
        body = bytes(html.body)
        headers = [(k, v) for k, v in html.raw_headers if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
    else:
        body = error_body(exc.code, exc.message, exc.details)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
    if exc.status == 413:
        # The rest of the body is never read, so the connection cannot be reused.
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
