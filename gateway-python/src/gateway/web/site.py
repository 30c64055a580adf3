# The storefront's rendering: the Jinja2 environment (autoescape on, strict undefined), the
# static assets held in memory, the security headers of every HTML answer, and the one table
# from the shared error codes (services/contracts/errors.md) to messages a shopper can act on.
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import Response

from gateway.errors import ApiError
from gateway.web.catalog import Catalog

HERE = Path(__file__).parent
HTML = "text/html; charset=utf-8"
STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Only this origin: no inline script or style, no framing, forms post here only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}

# code -> (title, what the shopper can do). Every code of errors.md has a line (a unit test
# keeps the two equal), so no page ever shows an internal message.
MESSAGES: dict[str, tuple[str, str]] = {
    "malformed_request": ("Bad request", "The request could not be read. Go back and try again."),
    "unauthorized": ("Not allowed", "This page needs an administrator token."),
    "forbidden": ("Not allowed", "This page needs an administrator token."),
    "not_found": ("Page not found", "There is no page at this address."),
    "product_not_found": ("Product not found", "There is no product with this id."),
    "order_not_found": ("Order not found", "There is no order with this number."),
    "reservation_not_found": ("Order not found", "The stock hold of this order is unknown."),
    "method_not_allowed": ("Not allowed", "This page cannot be used that way."),
    "insufficient_stock": (
        "Out of stock",
        "There are not enough units in stock for this quantity. Choose fewer units.",
    ),
    "idempotency_conflict": (
        "Form already used",
        "This order form was already sent with another quantity. Reload the product page"
        " to start a new order.",
    ),
    "request_in_progress": (
        "Order in progress",
        "This order is still being placed. Wait a moment, then send it again: it will not"
        " be placed twice.",
    ),
    "reservation_expired": (
        "Hold expired",
        "The stock hold expired before the order completed. Try again.",
    ),
    "reservation_released": ("Order failed", "The stock hold was released. Try again."),
    "reservation_committed": ("Order already placed", "This order was already placed."),
    "payload_too_large": ("Request too large", "The form sent too much data."),
    "misdirected_request": ("Service unavailable", "The shop is reorganising. Try again."),
    "unsupported_media_type": (
        "Bad request",
        "The form was sent in a format the shop does not read. Use the order form.",
    ),
    "validation_failed": ("Check your input", "Some of the values are not valid."),
    "rate_limited": (
        "Too many requests",
        "You are sending requests faster than the shop allows. Wait a few seconds, then try again.",
    ),
    "internal_error": ("Something went wrong", "The shop hit an unexpected error."),
    "fault_injected": ("Something went wrong", "An injected test fault answered this request."),
    "upstream_unavailable": (
        "A service is down",
        # Not "nothing was ordered": an order whose commit answer was lost stays pending
        # until recovery decides it. The form keeps its key, so sending it again is safe.
        "A service behind the shop is unavailable right now. Try again in a moment; an"
        " order form sent again will not order twice.",
    ),
    "overloaded": ("The shop is busy", "Too many requests at once. Try again in a moment."),
    "product_moving": (
        "Product being moved",
        "This product's stock is being moved between shards. Try again in a moment.",
    ),
    "deadline_exceeded": (
        "Too slow",
        "The shop did not answer in time. If you placed an order, look it up before"
        " ordering again.",
    ),
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


class Site:
    """Templates, assets and catalog of the storefront, loaded once per process on first use."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["money"] = money
        self.env.filters["count"] = count
        self.env.filters["micros"] = micros
        self.env.filters["format_stat"] = format_stat
        self.env.globals["lookup"] = lookup
        self.assets: dict[str, Asset] = {}
        for path in sorted((HERE / "static").iterdir()):
            if path.suffix in STATIC_TYPES:
                body = path.read_bytes()
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                self.assets[path.name] = Asset(body, STATIC_TYPES[path.suffix], etag)
        self.catalog = Catalog.load()

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        body = self.env.get_template(template).render(**context).encode()
        headers = {**SECURITY_HEADERS, "cache-control": "no-store"}
        return Response(body, status_code=status, headers=headers, media_type=HTML)

    def error_page(self, exc: ApiError, **context: Any) -> Response:
        title, hint = message(exc)
        response = self.render(
            "error.html", exc.status, title=title, hint=hint, error=exc, links=None, **context
        )
        response.headers.update(exc.headers)
        return response


@functools.cache
def site() -> Site:
    return Site()


def message(exc: ApiError) -> tuple[str, str]:
    """Title and hint of an error for a page."""
    return MESSAGES.get(exc.code, MESSAGES["internal_error"])


def money(value: Any) -> str:
    try:
        return f"${float(value):,.2f}"
    except (TypeError, ValueError):
        return "—"


def _number(value: Any) -> int | float | None:
    """A JSON number, else None (a bool is not one, though Python says it is an int)."""
    return None if isinstance(value, bool) or not isinstance(value, int | float) else value


def count(value: Any) -> str:
    n = _number(value)
    return "—" if n is None else f"{n:,.0f}"


def micros(value: Any) -> str:
    """A duration in microseconds, as µs below 1 ms and ms above (status.js does the same)."""
    n = _number(value)
    if n is None:
        return "—"
    return f"{n:,.0f} µs" if n < 1000 else f"{n / 1000:,.1f} ms"


def seconds(value: Any) -> str:
    n = _number(value)
    return "—" if n is None else f"{n:,.0f} s"


def text(value: Any) -> str:
    return value if isinstance(value, str) and value else "—"


FORMATS = {"count": count, "micros": micros, "seconds": seconds, "text": text, "state": text}


def format_stat(value: Any, fmt: str) -> str:
    """One /api/stats value as the status page shows it (static/status.js formats alike)."""
    return FORMATS[fmt](value)


def lookup(data: Any, path: str) -> Any:
    """data["a"]["b"] for the path "a.b"; None where a step is missing."""
    for step in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(step)
    return data
