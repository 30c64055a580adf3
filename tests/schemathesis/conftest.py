# Harness of the OpenAPI fuzzing suite: the real stack (tests/e2e's Stack: release binaries,
# the real gateway, free ports, teardown by PID), once per mode for the whole session.
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# memory (default) and/or redis, space-separated: `make fuzz` runs both.
MODES = os.environ.get("SCHEMATHESIS_MODES", "memory").split()


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import harness  # noqa: E402 - tests/ is put on the path just above

e2e = harness.load()
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
