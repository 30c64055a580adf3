# What the test suites share: load() gives tests/e2e's process harness (release binaries,
# the real gateway, start and stop by PID) to the suites that drive the same stack
# (dashboards, faults, schemathesis), under its own module name because every suite
# directory has a conftest.py; free_port, eventually and label_selector_matches serve
# several suites.
from __future__ import annotations

import importlib.util
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

E2E_CONFTEST = Path(__file__).resolve().parent / "e2e" / "conftest.py"


def load() -> ModuleType:
    if "e2e_harness" in sys.modules:
        return sys.modules["e2e_harness"]
    spec = importlib.util.spec_from_file_location("e2e_harness", E2E_CONFTEST)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["e2e_harness"] = module
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    # Ports 8000-8002 belong to `make run`; the kernel's ephemeral range never hands them out.
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in (6379, 8000, 8001, 8002):
            return port


def label_selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """metav1.LabelSelector semantics: None selects nothing, an empty selector everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def eventually(
    check: Callable[[], Any],
    what: str,
    timeout_s: float = 90,
    interval_s: float = 1.0,
    errors: tuple[type[BaseException], ...] = (OSError, ValueError, AssertionError),
) -> Any:
    """check()'s first truthy answer; `errors` count as "not yet". Fails with the last one."""
    end = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < end:
        try:
            last = check()
            if last:
                return last
        except errors as exc:
            last = exc
        time.sleep(interval_s)
    raise AssertionError(f"{what}: not reached in {timeout_s}s (last: {last!r})")
