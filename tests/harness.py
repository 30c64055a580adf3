# tests/e2e's process harness (release binaries, the real gateway, free ports, start and stop
# by PID) for the suites that drive the same stack: dashboards, faults, schemathesis. It is
# loaded under its own module name because every suite directory has a conftest.py.
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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
