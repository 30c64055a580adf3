# Failures with real processes: pricing dies after the reserve -> the hold is released.
from __future__ import annotations

import signal

import aiohttp

from conftest import StackFactory, restock, settles_to
from test_api import assert_error, call


async def test_pricing_down_after_reserve_releases_the_hold(
    mode: str, make_stack: StackFactory, http: aiohttp.ClientSession
) -> None:
    stack = make_stack(mode)
    product = 600
    await restock(http, stack, product, 10)
    stack.services["pricing"].signal(signal.SIGKILL)
    stack.services["pricing"].proc.wait(10)  # type: ignore[union-attr]
    status, data, headers = await call(
        http, "POST", f"{stack.gateway}/api/order", json={"product_id": product, "quantity": 4}
    )
    assert_error(status, data, headers, 503, "upstream_unavailable")
    # The reserve happened (inventory is up) and the saga gave the units back.
    assert await settles_to(http, stack, product, 10) == 10
