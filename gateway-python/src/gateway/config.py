# Gateway configuration: the env.md variables the gateway reads, their defaults and bounds,
# parsed by the rules of services/contracts/env-vectors.json (shared with pricing and
# inventory), the one-line-exit-2 rule for bad values, and the masked view logged at start.
from __future__ import annotations

import ipaddress
import os
import re
import socket
import sys
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BeforeValidator, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.netaddr import parse_cidr_list

# env-vectors.json rules, shared by the three services: every value is trimmed of ASCII
# whitespace and a blank value is unset; integers are ASCII digits only; numbers are digits
# with at most one decimal point; enums are case-insensitive.
ASCII_WS = " \t\n\r\x0b\x0c"
_DIGITS = re.compile(r"[0-9]+")
_NUMBER = re.compile(r"[0-9]+\.?[0-9]*|\.[0-9]+")
_HOST_NAME = re.compile(r"[A-Za-z0-9._~-]+")
_INSTANCE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class ConfigError(ValueError):
    """A bad value of one variable: the start-up line names `var`."""

    def __init__(self, var: str, message: str) -> None:
        super().__init__(f"{var}: {message}")
        self.var = var
        self.message = message


def trim(value: str) -> str:
    return value.strip(ASCII_WS)


def _digits_in(value: str, lo: int, hi: int) -> bool:
    """ASCII decimal digits (leading zeros are decimal, never octal) within lo..hi; a huge
    digit string is out of range without being converted."""
    if not _DIGITS.fullmatch(value):
        return False
    digits = value.lstrip("0") or "0"
    return len(digits) <= len(str(hi)) and lo <= int(digits) <= hi


def parse_int(value: str, lo: int, hi: int) -> int:
    """ASCII decimal digits only (no sign, separators or exponent), within lo..hi."""
    value = trim(value)
    if not _digits_in(value, lo, hi):
        raise ValueError(f"must be a decimal integer {lo}..{hi}")
    return int(value)


def parse_number(value: str, lo: float, hi: float) -> float:
    """Digits with at most one decimal point: no sign, exponent, nan or inf."""
    value = trim(value)
    if not _NUMBER.fullmatch(value):
        raise ValueError(f"must be a decimal number {lo:g}..{hi:g}")
    number = float(value)
    if not lo <= number <= hi:
        raise ValueError(f"must be a decimal number {lo:g}..{hi:g}")
    return number


def parse_enum(value: str, choices: tuple[str, ...]) -> str:
    value = trim(value)
    lowered = value.lower() if value.isascii() else value
    if lowered not in choices:
        raise ValueError(f"must be one of {', '.join(choices)}")
    return lowered


def _visible_ascii(value: str) -> bool:
    return all(0x21 <= ord(c) <= 0x7E for c in value)


