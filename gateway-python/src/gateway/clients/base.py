# One keep-alive connection pool per upstream (transport.py), behind its circuit breaker and
# bulkhead: per-try timeout bounded by the request deadline, jittered retries of idempotent
# calls only, header propagation and client-side metrics.
from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from gateway.clients.transport import HttpPool, TransportError
from gateway.config import Settings
from gateway.context import current, outgoing_headers
from gateway.metrics import Metrics
from gateway.resilience import BreakerOpen, Bulkhead, BulkheadFull, CircuitBreaker, Outcome

log = logging.getLogger("gateway.upstream")
_RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    body: bytes
    shard_owner: str | None = None  # X-Shard-Owner of a 421 (ring.md)

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


FailureKind = Literal["unavailable", "overloaded", "deadline"]


def _outcome(resp: UpstreamResponse) -> Outcome:
    """A 503 in the shared error shape is the upstream answering on purpose that it cannot
    serve this request now (its own dependency, say one inventory shard, is down, or it is
    overloaded): it says nothing of the upstream's health. Counting it as a failure would
    let one dead shard behind pricing open the gateway's pricing breaker for every product."""
    if resp.status == 503 and resp.error_code() is not None:
        return "neutral"
    return "failure" if resp.status >= 500 else "success"


class UpstreamError(Exception):
    """The one error an upstream call raises: no usable answer came.

    kind: unavailable (refused, reset, timed out, 5xx, unparsable, breaker open),
    overloaded (our bulkhead is full) or deadline (the caller's budget ran out).
    maybe_applied: the request may have reached the upstream and taken effect (a timeout
    or a dropped connection after sending), so its outcome must be found out, not guessed.
    """

    def __init__(
        self,
        upstream: str,
        kind: FailureKind,
        reason: str,
        *,
        retry_after: int | None = None,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(f"{upstream}: {reason}")
        self.upstream = upstream
        self.kind: FailureKind = kind
        self.reason = reason
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied


class Upstream:
    """A named upstream (pricing, inventory), its connection pool, breaker and bulkhead."""

    def __init__(self, name: str, base_url: str, settings: Settings, metrics: Metrics) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.settings = settings
        self.metrics = metrics
        self._pool: HttpPool | None = None
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
        # The bulkhead bounds concurrency; idle connections beyond it would only be closed.
        self._pool = HttpPool(self.base_url, self.settings.bulkhead_max + 8)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> HttpPool:
        if self._pool is None:
            raise RuntimeError(f"upstream {self.name} used before start()")
        return self._pool

    async def call(
        self,
        method: str,
        path: str,
        *,
        deadline: float | None,
        json: Any = None,
        idempotent: bool = False,
    ) -> UpstreamResponse:
        """One logical call, to finish by deadline (time.monotonic()); idempotent calls are
        retried on transport errors and 502-504 while the deadline allows.

        deadline None: a detached call (compensation, recovery) that must run even after
        the client's budget is spent: each try gets the per-try timeout, and the breaker
        does not refuse it. Raises UpstreamError when no usable answer came.
        """
        attempts = 1 + (self.settings.upstream_retries if idempotent else 0)
        last: UpstreamResponse | UpstreamError | None = None
        for attempt in range(attempts):
            if attempt:
                # Full jitter on a small base: spreads a burst of retries without adding
                # much latency to a request whose deadline is a few seconds.
                pause = random.uniform(0, 0.05 * 2**attempt)
                if deadline is not None and deadline - time.monotonic() <= pause:
                    break
                await asyncio.sleep(pause)
            try:
                last = await self._guarded(method, path, json, deadline)
            except UpstreamError as exc:
                last = exc
                if exc.kind != "unavailable" or exc.retry_after is not None:
                    break  # out of time, overloaded, or the breaker is open
                if attempt + 1 < attempts:
                    # Worth a line: a retry after a lost answer is how a landed call is found.
                    log.warning(
                        "upstream_retry",
                        extra={
                            "upstream": self.name,
                            "method": method,
                            "path": path,
                            "reason": exc.reason,
                            "maybe_applied": exc.maybe_applied,
                        },
                    )
                continue
            if last.status not in _RETRY_STATUSES:
                return last
        if isinstance(last, UpstreamError):
            raise last
        if last is None:
            raise UpstreamError(self.name, "deadline", "deadline exhausted")
        if last.status >= 500:
            raise UpstreamError(
                self.name, "unavailable", f"status {last.status}", maybe_applied=True
            )
        return last

    async def _guarded(
        self, method: str, path: str, json: Any, deadline: float | None
    ) -> UpstreamResponse:
        detached = deadline is None
        if not detached:
            try:
                self.breaker.allow()
            except BreakerOpen as exc:
                raise UpstreamError(
                    self.name, "unavailable", "breaker open", retry_after=exc.retry_after
                ) from None
        outcome: Outcome = "neutral"
        try:
            budget = None if deadline is None else deadline - time.monotonic()
            try:
                await self.bulkhead.acquire(budget)
            except BulkheadFull as exc:
                kind: FailureKind = "deadline" if exc.deadline_bound else "overloaded"
                raise UpstreamError(self.name, kind, "bulkhead full") from None
            try:
                resp = await self._once(method, path, json, deadline)
            except UpstreamError as exc:
                # Our own spent budget is not the upstream's fault.
                outcome = "neutral" if exc.kind == "deadline" else "failure"
                raise
            finally:
                self.bulkhead.release()
            outcome = _outcome(resp)
            return resp
        finally:
            self.breaker.record(outcome, admitted=not detached)

    async def _once(
        self, method: str, path: str, json: Any, deadline: float | None
    ) -> UpstreamResponse:
        timeout = self._timeout_s
        deadline_bound = False
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0.001:
                raise UpstreamError(self.name, "deadline", "deadline exhausted")
            if remaining < timeout:
                timeout, deadline_bound = remaining, True
        # The callee gets the budget of this try, so it stops when we stop waiting.
        headers = outgoing_headers(current(), int(timeout * 1000))
        body = None if json is None else orjson.dumps(json)
        start = time.perf_counter()
        status = 0
        try:
            resp = await self.pool.request(method, path, headers, body, timeout)
            status = resp.status
        except TransportError as exc:
            if exc.timed_out:
                kind: FailureKind = "deadline" if deadline_bound else "unavailable"
                raise UpstreamError(self.name, kind, "timeout", maybe_applied=exc.sent) from None
            raise UpstreamError(
                self.name, "unavailable", exc.reason, maybe_applied=exc.sent
            ) from None
        finally:
            self.metrics.observe_client(method, self.name, status, time.perf_counter() - start)
        owner = resp.headers.get(b"x-shard-owner") if status == 421 else None
        if status >= 500:
            log.warning(
                "upstream_error",
                extra={"upstream": self.name, "path": path, "status": status},
            )
        return UpstreamResponse(
            status, resp.body, None if owner is None else owner.decode("latin-1")
        )
