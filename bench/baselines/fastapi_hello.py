"""Bare FastAPI baseline for make bench: one uvicorn worker, one JSON route, the same
server flags as the gateway, so the gateway's numbers read as a ratio of the framework."""

import os

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def hello() -> dict[str, str]:
    return {"message": "hello"}


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ["PORT"]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
