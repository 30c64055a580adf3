#!/usr/bin/env python3
"""make bench: wrk against the real services, the Python references (bench/references) and
bare-framework baselines, all started in the same run, with the same load settings.

It answers two questions with ratios measured side by side, never absolute numbers:

* the seed document's claims (Rust pricing 15x Python, Go inventory 8x Python, the
  microservice stack 7.1x a Python monolith with 6.7x lower P95, 290 MB vs 850 MB): each
  claim, the seed's figure, our measured ratio, and whether it holds on this machine;
* our targets against the bare frameworks (gateway >= 0.5 x FastAPI hello, ...): reported
  as met or missed, never asserted.

The box is shared (2 cores, wrk on the same cores), so every closed-loop figure is taken in
`--repeats` interleaved rounds (the order reversed every other round) and reported as the
median, with the per-round ratio range. With vegeta installed (make bench installs it) an
open-loop pass drives product reads and orders at fixed rates (25/50/70/90 % of each path's
closed-loop saturation) and reports p50/p95/p99 per rate and where p95 crosses 20 ms.

Stdlib only. Writes bench/results/latest.md, latest.json (bench/charts.py draws the SVGs
from it) and appends one line per figure to bench/results/history.csv.
"""

# The harness starts local processes and talks HTTP to 127.0.0.1 only:
# ruff: noqa: S310, S603, S607

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ADMIN_TOKEN = "bench-admin-token"  # noqa: S105 - local throwaway processes only
VENV_PY = ROOT / ".venv" / "bin" / "python"
VEGETA_VERSION = "v12.13.0"
# mk/bench.mk installs the pinned vegeta and passes its path; this default is the same place.
VEGETA = Path(
    os.environ.get(
        "POLYSHOP_VEGETA",
        Path.home() / ".cache" / "polyshop" / "tools" / f"vegeta-{VEGETA_VERSION}" / "vegeta",
    )
)
OPEN_LOOP_SHARES = (0.25, 0.50, 0.70, 0.90)
P95_LIMIT_MS = 20.0
ORDER_PRODUCT = 500  # restocked to 10^9 on both arrangements, so orders measure orders
CLOSED = "closed loop (wrk)"
OPEN = "open loop (vegeta)"


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in (6379, 8000, 8001, 8002):
            return port


