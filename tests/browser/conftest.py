# Browser harness: the real native stack of tests/e2e (its Stack: release binaries, the real
# gateway, free ports) and Debian's chromium driven by Playwright through its executable path
# (never a downloaded browser), with a fresh profile, every request outside the stack refused
# and counted, and screenshots saved as artifacts (ARTIFACTS_DIR, else tests/browser/artifacts).
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR") or Path(__file__).parent / "artifacts")
# The README's screenshots (docs/storefront.png, docs/status.png) when this is set to 1.
DOCS_SHOTS = os.environ.get("BROWSER_DOCS_SHOTS") == "1"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _load_e2e() -> Any:
    # tests/e2e/conftest.py is a conftest (pytest's module name "conftest" is this file's):
    # load it under its own name to reuse its Stack without registering its fixtures.
    spec = importlib.util.spec_from_file_location("e2e_harness", ROOT / "tests/e2e/conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["e2e_harness"] = module
    spec.loader.exec_module(module)
    return module


e2e = _load_e2e()


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing (run `make deps`)")
    pytest.skip(f"{what} is missing; `make deps` installs it")


def chromium_path() -> str:
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(exe, os.X_OK):
        _missing("chromium (Debian package)")
    return exe


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {ARTIFACTS}")
    return ARTIFACTS


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One memory-mode stack per module (the last test of a module may stop a service)."""
    s = e2e.Stack("memory", tmp_path_factory.mktemp("browser-stack"))
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    exe = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright (make deps-browser)")
        raise
    with sync_playwright() as pw:
        # launch() gives every run a fresh, temporary profile (its own --user-data-dir).
        b = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


class Watch:
    """What a context did that it must not: requests to another origin, console errors
    (a CSP violation is one) and uncaught page errors."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.foreign: list[str] = []
        self.errors: list[str] = []

    def route(self, route: Any) -> None:
        url: str = route.request.url
        if url.startswith(self.origin + "/") or url.startswith("data:"):
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def console(self, msg: Any) -> None:
        # An error page's own status is logged as "Failed to load resource": expected here.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.errors.append(msg.text)

    def check(self) -> None:
        assert self.foreign == [], f"requests outside the stack: {self.foreign}"
        assert self.errors == [], f"console errors: {self.errors}"


def new_context(browser: Any, origin: str, **options: Any) -> tuple[Any, Watch]:
    context = browser.new_context(
        base_url=origin, viewport={"width": 1200, "height": 800}, **options
    )
    watch = Watch(origin)
    context.route("**/*", watch.route)
    context.on("console", watch.console)
    context.on("weberror", lambda err: watch.errors.append(str(err.error)))
    return context, watch


@pytest.fixture
def context(browser: Any, stack: Any) -> Iterator[tuple[Any, Watch]]:
    ctx, watch = new_context(browser, stack.gateway)
    try:
        yield ctx, watch
    finally:
        ctx.close()
    watch.check()


@pytest.fixture
def shoot(artifacts: Path) -> Any:
    def take(page: Any, name: str, docs: str | None = None) -> None:
        path = artifacts / f"{name}.png"
        page.screenshot(path=str(path))
        if DOCS_SHOTS and docs:
            page.screenshot(path=str(ROOT / "docs" / docs))

    return take