def _host_port(authority: str) -> None:
    """host[:port] with a required host (a name, IPv4 or a bracketed IPv6 literal)."""
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise ValueError("bad IPv6 literal")
        try:
            ipaddress.IPv6Address(authority[1:close])
        except ValueError:
            raise ValueError("bad IPv6 literal") from None
        rest = authority[close + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError("bad host")
        port = rest[1:] if rest else None
    else:
        host, sep, port_str = authority.partition(":")
        if not host:
            raise ValueError("a host is required")
        if not _HOST_NAME.fullmatch(host):
            raise ValueError("bad host")
        port = port_str if sep else None
    if port is not None and not _digits_in(port, 1, 65535):
        raise ValueError("port must be 1..65535")


def parse_http_url(value: str) -> str:
    """http://host[:port][/prefix]: https is refused (TLS ends at the ingress or mesh), no
    credentials, query or fragment; trailing slashes are dropped."""
    value = trim(value)
    if not _visible_ascii(value):
        raise ValueError("must be http://host[:port][/prefix] without whitespace")
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() != "http":
        raise ValueError("must be an http:// URL (https is not supported)")
    if "?" in rest or "#" in rest:
        raise ValueError("must not have a query or fragment")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        raise ValueError("must not carry credentials")
    _host_port(authority)
    path = (slash + path).rstrip("/")
    return f"http://{authority}{path}"


def parse_link_url(value: str) -> str:
    """A link for a browser (Grafana, Prometheus): http:// or https://host[:port][/path][?query],
    no credentials or fragment, kept as written."""
    value = trim(value)
    if not _visible_ascii(value) or any(c in value for c in "<>\"'`"):
        raise ValueError("must be an http(s)://host[:port][/path] URL without whitespace")
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if "#" in rest:
        raise ValueError("must not have a fragment")
    authority = rest.split("/", 1)[0].split("?", 1)[0]
    if "@" in authority:
        raise ValueError("must not carry credentials")
    _host_port(authority)
    return value


def parse_http_url_list(value: str) -> list[str] | None:
    """Comma list of http URLs: entries trimmed, empty and duplicate entries dropped, order
    kept; no entry at all is unset. The entries are the ring's shard names, kept as written."""
    urls: list[str] = []
    for raw in value.split(","):
        entry = trim(raw)
        if not entry:
            continue
        try:
            parse_http_url(entry)
        except ValueError as exc:
            raise ValueError(f"entry {len(urls) + 1}: {exc}") from None
        if entry not in urls:
            urls.append(entry)
    return urls or None


def parse_redis_url(value: str) -> str:
    """redis://[[user]:password@]host[:port][/db], db 0..15."""
    value = trim(value)
    if not _visible_ascii(value):
        raise ValueError("must be redis://host[:port][/db] without whitespace")
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() != "redis":
        raise ValueError("must be a redis:// URL (rediss:// is not supported)")
    hostpart = rest.rsplit("@", 1)[-1]
    authority, _, db = hostpart.partition("/")
    _host_port(authority)
    if db and not _digits_in(db, 0, 15):
        raise ValueError("db must be 0..15")
    return value


def parse_token(value: str) -> str:
    value = trim(value)
    if not 1 <= len(value) <= 256 or not _visible_ascii(value):
        raise ValueError("must be 1..256 visible ASCII characters without spaces")
    return value


def parse_instance_id(value: str) -> str:
    value = trim(value)
    if not _INSTANCE_ID.fullmatch(value):
        raise ValueError("must be 1..64 characters of [A-Za-z0-9._-]")
    return value


def _default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _on_str(parse: Callable[[str], Any]) -> BeforeValidator:
    # Strings (the environment) go through the shared rules; typed values (tests, code)
    # are checked by the field's own type and bounds.
    return BeforeValidator(lambda v: parse(v) if isinstance(v, str) else v)


def _int(lo: int, hi: int) -> BeforeValidator:
    return _on_str(lambda v: parse_int(v, lo, hi))


def _number(lo: float, hi: float) -> BeforeValidator:
    return _on_str(lambda v: parse_number(v, lo, hi))


Env = Literal["dev", "prod"]
Level = Literal["debug", "info", "warn", "error"]


class Settings(BaseSettings):
    """Every knob the gateway reads; field name = env var name in lower case."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() is the one reader of the environment (exact names, blank = unset,
        # the shared parse rules); Settings itself only validates the values it is given.
        return (init_settings,)

    port: Annotated[int, _int(1, 65535)] = Field(8000, ge=1, le=65535, description="listen port")
    polyshop_env: Annotated[Env, _on_str(lambda v: parse_enum(v, ("dev", "prod")))] = Field(
        "dev", description="`dev` or `prod`; prod refuses fault knobs and an unset ADMIN_TOKEN"
    )
    redis_url: Annotated[str | None, _on_str(parse_redis_url)] = Field(
        None, description="orders and idempotency records in Redis; unset = in memory"
    )
    pricing_url: Annotated[str, _on_str(parse_http_url)] = Field(
        "http://127.0.0.1:8001", description="pricing upstream"
    )
    inventory_url: Annotated[str, _on_str(parse_http_url)] = Field(
        "http://127.0.0.1:8002", description="inventory upstream"
    )
    inventory_urls: Annotated[list[str] | None, _on_str(parse_http_url_list)] = Field(
        None,
        description="comma list of inventory shards (consistent hash); overrides INVENTORY_URL",
    )
    log_level: Annotated[
        Level, _on_str(lambda v: parse_enum(v, ("debug", "info", "warn", "error")))
    ] = Field("info", description="`debug`, `info`, `warn`, `error`")
    admin_token: Annotated[str | None, _on_str(parse_token)] = Field(
        None, description="required when POLYSHOP_ENV=prod (the gateway has no admin routes)"
    )
    upstream_timeout_ms: Annotated[int, _int(1, 60000)] = Field(
        1000, ge=1, le=60000, description="per-try timeout of an upstream call"
    )
    upstream_retries: Annotated[int, _int(0, 5)] = Field(
        1, ge=0, le=5, description="retries of idempotent upstream calls (with jitter)"
    )
    request_deadline_ms: Annotated[int, _int(1, 120000)] = Field(
        2500, ge=1, le=120000, description="budget of a whole request, passed downstream"
    )
    breaker_failures: Annotated[int, _int(1, 1000)] = Field(
        5, ge=1, le=1000, description="consecutive failures that open an upstream's breaker"
    )
    breaker_successes: Annotated[int, _int(1, 1000)] = Field(
        2, ge=1, le=1000, description="half-open successes that close it again"
    )
    breaker_cooldown_s: Annotated[int, _int(1, 3600)] = Field(
        60, ge=1, le=3600, description="seconds an open breaker waits before half-opening"
    )
    bulkhead_max: Annotated[int, _int(1, 10000)] = Field(
        64, ge=1, le=10000, description="concurrent calls per upstream"
    )
    bulkhead_queue: Annotated[int, _int(0, 100000)] = Field(
        1024, ge=0, le=100000, description="calls allowed to wait for a slot, then 503 overloaded"
    )
    bulkhead_wait_ms: Annotated[int, _int(1, 60000)] = Field(
        1000, ge=1, le=60000, description="longest wait for a slot, then 503 overloaded"
    )
    rate_limit_rps: Annotated[float, _number(0.0, 1e6)] = Field(
        0.0, ge=0.0, le=1e6, description="per-client-IP token refill rate; 0 = off"
    )
    rate_limit_burst: Annotated[int, _int(1, 1_000_000)] = Field(
        200, ge=1, le=1_000_000, description="token bucket size"
    )
    trusted_proxies: Annotated[list[str], _on_str(parse_cidr_list)] = Field(
        default_factory=list,
        description="comma list of CIDRs (or bare addresses) of the proxies in front;"
        " X-Forwarded-For is read only from those peers",
    )
    max_body_bytes: Annotated[int, _int(1, 64 * 1024 * 1024)] = Field(
        65536, ge=1, le=64 * 1024 * 1024, description="larger bodies get 413 payload_too_large"
    )
    fault_delay_ms: Annotated[int, _int(0, 60000)] = Field(
        0, ge=0, le=60000, description="added latency on every /api/* request (tests only)"
    )
    fault_error_rate: Annotated[float, _number(0.0, 1.0)] = Field(
        0.0, ge=0.0, le=1.0, description="share of /api/* requests answered 500 fault_injected"
    )
    order_recovery_s: Annotated[int, _int(1, 86400)] = Field(
        30,
        ge=1,
        le=86400,
        description="orders still pending this long (a crash, a lost answer) are resolved"
        " from inventory's hold state",
    )
    instance_id: Annotated[str, _on_str(parse_instance_id)] = Field(
        default_factory=_default_instance_id,
        description="names this replica in logs and order ids (default hostname-pid)",
    )
    advertise_url: Annotated[str, _on_str(parse_http_url)] = Field(
        # PORT is validated first (field order), so the default follows it.
        default_factory=lambda data: f"http://127.0.0.1:{data.get('port', 8000)}",
        description="the URL written in the service registry (default http://127.0.0.1:<PORT>)",
    )
    registry_url: Annotated[str | None, _on_str(parse_redis_url)] = Field(
        None,
        description="redis:// URL of the registry's Redis; unset = REDIS_URL's;"
        " neither = no registration",
    )

    grafana_url: Annotated[str | None, _on_str(parse_link_url)] = Field(
        None, description="Grafana link on the status page (http or https); unset = no link"
    )
    prometheus_url: Annotated[str | None, _on_str(parse_link_url)] = Field(
        None, description="Prometheus link on the status page (http or https); unset = no link"
    )

    def inventory_shards(self) -> list[str]:
        """The inventory base URLs: the INVENTORY_URLS entries, or INVENTORY_URL."""
        if self.inventory_urls is None:
            return [self.inventory_url]
        return list(self.inventory_urls)

    @model_validator(mode="after")
    def _prod_rules(self) -> Settings:
        problem = prod_problem(self.polyshop_env, self.admin_token, self)
        if problem is not None:
            raise problem
        return self

    def masked(self) -> dict[str, Any]:
        """The effective config for the start-up log line, secrets replaced by ***."""
        out = self.model_dump()
        if out["admin_token"]:
            out["admin_token"] = "***"  # noqa: S105 - the mask, not a secret
        for name in ("redis_url", "registry_url"):
            if out[name]:
                out[name] = mask_url(out[name])
        return out

    def registry_redis_url(self) -> str | None:
        """The Redis the registry lives in: REGISTRY_URL, else REDIS_URL; None = none."""
        return self.registry_url or self.redis_url


def prod_problem(env: str, admin_token: str | None, settings: Settings) -> ConfigError | None:
    """POLYSHOP_ENV=prod refuses a fault knob that is on and an unset ADMIN_TOKEN."""
    if env != "prod":
        return None
    if not admin_token:
        return ConfigError("ADMIN_TOKEN", "POLYSHOP_ENV=prod requires ADMIN_TOKEN")
    if settings.fault_delay_ms:
        return ConfigError("FAULT_DELAY_MS", "POLYSHOP_ENV=prod refuses fault knobs")
    if settings.fault_error_rate:
        return ConfigError("FAULT_ERROR_RATE", "POLYSHOP_ENV=prod refuses fault knobs")
    return None


def mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, ""))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Reads the environment; on a bad value prints ONE line naming the variable, exits 2.

    Only the exact upper-case names count; a blank value (ASCII whitespace) is unset.
    """
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for name in Settings.model_fields:
        raw = env.get(name.upper())
        if raw is not None and trim(raw):
            values[name] = raw
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, ConfigError):
            name, msg = cause.var, cause.message
        else:
            name = str(err["loc"][0]).upper() if err["loc"] else "POLYSHOP_ENV"
            msg = str(err["msg"]).removeprefix("Value error, ")
        msg = " ".join(msg.split())  # one line, whatever the value held
        print(f"gateway: invalid configuration: {name}: {msg}", file=sys.stderr)
        raise SystemExit(2) from None
