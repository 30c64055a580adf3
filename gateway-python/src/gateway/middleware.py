# The gateway's outermost ASGI layer: request context (id, trace, deadline), body size limit,
# fault injection, the access log line and the server histogram, and the last-resort 500.
from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.config import Settings
from gateway.context import activate, new_context
from gateway.errors import ApiError, error_body
from gateway.metrics import Metrics

log = logging.getLogger("gateway.http")
# observability.md: these are neither recorded in the histogram nor access-logged.
UNTRACKED = frozenset({"/health", "/ready", "/metrics"})


class BodyTooLarge(Exception):
    """Raised from receive() as soon as the body passes MAX_BODY_BYTES."""


class GatewayMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        metrics: Metrics,
        plain_routes: dict[Any, str] | None = None,
    ) -> None:
        self.app = app
        # FastAPI sets scope["route"] for its own routes only; plain routes are named by
        # their endpoint so the histogram still gets the template.
        self.plain_routes = plain_routes or {}
        self.settings = settings
        self.metrics = metrics
        self.max_body = settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACKED:
            await self.app(scope, receive, send)
            return
        request_id = traceparent = deadline = length = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"traceparent":
                traceparent = value.decode("latin-1")
            elif name == b"x-request-deadline-ms":
                deadline = value.decode("latin-1")
            elif name == b"content-length":
                length = value
        ctx = new_context(request_id, traceparent, deadline, self.settings.request_deadline_ms)
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
            early = self._precheck(scope["path"], deadline, length)
            if early is None and self.settings.fault_delay_ms and scope["path"].startswith("/api/"):
                await asyncio.sleep(self.settings.fault_delay_ms / 1000)
            if early is not None:
                await _send_error(send_wrapper, early)
            else:
                await self.app(scope, receive_limited, send_wrapper)
        except BodyTooLarge:
            if not state["started"]:
                await _send_error(
                    send_wrapper, ApiError("payload_too_large", "request body is too large")
                )
        except Exception:
            log.exception("unhandled_error", extra={"path": scope["path"]})
            if not state["started"]:
                await _send_error(send_wrapper, ApiError("internal_error", "internal error"))
        finally:
            route = (
                getattr(scope.get("route"), "path", None)
                or self.plain_routes.get(scope.get("endpoint"))
                or "unmatched"
            )
            seconds = time.monotonic() - ctx.start
            self.metrics.observe_server(scope["method"], route, state["status"], seconds)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "status": state["status"],
                        "duration_ms": round(seconds * 1000, 2),
                    },
                )

    def _precheck(self, path: str, deadline: str | None, length: bytes | None) -> ApiError | None:
        if deadline is not None and deadline.strip() == "0":
            return ApiError("deadline_exceeded", "the request's deadline has already passed")
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                return ApiError("malformed_request", "Content-Length is not a number")
            if too_big:
                return ApiError("payload_too_large", "request body is too large")
        rate = self.settings.fault_error_rate
        if rate and path.startswith("/api/") and random.random() < rate:
            return ApiError("fault_injected", "injected fault")
        return None


async def _send_error(send: Send, exc: ApiError) -> None:
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
