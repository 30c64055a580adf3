# Writes services/contracts/gateway.openapi.yaml from the app (the contract test diffs them).
from __future__ import annotations

import sys
from pathlib import Path

import yaml

from gateway.config import Settings
from gateway.main import create_app

OUT = Path(__file__).resolve().parents[2] / "services" / "contracts" / "gateway.openapi.yaml"
HEADER = (
    "# polyshop gateway API: generated from the FastAPI app by\n"
    "# gateway-python/scripts/export_openapi.py; a unit test keeps it equal to /openapi.json.\n"
)


def main() -> int:
    doc = create_app(Settings.model_validate({"instance_id": "export"})).openapi()
    text = HEADER + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    if "--check" in sys.argv:
        return 0 if OUT.exists() and OUT.read_text() == text else 1
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
