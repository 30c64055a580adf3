# Gateway configuration: the env.md variables the gateway reads, their defaults and bounds,
# the one-line-exit-2 rule for bad values, and the masked view logged once at start.
from __future__ import annotations

import os
import re
import socket
import sys
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def _strict_int(value: Any) -> Any:
    # env.md: "a value with trailing garbage (10ms) is an error"; pydantic alone would also
    # accept "10.0" or " 10", which hides typos in deployment files.
    if isinstance(value, str):
        if not _INT_RE.match(value):
            raise ValueError("must be a decimal integer")
        return int(value)
    return value


def _strict_float(value: Any) -> Any:
    if isinstance(value, str):
        if not _FLOAT_RE.match(value):
            raise ValueError("must be a decimal number")
        return float(value)
    return value


def _default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


Int = Annotated[int, BeforeValidator(_strict_int)]
Float = Annotated[float, BeforeValidator(_strict_float)]


class Settings(BaseSettings):
    """Every knob the gateway reads; field name = env var name in lower case."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    port: Int = Field(8000, ge=1, le=65535, description="listen port")
    polyshop_env: Literal["dev", "prod"] = Field(
        "dev", description="`dev` or `prod`; prod refuses fault knobs and an unset ADMIN_TOKEN"
    )
    redis_url: str | None = Field(
        None, description="orders and idempotency records in Redis; unset = in memory"
    )
    pricing_url: str = Field("http://127.0.0.1:8001", description="pricing upstream")
    inventory_url: str = Field("http://127.0.0.1:8002", description="inventory upstream")
    inventory_urls: str | None = Field(
        None,
        description="comma list of inventory shards (consistent hash); overrides INVENTORY_URL",
    )
    log_level: Literal["debug", "info", "warn", "error"] = Field(
        "info", description="`debug`, `info`, `warn`, `error`"
    )
    admin_token: str | None = Field(
        None, description="required when POLYSHOP_ENV=prod (the gateway has no admin routes)"
    )
    upstream_timeout_ms: Int = Field(
        1000, ge=1, le=60000, description="per-try timeout of an upstream call"
    )
    upstream_retries: Int = Field(
        1, ge=0, le=5, description="retries of idempotent upstream calls (with jitter)"
    )
    request_deadline_ms: Int = Field(
        2500, ge=1, le=120000, description="budget of a whole request, passed downstream"
    )
    breaker_failures: Int = Field(
        5, ge=1, le=1000, description="consecutive failures that open an upstream's breaker"
    )
    breaker_successes: Int = Field(
        2, ge=1, le=1000, description="half-open successes that close it again"
    )
    breaker_cooldown_s: Int = Field(
        60, ge=1, le=3600, description="seconds an open breaker waits before half-opening"
    )
    bulkhead_max: Int = Field(64, ge=1, le=10000, description="concurrent calls per upstream")
    bulkhead_queue: Int = Field(
        1024, ge=0, le=100000, description="calls allowed to wait for a slot, then 503 overloaded"
    )
    bulkhead_wait_ms: Int = Field(
        1000, ge=1, le=60000, description="longest wait for a slot, then 503 overloaded"
    )
    rate_limit_rps: Float = Field(
        0.0, ge=0.0, le=1e6, description="per-client-IP token refill rate; 0 = off"
    )
    rate_limit_burst: Int = Field(200, ge=1, le=1_000_000, description="token bucket size")
    max_body_bytes: Int = Field(
        65536, ge=1, le=64 * 1024 * 1024, description="larger bodies get 413 payload_too_large"
    )
    fault_delay_ms: Int = Field(
        0, ge=0, le=60000, description="added latency on every /api/* request (tests only)"
    )
    fault_error_rate: Float = Field(
        0.0, ge=0.0, le=1.0, description="share of /api/* requests answered 500 fault_injected"
    )
    order_recovery_s: Int = Field(
        30,
        ge=1,
        le=86400,
        description="orders still pending this long (a crash, a lost answer) are resolved"
        " from inventory's hold state",
    )
    instance_id: str = Field(
        default_factory=_default_instance_id,
        description="names this replica in logs and order ids (default hostname-pid)",
    )

    @field_validator("redis_url", "admin_token", "inventory_urls", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("log_level", "polyshop_env", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("pricing_url", "inventory_url", "redis_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https", "redis", "rediss", "unix"} or not (
            parts.netloc or parts.path
        ):
            raise ValueError("must be a URL such as http://host:port")
        return value.rstrip("/")

    @field_validator("inventory_urls")
    @classmethod
    def _shards(cls, value: str | None) -> str | None:
        if value is None:
            return None
        urls = [u.strip() for u in value.split(",") if u.strip()]
        if not urls:
            raise ValueError("must list at least one URL")
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.netloc:
                raise ValueError(f"{url!r} is not an http URL")
        return value

    def inventory_shards(self) -> list[str]:
        """The inventory base URLs: the INVENTORY_URLS entries (trimmed), or INVENTORY_URL."""
        if self.inventory_urls is None:
            return [self.inventory_url]
        return list(dict.fromkeys(u.strip() for u in self.inventory_urls.split(",") if u.strip()))

    @model_validator(mode="after")
    def _prod_rules(self) -> Settings:
        if self.polyshop_env == "prod":
            if self.fault_delay_ms or self.fault_error_rate:
                raise ValueError("POLYSHOP_ENV=prod refuses FAULT_DELAY_MS/FAULT_ERROR_RATE")
            if not self.admin_token:
                raise ValueError("POLYSHOP_ENV=prod requires ADMIN_TOKEN")
        return self

    def masked(self) -> dict[str, Any]:
        """The effective config for the start-up log line, secrets replaced by ***."""
        out = self.model_dump()
        if out["admin_token"]:
            out["admin_token"] = "***"  # noqa: S105 - the mask, not a secret
        if out["redis_url"]:
            out["redis_url"] = mask_url(out["redis_url"])
        return out


def mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, ""))


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Reads the environment; on a bad value prints ONE line naming the variable, exits 2."""
    env = dict(os.environ if environ is None else environ)
    names = set(Settings.model_fields)
    values = {k.lower(): v for k, v in env.items() if k.lower() in names}
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "POLYSHOP_ENV"
        msg = err["msg"].removeprefix("Value error, ")
        print(f"gateway: invalid configuration: {name}: {msg}", file=sys.stderr)
        raise SystemExit(2) from None
