# Harness of the OpenAPI fuzzing suite: the real stack (tests/e2e's Stack: release binaries,
# the real gateway, free ports, teardown by PID), once per mode for the whole session.
from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# memory (default) and/or redis, space-separated: `make fuzz` runs both.
MODES = os.environ.get("SCHEMATHESIS_MODES", "memory").split()


def _load_e2e_harness() -> Any:
    # Reuse tests/e2e's Stack under another module name: both directories have a conftest.py.
    spec = importlib.util.spec_from_file_location("e2e_harness", ROOT / "tests/e2e/conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["e2e_harness"] = module
    spec.loader.exec_module(module)
    return module


e2e = _load_e2e_harness()
ADMIN_TOKEN: str = e2e.ADMIN_TOKEN


@pytest.fixture(scope="session", params=MODES)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    s = e2e.Stack(str(request.param), tmp_path_factory.mktemp(f"stack-{request.param}"))
    s.start()
    try:
        yield s
    finally:
        s.stop()
