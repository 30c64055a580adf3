# The storefront in a real browser (Debian's chromium through Playwright) against the real
# native stack: browse and search, order one unit by keyboard and see the confirmation and the
# stock go down by one, a double submit and a reload that order nothing twice, more than the
# stock and the out-of-stock message, everything again without JavaScript, the status page's
# live counts, and inventory stopped: the dependency-down message. Screenshots of each page.
from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

ORDER_URL = re.compile(r"/orders/([0-9]+)\?placed=1$")
PRODUCT = 123  # the seed catalog's: Classic Jacket 123, 223 units in WH-4, 164.35 for one


def stock(page: Any) -> int:
    text = page.locator("#stock").inner_text()
    return int(text.split(" ")[0].replace(",", ""))


def number(locator: Any) -> int:
    return int(locator.inner_text().replace(",", ""))


def post_response(page: Any, submit: Any) -> Any:
    """Submits a form and answers the POST's response (its status is the page's)."""
    with page.expect_response(lambda r: r.request.method == "POST") as info:
        submit()
    page.wait_for_load_state()
    return info.value


def test_browse_search_and_open_a_product(context: Any, shoot: Any) -> None:
    ctx, _ = context
    page = ctx.new_page()
    assert page.goto("/").status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text("Shop")
    expect(page.locator(".card")).to_have_count(20)
    expect(page.get_by_text("1,000 products, page 1 of 50.")).to_be_visible()
    shoot(page, "storefront", "storefront.png")
    page.keyboard.press("Tab")  # the first stop is the skip link
    expect(page.locator(".skip")).to_be_focused()
    page.get_by_role("link", name="Next →").click()
    expect(page).to_have_url(re.compile(r"/\?page=2$"))
    search = page.get_by_label("Search by product id or name")
    search.fill("jacket 123")
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"q=jacket\+123"))
    page.locator(".card", has_text="Classic Jacket 123").get_by_role("link").click()
    expect(page).to_have_url(re.compile(f"/product/{PRODUCT}$"))
    expect(page.locator("#price")).to_have_text("$164.35")
    expect(page.locator("#tier")).to_have_text("basic (5.0 % off)")
    shoot(page, "product")
    assert page.goto("/?q=no-such-product").status == 200
    expect(page.get_by_text("0 products match")).to_be_visible()
    assert page.goto("/product/abc").status == 422
    expect(page.get_by_role("alert")).to_contain_text("Check your input")
    shoot(page, "bad-input")


def test_order_one_unit_by_keyboard(context: Any, shoot: Any) -> None:
    ctx, _ = context
    page = ctx.new_page()
    page.goto(f"/product/{PRODUCT}")
    before = stock(page)
    quantity = page.get_by_label("Quantity")
    quantity.focus()
    page.keyboard.press("Control+A")
    page.keyboard.type("1")
    assert post_response(page, lambda: page.keyboard.press("Enter")).status == 303
    expect(page).to_have_url(ORDER_URL)
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: order confirmed")
    order_id = page.locator("#order-id").inner_text()
    assert ORDER_URL.search(page.url)[1] == order_id  # type: ignore[index]
    expect(page.locator("#unit-price")).to_have_text("$164.35")
    expect(page.locator("#total-price")).to_have_text("$164.35")
    expect(page.locator("#reservation-id")).to_have_text(re.compile(r"^RES-"))
    expect(page.locator("#order-status")).to_have_text("confirmed")
    shoot(page, "order-confirmation")
    page.reload()  # post/redirect/get: a reload reads the order again, orders nothing
    expect(page.locator("#order-id")).to_have_text(order_id)
    page.goto(f"/product/{PRODUCT}")
    assert stock(page) == before - 1
    # The lookup page finds it.
    page.goto("/orders")
    page.get_by_label("Order number").fill(order_id)
    page.get_by_label("Order number").press("Enter")
    expect(page).to_have_url(re.compile(f"/orders/{order_id}$"))
    expect(page.locator("#order-status")).to_have_text("confirmed")
    shoot(page, "order-lookup")


def test_a_double_submit_orders_once(context: Any) -> None:
    ctx, _ = context
    page = ctx.new_page()
    page.goto(f"/product/{PRODUCT}")
    before = stock(page)
    page.get_by_role("button", name="Order").dblclick()
    expect(page).to_have_url(ORDER_URL)
    page.goto(f"/product/{PRODUCT}")
    assert stock(page) == before - 1
    # The same form sent twice more, as a browser that retries would: the same order.
    key = page.locator("input[name=idempotency_key]").get_attribute("value")
    form = {"quantity": "1", "idempotency_key": key or ""}
    first = page.request.post(f"/product/{PRODUCT}/order", form=form, max_redirects=0)
    again = page.request.post(f"/product/{PRODUCT}/order", form=form, max_redirects=0)
    assert first.status == again.status == 303
    assert first.headers["location"] == again.headers["location"]
    page.reload()
    assert stock(page) == before - 2


