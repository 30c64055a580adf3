# One pooled aiohttp session per upstream, behind its circuit breaker and bulkhead: per-try
# timeout bounded by the request deadline, jittered retries of idempotent calls only,
# header propagation and client-side metrics.
from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from gateway.config import Settings
from gateway.context import current
from gateway.errors import ApiError
from gateway.metrics import Metrics
from gateway.resilience import BreakerOpen, Bulkhead, BulkheadFull, CircuitBreaker, Outcome

log = logging.getLogger("gateway.upstream")
_RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    def error_code(self) -> str | None:
        """The `error.code` of a shared-shape error body, None if it has none."""
        try:
            data = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None
        err = data.get("error") if isinstance(data, dict) else None
        code = err.get("code") if isinstance(err, dict) else None
        return code if isinstance(code, str) else None


def _remaining_s() -> float:
    ctx = current()
    return ctx.deadline - time.monotonic() if ctx is not None else 3600.0


class UpstreamUnavailable(Exception):
    """No usable answer: connection refused/reset, timeout, or an unparsable body."""

    def __init__(self, upstream: str, reason: str, deadline_hit: bool = False) -> None:
        super().__init__(f"{upstream}: {reason}")
        self.upstream = upstream
        self.reason = reason
        self.deadline_hit = deadline_hit

    def to_api_error(self) -> ApiError:
        if self.deadline_hit:
            return ApiError("deadline_exceeded", "the request ran out of time")
        return ApiError("upstream_unavailable", f"{self.upstream} service unavailable")


class Upstream:
    """A named upstream (pricing, inventory), its connection pool, breaker and bulkhead."""

    def __init__(self, name: str, base_url: str, settings: Settings, metrics: Metrics) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.settings = settings
        self.metrics = metrics
        self._session: aiohttp.ClientSession | None = None
        self._timeout_s = settings.upstream_timeout_ms / 1000
        self.breaker = CircuitBreaker(
            name,
            settings.breaker_failures,
            settings.breaker_successes,
            settings.breaker_cooldown_s,
            on_change=metrics.set_breaker,
        )
        metrics.set_breaker(name, "closed")
        self.bulkhead = Bulkhead(
            name, settings.bulkhead_max, settings.bulkhead_queue, settings.bulkhead_wait_ms / 1000
        )

    async def start(self) -> None:
        # The bulkhead bounds concurrency; a pool of the same size never makes a call wait
        # for a connection inside aiohttp, where the wait would eat the per-try timeout.
        connector = aiohttp.TCPConnector(
            limit=self.settings.bulkhead_max + 8, ttl_dns_cache=300, keepalive_timeout=30
        )
        self._session = aiohttp.ClientSession(
            base_url=self.base_url,
            connector=connector,
            json_serialize=lambda o: orjson.dumps(o).decode(),
            skip_auto_headers=("User-Agent",),
            raise_for_status=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError(f"upstream {self.name} used before start()")
        return self._session

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        idempotent: bool = False,
        detached: bool = False,
    ) -> UpstreamResponse:
        """One logical call; idempotent ones are retried on transport errors and 502-504.

        Raises ApiError for an open breaker (503 upstream_unavailable, Retry-After = the
        cooldown left) or a full bulkhead (503 overloaded), UpstreamUnavailable when no
        usable answer came. detached: not bound by the request's deadline and not refused
        by the breaker (compensation must still run after the client's budget is spent).
        """
        attempts = 1 + (self.settings.upstream_retries if idempotent else 0)
        last: UpstreamResponse | UpstreamUnavailable | None = None
        for attempt in range(attempts):
            if attempt:
                # Full jitter on a small base: spreads a burst of retries without adding
                # much latency to a request whose deadline is a few seconds.
                pause = random.uniform(0, 0.05 * 2**attempt)
                if not detached and _remaining_s() <= pause:
                    break
                await asyncio.sleep(pause)
            try:
                last = await self._guarded(method, path, json, detached)
            except UpstreamUnavailable as exc:
                last = exc
                if exc.deadline_hit:
                    break
                continue
            if last.status not in _RETRY_STATUSES:
                return last
        if isinstance(last, UpstreamUnavailable):
            raise last
        if last is None:
            raise UpstreamUnavailable(self.name, "deadline exhausted", deadline_hit=True)
        return last

    async def _guarded(self, method: str, path: str, json: Any, detached: bool) -> UpstreamResponse:
        if not detached:
            try:
                self.breaker.allow()
            except BreakerOpen as exc:
                raise ApiError(
                    "upstream_unavailable",
                    f"{self.name} service unavailable",
                    retry_after=exc.retry_after,
                ) from None
        outcome: Outcome = "neutral"
        try:
            budget = None if detached else _remaining_s()
            try:
                await self.bulkhead.acquire(budget)
            except BulkheadFull as exc:
                if exc.deadline_bound:
                    raise ApiError("deadline_exceeded", "the request ran out of time") from None
                raise ApiError("overloaded", "the gateway is overloaded; retry later") from None
            try:
                resp = await self._once(method, path, json, detached)
            except UpstreamUnavailable as exc:
                # Our own spent budget is not the upstream's fault.
                outcome = "neutral" if exc.deadline_hit else "failure"
                raise
            finally:
                self.bulkhead.release()
            outcome = "failure" if resp.status >= 500 else "success"
            return resp
        finally:
            self.breaker.record(outcome, admitted=not detached)

    async def _once(self, method: str, path: str, json: Any, detached: bool) -> UpstreamResponse:
        ctx = current()
        timeout = self._timeout_s
        deadline_bound = False
        headers: dict[str, str] = {}
        if ctx is not None and detached:
            headers = ctx.outgoing_headers()
            headers["X-Request-Deadline-Ms"] = str(self.settings.upstream_timeout_ms)
        elif ctx is not None:
            remaining = ctx.deadline - time.monotonic()
            if remaining <= 0.001:
                raise UpstreamUnavailable(self.name, "deadline exhausted", deadline_hit=True)
            if remaining < timeout:
                timeout, deadline_bound = remaining, True
            headers = ctx.outgoing_headers()
        start = time.perf_counter()
        status = 0
        try:
            async with self.session.request(
                method,
                path,
                json=json,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                body = await resp.read()
                status = resp.status
        except TimeoutError:
            raise UpstreamUnavailable(self.name, "timeout", deadline_hit=deadline_bound) from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(self.name, type(exc).__name__) from None
        finally:
            self.metrics.observe_client(method, self.name, status, time.perf_counter() - start)
        if status >= 500:
            log.warning(
                "upstream_error",
                extra={"upstream": self.name, "path": path, "status": status},
            )
        return UpstreamResponse(status, body)
