"""Python reference implementations of polyshop, for make bench only (never shipped).

What a competent Python team would write for the same contracts: FastAPI + uvicorn,
`decimal` money, an in-memory dict behind a lock. bench/run.py measures them against the
Rust/Go services and the gateway stack; tests/references proves they give the same answers.

    pricing.py    POST /api/calculate_price(s), the rules of docs/DESIGN.md
    inventory.py  GET /api/inventory/{id}, holds (reserve, commit, release, expiry)
    monolith.py   GET /api/product/{id}, POST /api/order: pricing + inventory in-process

Run one with uvicorn, e.g. (from the repository root):

    .venv/bin/python -m uvicorn --app-dir bench --factory references.monolith:create_app \
        --port 9000 --loop uvloop --http httptools --no-access-log
"""