# ---------------------------------------------------------------- processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    port: int
    ready: str
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise SystemExit(f"bench: {self.name} exited early; see {self.log}")
            try:
                with urllib.request.urlopen(self.url + self.ready, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"bench: {self.name} not ready after {timeout_s:.0f} s; see {self.log}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def launch(
    name: str,
    argv: list[str],
    port: int,
    env: dict[str, str],
    ready: str,
    logdir: Path,
    cwd: Path = ROOT,
) -> Proc:
    log = logdir / f"{name}.log"
    # Memory mode always: a REDIS_URL left in the caller's shell would change what is measured.
    inherited = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    full_env = {**inherited, **env, "PORT": str(port), "LOG_LEVEL": "warn"}
    with log.open("wb") as out:
        popen = subprocess.Popen(argv, env=full_env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    return Proc(name, popen, port, ready, log)


def reference_argv(module: str, port: int) -> list[str]:
    """A Python reference the way a Python team runs it: the uvicorn CLI, the gateway's
    server flags (uvloop, httptools, one worker, no access log)."""
    return [
        str(VENV_PY),
        "-m",
        "uvicorn",
        "--app-dir",
        str(ROOT / "bench"),
        "--factory",
        f"references.{module}:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def restock(proc: Proc, product_id: int, available: int) -> None:
    req = urllib.request.Request(
        f"{proc.url}/api/inventory/{product_id}",
        method="PUT",
        data=json.dumps({"available": available}).encode(),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=5).close()


# ---------------------------------------------------------------- closed loop (wrk)


@dataclass
class Run:
    key: str
    label: str
    proc: str  # the process whose URL is driven
    path: str
    body: dict[str, object] | None  # POST body, None for GET
    cpu: list[str]  # processes on the request's path, for CPU per request


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    non2xx: int
    errors: int
    requests: int
    cpu_us_per_req: float


DONE_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("POLYSHOP %d %d %d %d %d\\n", latency:percentile(50),
    latency:percentile(95), latency:percentile(99), summary.requests,
    e.connect + e.read + e.write + e.timeout))
end
"""


def wrk_lua(path: str, body: dict[str, object] | None) -> str:
    head = f'wrk.path = "{path}"\n'
    if body is not None:
        head += (
            f"wrk.method = \"POST\"\nwrk.body = '{json.dumps(body)}'\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
    return head + DONE_LUA


def wrk(url: str, lua: str, seconds: int, conns: int, cpu_procs: list[Proc]) -> Sample:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    argv = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", script.name, url]
    cpu_before = sum(p.cpu_seconds() for p in cpu_procs)
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    cpu = sum(p.cpu_seconds() for p in cpu_procs) - cpu_before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    line = re.search(r"POLYSHOP (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    assert line, out
    p50, p95, p99, total, errors = (int(g) for g in line.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Sample(
        rps,
        p50 / 1000,
        p95 / 1000,
        p99 / 1000,
        int(non2xx.group(1)) if non2xx else 0,
        errors,
        total,
        cpu / max(total, 1) * 1e6,
    )


@dataclass
class Summary:
    key: str
    label: str
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    non2xx: int
    errors: int
    cpu_us_per_req: float
    rounds: list[Sample] = field(default_factory=list)


def summarise(run: Run, samples: list[Sample]) -> Summary:
    med = statistics.median
    return Summary(
        run.key,
        run.label,
        med(s.rps for s in samples),
        med(s.p50_ms for s in samples),
        med(s.p95_ms for s in samples),
        med(s.p99_ms for s in samples),
        sum(s.non2xx for s in samples),
        sum(s.errors for s in samples),
        med(s.cpu_us_per_req for s in samples),
        samples,
    )


@dataclass
class Ratio:
    value: float  # median over rounds of the per-round ratio
    low: float
    high: float

    def text(self) -> str:
        if self.low == self.high:
            return f"{self.value:.2f}x"
        return f"{self.value:.2f}x ({self.low:.2f}-{self.high:.2f})"


def ratio(a: Summary, b: Summary, metric: str, invert: bool = False) -> Ratio:
    """a/b per round (b/a when invert), so each ratio compares runs close in time."""
    per_round = []
    for sa, sb in zip(a.rounds, b.rounds, strict=True):
        x, y = getattr(sa, metric), getattr(sb, metric)
        num, den = (y, x) if invert else (x, y)
        per_round.append(num / den if den else float("nan"))
    return Ratio(statistics.median(per_round), min(per_round), max(per_round))


# ---------------------------------------------------------------- open loop (vegeta)


@dataclass
class OpenPoint:
    arrangement: str
    path: str
    share: float
    rate: int
    achieved_rps: float
    success: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


def vegeta(
    url: str, body: dict[str, object] | None, rate: int, seconds: int, workdir: Path
) -> dict:
    target = workdir / "target.txt"
    if body is None:
        target.write_text(f"GET {url}\n")
    else:
        body_file = workdir / "body.json"
        body_file.write_text(json.dumps(body))
        target.write_text(f"POST {url}\nContent-Type: application/json\n@{body_file}\n")
    attack = subprocess.run(
        [
            str(VEGETA),
            "attack",
            f"-targets={target}",
            f"-rate={rate}/s",
            f"-duration={seconds}s",
            "-timeout=10s",
        ],
        capture_output=True,
        check=True,
    )
    report = subprocess.run(
        [str(VEGETA), "report", "-type=json"], input=attack.stdout, capture_output=True, check=True
    )
    result: dict = json.loads(report.stdout)
    return result


def crossing(points: list[OpenPoint], limit_ms: float) -> str:
    """The offered rate where p95 crosses limit_ms, interpolated between measured rates."""
    below = None
    for p in points:
        if p.p95_ms > limit_ms:
            if below is None:
                return f"< {p.rate:,} rps (p95 {p.p95_ms:.1f} ms already at {p.share:.0%})"
            frac = (limit_ms - below.p95_ms) / (p.p95_ms - below.p95_ms)
            at = below.rate + frac * (p.rate - below.rate)
            return f"~{at:,.0f} rps (between {below.share:.0%} and {p.share:.0%} of saturation)"
        below = p
    top = points[-1]
    return f"> {top.rate:,} rps (p95 {top.p95_ms:.1f} ms at {top.share:.0%}: not crossed)"


# ---------------------------------------------------------------- report


def verdict(measured: float, claimed: float) -> str:
    if measured != measured:  # nan
        return "not measured"
    if measured >= claimed:
        return "holds"
    if measured > 1.0:
        return f"direction only: {measured:.2f}x is {measured / claimed:.0%} of the claimed factor"
    return "does not hold (reversed)"


def fmt_rps(x: float) -> str:
    return f"{x:,.0f}"


def git_commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def python_rules_us() -> float:
    """One price calculation of the Python rules in-process (no HTTP), in µs."""
    code = (
        "import timeit\nfrom decimal import Decimal\nfrom references import rules\n"
        "b = Decimal('173.00')\nn = 20000\n"
        "t = min(timeit.repeat(lambda: rules.quote(b, 223, 2, 3), number=n, repeat=3))\n"
        "print(t / n * 1e6)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "bench")}
    out = subprocess.run(
        [str(VENV_PY), "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return float(out.stdout.strip())


def criterion_rules_ns() -> tuple[float | None, str]:
    """Rust's rules-only calculation from the last `make bench-rust` (criterion), if any.

    make bench runs bench-rust after this script, so it is the previous run's figure."""
    path = ROOT / "target" / "criterion" / "quote (rules only)" / "new" / "estimates.json"
    try:
        median = float(json.loads(path.read_text())["median"]["point_estimate"])
    except (OSError, KeyError, ValueError):
        return None, ""
    return median, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(path.stat().st_mtime))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=6, help="each wrk run (default 6)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--open-seconds", type=int, default=5, help="each vegeta rate (default 5)")
    parser.add_argument("--no-open-loop", action="store_true", help="skip the vegeta pass")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench: wrk is missing; run make deps")
    bins = {
        "axum-hello": ROOT / "target" / "bench-baselines" / "release" / "axum-hello",
        "go-hello": ROOT / "bin" / "go-hello",
        "pricing": ROOT / "target" / "release" / "pricing",
        "inventory": ROOT / "bin" / "inventory",
    }
    for path in bins.values():
        if not path.exists():
            raise SystemExit(f"bench: {path} missing; run make build (make bench builds baselines)")
    open_loop = not args.no_open_loop and VEGETA.exists()
    started_at = time.time()
    logdir = Path(tempfile.mkdtemp(prefix="polyshop-bench-"))
    secs, conns = args.seconds, args.connections

    port = {
        name: free_port()
        for name in (
            "axum-hello",
            "go-hello",
            "fastapi-hello",
            "inventory",
            "pricing",
            "gateway",
            "py-pricing",
            "py-inventory",
            "monolith",
        )
    }
    common = {
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "INVENTORY_URL": f"http://127.0.0.1:{port['inventory']}",
        "PRICING_URL": f"http://127.0.0.1:{port['pricing']}",
    }
    specs = [
        ("axum-hello", [str(bins["axum-hello"])], {}, "/"),
        ("go-hello", [str(bins["go-hello"])], {}, "/"),
        (
            "fastapi-hello",
            [str(VENV_PY), str(ROOT / "bench" / "baselines" / "fastapi_hello.py")],
            {},
            "/",
        ),
        ("inventory", [str(bins["inventory"])], common, "/ready"),
        ("pricing", [str(bins["pricing"])], common, "/ready"),
        ("gateway", [str(VENV_PY), "-m", "gateway"], common, "/ready"),
        ("py-pricing", reference_argv("pricing", port["py-pricing"]), common, "/ready"),
        ("py-inventory", reference_argv("inventory", port["py-inventory"]), common, "/ready"),
        ("monolith", reference_argv("monolith", port["monolith"]), common, "/ready"),
    ]
    procs: dict[str, Proc] = {}
    calc = {"product_id": 123, "quantity_available": 223}
    order = {"product_id": ORDER_PRODUCT, "quantity": 1}
    stack = ["gateway", "pricing", "inventory"]
    runs = [
        Run("hello.axum", "axum hello GET / (baseline)", "axum-hello", "/", None, ["axum-hello"]),
        Run(
            "pricing.rust",
            "pricing (Rust) POST /api/calculate_price",
            "pricing",
            "/api/calculate_price",
            calc,
            ["pricing"],
        ),
        Run(
            "pricing.python",
            "pricing (Python ref) POST /api/calculate_price",
            "py-pricing",
            "/api/calculate_price",
            calc,
            ["py-pricing"],
        ),
        Run("hello.go", "net/http hello GET / (baseline)", "go-hello", "/", None, ["go-hello"]),
        Run(
            "inventory.go",
            "inventory (Go) GET /api/inventory/123",
            "inventory",
            "/api/inventory/123",
            None,
            ["inventory"],
        ),
        Run(
            "inventory.python",
            "inventory (Python ref) GET /api/inventory/123",
            "py-inventory",
            "/api/inventory/123",
            None,
            ["py-inventory"],
        ),
        Run(
            "hello.fastapi",
            "FastAPI hello GET / (baseline, 1 worker)",
            "fastapi-hello",
            "/",
            None,
            ["fastapi-hello"],
        ),
        Run(
            "product.stack",
            "stack GET /api/product/123 (gateway -> pricing -> inventory)",
            "gateway",
            "/api/product/123",
            None,
            stack,
        ),
        Run(
            "product.monolith",
            "monolith (Python ref) GET /api/product/123",
            "monolith",
            "/api/product/123",
            None,
            ["monolith"],
        ),
        Run(
            "order.stack",
            "stack POST /api/order (saga, 3 upstream calls)",
            "gateway",
            "/api/order",
            order,
            stack,
        ),
        Run(
            "order.monolith",
            "monolith (Python ref) POST /api/order",
            "monolith",
            "/api/order",
            order,
            ["monolith"],
        ),
        Run(
            "prices.rust",
            "pricing GET /api/prices/123 (-> inventory)",
            "pricing",
            "/api/prices/123",
            None,
            ["pricing", "inventory"],
        ),
    ]
    samples: dict[str, list[Sample]] = {r.key: [] for r in runs}
    open_points: list[OpenPoint] = []
    equal_rate: dict[str, tuple[OpenPoint, OpenPoint]] = {}
    rss_idle: dict[str, float] = {}
    rss_load: dict[str, float] = {}
    try:
        for name, argv, env, ready in specs:
            procs[name] = launch(name, argv, port[name], env, ready, logdir)
        for p in procs.values():
            p.wait_ready()
        restock(procs["inventory"], ORDER_PRODUCT, 1_000_000_000)
        restock(procs["monolith"], ORDER_PRODUCT, 1_000_000_000)
        time.sleep(1)  # let start-up garbage settle before the idle reading
        rss_idle = {name: p.rss_mb() for name, p in procs.items()}
        print(
            f"bench: {len(runs)} paths x {args.repeats} rounds x {secs} s, wrk -t2 -c{conns}",
            flush=True,
        )
        for rnd in range(args.repeats):
            order_now = runs if rnd % 2 == 0 else list(reversed(runs))
            for run in order_now:
                proc = procs[run.proc]
                s = wrk(
                    proc.url + run.path,
                    wrk_lua(run.path, run.body),
                    secs,
                    conns,
                    [procs[n] for n in run.cpu],
                )
                samples[run.key].append(s)
                print(
                    f"  round {rnd + 1} {run.label}: {s.rps:,.0f} rps, p95 {s.p95_ms:.2f} ms",
                    flush=True,
                )
        rss_load = {name: p.rss_mb() for name, p in procs.items()}
        summaries = {r.key: summarise(r, samples[r.key]) for r in runs}

        if open_loop:
            print(
                "bench: open loop (vegeta) at 25/50/70/90 % of closed-loop saturation", flush=True
            )
            with tempfile.TemporaryDirectory() as work:

                def attack(arrangement: str, key: str, share: float, rate: int) -> OpenPoint:
                    proc_name = "gateway" if arrangement == "stack" else "monolith"
                    path, body = (
                        ("/api/order", order) if key == "order" else ("/api/product/123", None)
                    )
                    rep = vegeta(
                        procs[proc_name].url + path, body, rate, args.open_seconds, Path(work)
                    )
                    time.sleep(1)  # let queues and the garbage collector settle between rates
                    lat = rep["latencies"]
                    point = OpenPoint(
                        arrangement,
                        key,
                        share,
                        rate,
                        float(rep["throughput"]),
                        float(rep["success"]),
                        lat["50th"] / 1e6,
                        lat["95th"] / 1e6,
                        lat["99th"] / 1e6,
                    )
                    print(
                        f"  {arrangement} {key} @ {rate:,} rps: p95 {point.p95_ms:.2f} ms, "
                        f"success {point.success:.1%}",
                        flush=True,
                    )
                    return point

                for key in ("product", "order"):
                    for arrangement in ("stack", "monolith"):
                        saturation = summaries[f"{key}.{arrangement}"].rps
                        for share in OPEN_LOOP_SHARES:
                            rate = max(1, round(saturation * share))
                            open_points.append(attack(arrangement, key, share, rate))
                        if arrangement == "stack":
                            # The P95 claim at one offered rate for both: the stack's 70 %
                            # point, run before the monolith's own sweep overloads it.
                            ours = next(p for p in open_points[-len(OPEN_LOOP_SHARES) :]
                                        if p.share == 0.70)  # fmt: skip
                            theirs = attack("monolith", key, 0.70, ours.rate)
                            equal_rate[key] = (ours, theirs)
    finally:
        for p in reversed(list(procs.values())):
            p.stop()

    rules_us = python_rules_us()
    S = summaries
    stack_idle = sum(rss_idle[n] for n in stack)
    stack_load = sum(rss_load[n] for n in stack)
    memory_ratio_load = rss_load["monolith"] / stack_load
    memory_ratio_idle = rss_idle["monolith"] / stack_idle

    # -------- seed claims
    claims = []

    def claim(
        cid: str, name: str, seed: str, claimed: float, measured: str, r: Ratio, note: str = ""
    ) -> None:
        claims.append(
            {
                "id": cid,
                "claim": name,
                "seed": seed,
                "claimed": claimed,
                "measured": measured,
                "ratio": r.value,
                "low": r.low,
                "high": r.high,
                "ratio_text": r.text(),
                "verdict": verdict(r.value, claimed),
                "note": note,
            }
        )

    claim(
        "pricing_rps",
        'pricing "15x faster than Python": throughput',
        "333 vs 22 RPS (15x)",
        15.0,
        f"{fmt_rps(S['pricing.rust'].rps)} vs {fmt_rps(S['pricing.python'].rps)} RPS",
        ratio(S["pricing.rust"], S["pricing.python"], "rps"),
    )
    claim(
        "pricing_cpu",
        'pricing "15x faster than Python": time per calculation',
        "3 ms vs 45 ms (15x)",
        15.0,
        f"{S['pricing.rust'].cpu_us_per_req:.0f} µs vs {S['pricing.python'].cpu_us_per_req:.0f} µs "
        "CPU per request",
        ratio(S["pricing.rust"], S["pricing.python"], "cpu_us_per_req", True),
        "server CPU per HTTP calculation",
    )
    rust_ns, rust_when = criterion_rules_ns()
    if rust_ns is not None:
        r = rules_us * 1000 / rust_ns
        claim(
            "pricing_rules",
            'pricing "15x faster than Python": one calculation, rules only',
            "3 ms vs 45 ms (15x)",
            15.0,
            f"{rust_ns:.0f} ns vs {rules_us * 1000:,.0f} ns in-process",
            Ratio(r, r, r),
            f"Rust: criterion median of make bench-rust, {rust_when}; Python: timeit, this run",
        )
    claim(
        "inventory_rps",
        'inventory "8x throughput"',
        "8,000 vs 833 queries/s (8x)",
        8.0,
        f"{fmt_rps(S['inventory.go'].rps)} vs {fmt_rps(S['inventory.python'].rps)} GET/s",
        ratio(S["inventory.go"], S["inventory.python"], "rps"),
    )
    for key, what in (("product", "product read"), ("order", "order")):
        claim(
            f"{key}_rps",
            f'system vs Python monolith "7.1x throughput": {what}',
            "8,500 vs 1,200 RPS (7.1x)",
            7.1,
            f"{fmt_rps(S[key + '.stack'].rps)} vs {fmt_rps(S[key + '.monolith'].rps)} RPS",
            ratio(S[f"{key}.stack"], S[f"{key}.monolith"], "rps"),
        )
        claim(
            f"{key}_p95",
            f'system vs Python monolith "6.7x lower P95": {what}',
            "127 vs 850 ms (6.7x)",
            6.7,
            f"{S[key + '.stack'].p95_ms:.1f} vs {S[key + '.monolith'].p95_ms:.1f} ms",
            ratio(S[f"{key}.stack"], S[f"{key}.monolith"], "p95_ms", True),
            f"{CLOSED}, {conns} connections",
        )
    for key, what in (("product", "product read"), ("order", "order")):
        if key in equal_rate:
            ours, theirs = equal_rate[key]
            r = theirs.p95_ms / ours.p95_ms
            claim(
                f"{key}_p95_open",
                f'system vs Python monolith "6.7x lower P95": {what}, same offered rate',
                "127 vs 850 ms (6.7x)",
                6.7,
                f"{ours.p95_ms:.1f} vs {theirs.p95_ms:.1f} ms at {ours.rate:,} rps",
                Ratio(r, r, r),
                f"{OPEN}, the stack's 70 % point",
            )
    claim(
        "memory",
        "memory: system 290 MB vs monolith 850 MB",
        "290 vs 850 MB (2.9x less)",
        850 / 290,
        f"{stack_load:.0f} vs {rss_load['monolith']:.0f} MB after load "
        f"({stack_idle:.0f} vs {rss_idle['monolith']:.0f} idle)",
        Ratio(
            memory_ratio_load,
            min(memory_ratio_load, memory_ratio_idle),
            max(memory_ratio_load, memory_ratio_idle),
        ),
        "RSS; range spans idle and after load",
    )

    # -------- targets against the bare frameworks
    targets = []

    def target(name: str, r: Ratio, goal: float) -> None:
        targets.append(
            {
                "target": f"{name} >= {goal} x",
                "goal": goal,
                "measured": r.value,
                # Three decimals: a 0.698 must not read as a met 0.70.
                "text": f"{r.value:.3f}x"
                + (f" ({r.low:.2f}-{r.high:.2f})" if r.low != r.high else ""),
                "met": r.value >= goal,
            }
        )

    target(
        "gateway GET /api/product / FastAPI hello",
        ratio(S["product.stack"], S["hello.fastapi"], "rps"),
        0.5,
    )
    target(
        "pricing POST /api/calculate_price / axum hello",
        ratio(S["pricing.rust"], S["hello.axum"], "rps"),
        0.7,
    )
    target(
        "inventory GET /api/inventory / net/http hello",
        ratio(S["inventory.go"], S["hello.go"], "rps"),
        0.7,
    )
    target(
        "gateway POST /api/order / FastAPI hello",
        ratio(S["order.stack"], S["hello.fastapi"], "rps"),
        0.3,
    )
    targets.append(
        {
            "target": "idle RSS pricing + inventory + gateway < 80 MB",
            "goal": 80.0,
            "measured": stack_idle,
            "text": f"{stack_idle:.1f} MB",
            "met": stack_idle < 80.0,
        }
    )

    base_for = {
        "pricing.rust": "hello.axum",
        "prices.rust": "hello.axum",
        "inventory.go": "hello.go",
        "product.stack": "hello.fastapi",
        "order.stack": "hello.fastapi",
        "pricing.python": "hello.fastapi",
        "inventory.python": "hello.fastapi",
        "product.monolith": "hello.fastapi",
        "order.monolith": "hello.fastapi",
    }

    # -------- the report
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started_at))
    machine = f"{socket.gethostname()}/{os.cpu_count()}cores"
    load = f"load average {os.getloadavg()[0]:.1f} at the end"
    lines = [
        "# make bench: latest run",
        "",
        f"{when}, commit {git_commit()}, {machine} ({load}). "
        f"{CLOSED}: `wrk -t2 -c{conns} -d{secs}s`, "
        f"{args.repeats} interleaved rounds, medians (ratio ranges are per round). wrk shares the "
        "cores with the servers, so absolute numbers move with the neighbours: compare ratios.",
        "",
        "## Seed claims",
        "",
        "| seed claim | seed's figure | measured here | measured ratio (range) | holds here? |",
        "|---|---|---|---|---|",
    ]
    for c in claims:
        note = f" ({c['note']})" if c["note"] else ""
        lines.append(
            f"| {c['claim']} | {c['seed']} | {c['measured']}{note} | {c['ratio_text']} | "
            f"{c['verdict']} |"
        )
    lines += [
        "",
        "The seed's absolute figures (3 ms per calculation, 8,500 RPS, 127 ms P95) are not "
        "comparable across machines; only the ratios are compared. Python references: "
        "bench/references (FastAPI + uvicorn, 1 worker, uvloop + httptools, like the gateway). "
        f"One Python price calculation in-process (no HTTP): {rules_us:.1f} µs.",
        "",
        "## Targets (reported, never asserted)",
        "",
        "| target | measured (range) | |",
        "|---|---|---|",
    ]
    lines += [
        f"| {t['target']} | {t['text']} | {'met' if t['met'] else 'missed'} |" for t in targets
    ]
    lines += [
        "",
        f"## Every path ({CLOSED})",
        "",
        "| path | RPS | ratio to baseline | p50 ms | p95 ms | p99 ms | non-2xx | errors | "
        "CPU µs/req |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        s = S[r.key]
        base = base_for.get(r.key)
        rel = f"{ratio(s, S[base], 'rps').text()} {base.split('.')[1]}" if base else "baseline"
        lines.append(
            f"| {s.label} | {fmt_rps(s.rps)} | {rel} | {s.p50_ms:.2f} | {s.p95_ms:.2f} | "
            f"{s.p99_ms:.2f} | {s.non2xx} | {s.errors} | {s.cpu_us_per_req:.0f} |"
        )
    arrangements = [
        ("stack: gateway + pricing + inventory", stack),
        ("Python monolith", ["monolith"]),
        ("Rust pricing", ["pricing"]),
        ("Python pricing", ["py-pricing"]),
        ("Go inventory", ["inventory"]),
        ("Python inventory", ["py-inventory"]),
        ("gateway alone", ["gateway"]),
        ("axum hello", ["axum-hello"]),
        ("net/http hello", ["go-hello"]),
        ("FastAPI hello", ["fastapi-hello"]),
    ]
    memory = [
        {
            "arrangement": a,
            "processes": names,
            "idle_mb": sum(rss_idle[n] for n in names),
            "load_mb": sum(rss_load[n] for n in names),
        }
        for a, names in arrangements
    ]
    lines += [
        "",
        "## Memory (RSS) per arrangement",
        "",
        "| arrangement | idle MB | after load MB |",
        "|---|---|---|",
    ]
    lines += [f"| {m['arrangement']} | {m['idle_mb']:.1f} | {m['load_mb']:.1f} |" for m in memory]
    crossings = {}
    if open_points:
        lines += [
            "",
            f"## {OPEN}: fixed offered rates",
            "",
            f"`vegeta attack -rate=R/s -duration={args.open_seconds}s` per rate; R = share of "
            "the path's closed-loop saturation (its median wrk RPS above).",
            "",
            "| arrangement | path | offered | achieved RPS | success | p50 ms | p95 ms | p99 ms |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for p in open_points:
            lines.append(
                f"| {p.arrangement} | {p.path} | {p.share:.0%} = {p.rate:,} rps | "
                f"{p.achieved_rps:,.0f} | {p.success:.1%} | {p.p50_ms:.2f} | "
                f"{p.p95_ms:.2f} | {p.p99_ms:.2f} |"
            )
        lines += [
            "",
            f"| arrangement | path | offered rate where p95 crosses {P95_LIMIT_MS:.0f} ms |",
            "|---|---|---|",
        ]
        for arrangement in ("stack", "monolith"):
            for key in ("product", "order"):
                pts = [p for p in open_points if (p.arrangement, p.path) == (arrangement, key)]
                crossings[f"{key}.{arrangement}"] = crossing(pts, P95_LIMIT_MS)
                lines.append(f"| {arrangement} | {key} | {crossings[f'{key}.{arrangement}']} |")
    else:
        why = "--no-open-loop" if args.no_open_loop else f"vegeta not found at {VEGETA}"
        lines += ["", f"Open loop skipped ({why})."]
    lines += [
        "",
        "Catalog sizes 10^3/10^5/10^6: bench/scale.py (make bench-scale, run by make bench "
        "after this pass) writes scale.md and scale.svg.",
        "",
        "Charts: claims.svg, targets.svg, memory.svg"
        + (", openloop.svg" if open_points else "")
        + " (bench/charts.py).",
    ]
    text = "\n".join(lines) + "\n"

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(text)
    doc = {
        "when": when,
        "commit": git_commit(),
        "machine": machine,
        "seconds": secs,
        "repeats": args.repeats,
        "connections": conns,
        "claims": claims,
        "targets": targets,
        "memory": memory,
        "rules_python_us": rules_us,
        "paths": {
            k: {
                **{f: v for f, v in asdict(s).items() if f != "rounds"},
                "rounds": [asdict(x) for x in s.rounds],
            }
            for k, s in S.items()
        },
        "open_loop": [asdict(p) for p in open_points],
        "crossings": crossings,
        "equal_rate": {k: [asdict(a), asdict(b)] for k, (a, b) in equal_rate.items()},
    }
    (RESULTS / "latest.json").write_text(json.dumps(doc, indent=1) + "\n")
    append_history(doc)
    print(text)
    print(
        f"bench: written to {RESULTS / 'latest.md'} (and latest.json, history.csv); "
        f"process logs in {logdir}; {time.time() - started_at:.0f} s"
    )
    return 0


def append_history(doc: dict) -> None:
    """One line per figure: date, commit, machine, figure, value."""
    path = RESULTS / "history.csv"
    rows: list[tuple[str, float]] = []
    for key, s in doc["paths"].items():
        for metric in ("rps", "p50_ms", "p95_ms", "p99_ms", "cpu_us_per_req"):
            rows.append((f"{key}.{metric}", s[metric]))
    rows += [(f"claim.{c['id']}.ratio", c["ratio"]) for c in doc["claims"]]
    rows += [(f"target {t['target']}", t["measured"]) for t in doc["targets"]]
    rows += [(f"rss_idle_mb {m['arrangement']}", m["idle_mb"]) for m in doc["memory"]]
    rows += [(f"rss_load_mb {m['arrangement']}", m["load_mb"]) for m in doc["memory"]]
    for p in doc["open_loop"]:
        name = f"open.{p['path']}.{p['arrangement']}.{round(p['share'] * 100)}pct"
        rows += [(f"{name}.rate", p["rate"]), (f"{name}.p95_ms", p["p95_ms"])]
    rows.append(("rules_python_us", doc["rules_python_us"]))
    rows += [(f"settings.{k}", doc[k]) for k in ("seconds", "repeats", "connections")]
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["date", "commit", "machine", "figure", "value"])
        for figure, value in rows:
            w.writerow([doc["when"], doc["commit"], doc["machine"], figure, f"{value:.4g}"])


if __name__ == "__main__":
    sys.exit(main())