def test_more_than_the_stock_is_out_of_stock(context: Any, shoot: Any) -> None:
    ctx, _ = context
    page = ctx.new_page()
    page.goto(f"/product/{PRODUCT}")
    before = stock(page)
    page.get_by_label("Quantity").fill(str(before + 1))
    resp = post_response(page, page.get_by_role("button", name="Order").click)
    assert resp.status == 409
    expect(page.get_by_role("alert")).to_contain_text("Out of stock")
    expect(page.get_by_label("Quantity")).to_have_value(str(before + 1))
    shoot(page, "out-of-stock")
    assert stock(page) == before


def test_browsing_and_ordering_work_without_javascript(browser: Any, stack: Any) -> None:
    from conftest import new_context

    ctx, watch = new_context(browser, stack.gateway, java_script_enabled=False)
    try:
        page = ctx.new_page()
        page.goto("/?q=123")
        page.locator(".card").get_by_role("link").click()
        before = stock(page)
        page.get_by_label("Quantity").fill("2")
        assert post_response(page, page.get_by_role("button", name="Order").click).status == 303
        # Priced on the demand before this hold (earlier tests ordered): total = 2 x unit.
        unit = float(page.locator("#unit-price").inner_text().lstrip("$").replace(",", ""))
        total = float(page.locator("#total-price").inner_text().lstrip("$").replace(",", ""))
        assert unit > 0 and round(unit * 2, 2) == total
        page.goto(f"/product/{PRODUCT}")
        assert stock(page) == before - 2
        page.goto("/status")  # the server's snapshot
        expect(page.locator("#updated")).to_contain_text("reload to refresh")
    finally:
        ctx.close()
    watch.check()


def test_status_page_shows_new_request_counts_live(context: Any, shoot: Any) -> None:
    ctx, _ = context
    page = ctx.new_page()
    page.goto("/status")
    expect(page.locator('[data-slot="pricing_service"]')).to_have_text("up")
    expect(page.locator('[data-stat="pricing_service.language"]')).to_have_text("Rust")
    expect(page.locator('[data-stat="inventory_service.language"]')).to_have_text("Go")
    expect(page.locator('[data-stat="api_gateway.breakers.inventory"]')).to_have_text("closed")
    gateway = page.locator('[data-stat="api_gateway.requests_processed"]')
    inventory = page.locator('[data-stat="inventory_service.requests_processed"]')
    gw0, inv0 = number(gateway), number(inventory)
    shop = ctx.new_page()  # traffic from another tab: an order
    shop.goto(f"/product/{PRODUCT}")
    post_response(shop, shop.get_by_role("button", name="Order").click)
    expect(shop).to_have_url(ORDER_URL)
    # No reload: status.js refreshes from /api/stats every 2 s.
    expect(page.locator("#updated")).to_contain_text("Live", timeout=6000)
    page.wait_for_function(
        """([g, i]) => {
            const n = (k) => Number(document.querySelector(`[data-stat="${k}"]`)
                .textContent.replace(/,/g, ""));
            return n("api_gateway.requests_processed") > g
                && n("inventory_service.requests_processed") > i;
        }""",
        arg=[gw0 + 3, inv0 + 2],
        timeout=8000,
    )
    assert number(gateway) > gw0 and number(inventory) > inv0
    shoot(page, "status", "status.png")


def test_inventory_down_shows_the_dependency_down_message(
    context: Any, stack: Any, shoot: Any
) -> None:
    ctx, _ = context
    page = ctx.new_page()
    page.goto(f"/product/{PRODUCT}")  # rendered while inventory is up
    stack.services["inventory"].stop()  # the last test of the module: nothing needs it later
    resp = post_response(page, page.get_by_role("button", name="Order").click)
    assert resp.status == 503
    assert int(resp.headers["retry-after"]) >= 1
    expect(page.get_by_role("alert")).to_contain_text("A service is down")
    expect(page.get_by_role("alert")).to_contain_text("will not order twice")
    shoot(page, "inventory-down")
    page.goto("/status")
    expect(page.locator('[data-slot="inventory_service"]')).to_have_text("unavailable")
    shoot(page, "status-inventory-down")
