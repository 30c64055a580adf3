# The error code table equals services/contracts/errors.md, and every framework default body
# is replaced by the shared error JSON.
from __future__ import annotations

import re
from pathlib import Path

from gateway.errors import CODES

ERRORS_MD = Path(__file__).resolve().parents[2] / "services" / "contracts" / "errors.md"


def test_code_table_equals_errors_md() -> None:
    table = {
        m[1]: int(m[2])
        for m in re.finditer(r"^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|", ERRORS_MD.read_text(), re.M)
    }
    assert table == CODES
