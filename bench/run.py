#!/usr/bin/env python3
"""make bench: wrk against the real services and against bare-framework baselines started
in the same run, printing each service's numbers as a ratio of its framework's baseline.

Ratios, not absolute RPS, are the figures to compare across machines and runs: the box is
shared (2 cores, wrk on the same cores), so absolute numbers move with the neighbours.
Stdlib only; writes bench/results/latest.md and prints the same table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ADMIN_TOKEN = "bench-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    port: int

    def rss_mb(self) -> float:
        try:
            text = Path(f"/proc/{self.popen.pid}/status").read_text()
        except OSError:
            return float("nan")
        match = re.search(r"VmRSS:\s+(\d+) kB", text)
        return int(match.group(1)) / 1024 if match else float("nan")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start(name: str, argv: list[str], port: int, env: dict[str, str], ready: str, logdir: Path) -> Proc:
    log = open(logdir / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
    # Memory mode always: a REDIS_URL left in the caller's shell would change what is measured.
    inherited = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    full_env = {**inherited, **env, "PORT": str(port), "LOG_LEVEL": "warn"}
    popen = subprocess.Popen(argv, env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    proc = Proc(name, popen, port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise SystemExit(f"bench: {name} exited early; see {logdir / (name + '.log')}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready}", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        time.sleep(0.05)
    proc.stop()
    raise SystemExit(f"bench: {name} not ready after 30 s")


@dataclass
class Result:
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    cpu_us_per_req: float


def parse_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if not match:
        return float("nan")
    number, unit = float(match.group(1)), match.group(2)
    return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number


def wrk(label: str, url: str, seconds: int, conns: int, procs: list[Proc], lua: str | None = None) -> Result:
    argv = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", url]
    script = None
    if lua:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write(lua)
        script.close()
        argv[1:1] = ["-s", script.name]
    cpu_before = sum(p.cpu_seconds() for p in procs)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    cpu = sum(p.cpu_seconds() for p in procs) - cpu_before
    if script:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = parse_ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = parse_ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non2xx_match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Result(label, rps, p50, p99, int(non2xx_match.group(1)) if non2xx_match else 0,
                  cpu / max(total, 1) * 1e6)


def post_lua(path: str, body: dict[str, object]) -> str:
    return (f'wrk.method = "POST"\nwrk.path = "{path}"\n'
            f"wrk.body = '{json.dumps(body)}'\n"
            'wrk.headers["Content-Type"] = "application/json"\n')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    for tool in ("wrk",):
        if not shutil.which(tool):
            raise SystemExit("bench: wrk is missing; run make deps")
    venv_py = ROOT / ".venv" / "bin" / "python"
    bins = {
        "axum-hello": ROOT / "target" / "bench-baselines" / "release" / "axum-hello",
        "go-hello": ROOT / "bin" / "go-hello",
        "pricing": ROOT / "target" / "release" / "pricing",
        "inventory": ROOT / "bin" / "inventory",
    }
    for name, path in bins.items():
        if not path.exists():
            raise SystemExit(f"bench: {path} missing; run make build (and make bench builds baselines)")
    logdir = Path(tempfile.mkdtemp(prefix="polyshop-bench-"))
    secs, conns = args.seconds, args.connections
    results: list[Result] = []
    rss: dict[str, tuple[float, float]] = {}

    def measure(proc: Proc, runs: list[tuple[str, str, str | None]]) -> list[Result]:
        idle = proc.rss_mb()
        out = [wrk(label, url, secs, conns, [proc], lua) for label, url, lua in runs]
        rss[proc.name] = (idle, proc.rss_mb())
        return out

    # Baselines one at a time, so each has the machine to itself as the services will.
    baselines: dict[str, Result] = {}
    for name, argv in (("axum-hello", [str(bins["axum-hello"])]), ("go-hello", [str(bins["go-hello"])]),
                       ("fastapi-hello", [str(venv_py), str(ROOT / "bench" / "baselines" / "fastapi_hello.py")])):
        port = free_port()
        proc = start(name, argv, port, {}, "/", logdir)
        try:
            baselines[name] = measure(proc, [(f"{name} GET /", f"http://127.0.0.1:{port}/", None)])[0]
        finally:
            proc.stop()
    results.extend(baselines.values())

    inv_port, pricing_port, gw_port = free_port(), free_port(), free_port()
    common = {"ADMIN_TOKEN": ADMIN_TOKEN, "INVENTORY_URL": f"http://127.0.0.1:{inv_port}",
              "PRICING_URL": f"http://127.0.0.1:{pricing_port}"}
    inventory = start("inventory", [str(bins["inventory"])], inv_port, common, "/ready", logdir)
    pricing = start("pricing", [str(bins["pricing"])], pricing_port, common, "/ready", logdir)
    gateway = start("gateway", [str(venv_py), "-m", "gateway"], gw_port, common, "/ready", logdir)
    procs = [inventory, pricing, gateway]
    try:
        # Enough stock that the order benchmark measures orders, not 409s.
        req = urllib.request.Request(f"http://127.0.0.1:{inv_port}/api/inventory/500", method="PUT",
                                     data=b'{"available": 1000000000}',
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}",
                                              "Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5).close()
        idle = {p.name: p.rss_mb() for p in procs}
        calc = post_lua("/api/calculate_price", {"product_id": 123, "quantity_available": 223})
        runs = [
            ("pricing POST /api/calculate_price", f"http://127.0.0.1:{pricing_port}/", calc, [pricing]),
            ("inventory GET /api/inventory/123", f"http://127.0.0.1:{inv_port}/api/inventory/123",
             None, [inventory]),
            ("pricing GET /api/prices/123 (-> inventory)", f"http://127.0.0.1:{pricing_port}/api/prices/123",
             None, [pricing, inventory]),
            ("gateway GET /api/product/123 (-> pricing -> inventory)",
             f"http://127.0.0.1:{gw_port}/api/product/123", None, procs),
            ("gateway POST /api/order (saga, 3 upstream calls)", f"http://127.0.0.1:{gw_port}/",
             post_lua("/api/order", {"product_id": 500, "quantity": 1}), procs),
        ]
        for label, url, lua, cpu_procs in runs:
            results.append(wrk(label, url, secs, conns, cpu_procs, lua))
        for p in procs:
            rss[p.name] = (idle[p.name], p.rss_mb())
    finally:
        for p in reversed(procs):
            p.stop()

    base_for = {"pricing": "axum-hello", "inventory": "go-hello", "gateway": "fastapi-hello"}
    lines = [f"wrk -t2 -c{conns} -d{secs}s on {os.cpu_count()} cores (wrk shares them), "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             "| target | RPS | ratio to baseline | p50 ms | p99 ms | non-2xx | CPU µs/req |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        service = r.label.split()[0]
        base = baselines.get(base_for.get(service, ""), None)
        ratio = f"{r.rps / base.rps:.2f} x {base.label.split()[0]}" if base else "baseline"
        lines.append(f"| {r.label} | {r.rps:,.0f} | {ratio} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
                     f"{r.non2xx} | {r.cpu_us_per_req:.0f} |")
    lines += ["", "| process | idle RSS MB | RSS after load MB |", "|---|---|---|"]
    lines += [f"| {name} | {a:.1f} | {b:.1f} |" for name, (a, b) in rss.items()]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(text)
    print(text)
    print(f"bench: written to {RESULTS / 'latest.md'}; process logs in {logdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
