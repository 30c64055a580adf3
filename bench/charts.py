#!/usr/bin/env python3
"""SVG charts of the latest make bench run (bench/results/latest.json -> bench/results/*.svg).

Runs in the bench virtualenv (.cache/bench-venv, bench/requirements.txt: matplotlib), never
in the gateway's .venv. Charts: claims.svg (each seed claim vs our measured ratio),
targets.svg (our targets vs the bare frameworks), memory.svg (RSS per arrangement) and,
when the open-loop pass ran, openloop.svg (latency vs offered rate).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # after the backend is chosen

RESULTS = Path(__file__).resolve().parent / "results"
SEED, OURS, MISS = "#9e9e9e", "#1f77b4", "#d62728"
plt.rcParams.update({"svg.hashsalt": "polyshop", "font.size": 9})


def subtitle(doc: dict[str, Any]) -> str:
    return (
        f"{doc['when']}, {doc['commit']}, {doc['machine']}\nclosed loop wrk -t2 "
        f"-c{doc['connections']} -d{doc['seconds']}s, median of {doc['repeats']} rounds"
    )


def claims_chart(doc: dict[str, Any], out: Path) -> None:
    claims = doc["claims"]
    fig, ax = plt.subplots(figsize=(11, 0.55 * len(claims) + 1.6))
    ys = range(len(claims))
    seed = [c["claimed"] for c in claims]
    ours = [c["ratio"] for c in claims]
    err = [
        [max(c["ratio"] - c["low"], 0) for c in claims],
        [max(c["high"] - c["ratio"], 0) for c in claims],
    ]
    ax.barh([y + 0.2 for y in ys], seed, height=0.38, color=SEED, label="seed document's claim")
    colours = [OURS if c["verdict"] == "holds" else MISS for c in claims]
    ax.barh(
        [y - 0.2 for y in ys],
        ours,
        height=0.38,
        color=colours,
        xerr=err,
        capsize=2,
        label="measured here (red: the claim does not fully hold)",
    )
    for y, c in zip(ys, claims, strict=True):
        at = max(c["ratio"], c["high"]) * 1.12
        ax.text(at, y - 0.2, f"{c['ratio']:.2f}x", va="center", fontsize=8)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(list(ys), [c["claim"] for c in claims])
    ax.invert_yaxis()
    ax.set_xlabel("polyglot side's advantage, x (log; < 1: the Python side wins)")
    ax.set_title("Seed claims vs this machine\n" + subtitle(doc), fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def targets_chart(doc: dict[str, Any], out: Path) -> None:
    ratios = [t for t in doc["targets"] if "RSS" not in t["target"]]
    rss = [t for t in doc["targets"] if "RSS" in t["target"]]
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [len(ratios), 1.3]}
    )
    xs = range(len(ratios))
    ax.bar(
        list(xs),
        [t["measured"] for t in ratios],
        color=[OURS if t["met"] else MISS for t in ratios],
        label="measured",
    )
    ax.scatter(
        list(xs), [t["goal"] for t in ratios], marker="_", s=900, color="black", label="goal"
    )
    ax.set_xticks(
        list(xs), [t["target"].split(" >=")[0].replace(" / ", "\n/ ") for t in ratios], fontsize=7
    )
    ax.set_ylabel("RPS / bare framework's hello RPS")
    ax.legend(fontsize=8)
    ax.set_title("Targets vs bare frameworks (red: missed)", fontsize=9)
    for t in rss:
        ax2.bar([0], [t["measured"]], color=OURS if t["met"] else MISS)
        ax2.axhline(t["goal"], color="black", linewidth=1)
        ax2.text(0, t["goal"] * 1.02, f"< {t['goal']:.0f} MB", ha="center", fontsize=8)
    ax2.set_xticks([0], ["idle RSS\npricing+inventory\n+gateway"], fontsize=7)
    ax2.set_ylabel("MB")
    fig.suptitle(subtitle(doc), fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def memory_chart(doc: dict[str, Any], out: Path) -> None:
    rows = doc["memory"]
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(rows) + 1.4))
    ys = range(len(rows))
    ax.barh([y - 0.2 for y in ys], [m["idle_mb"] for m in rows], height=0.38, color=SEED)
    ax.barh([y + 0.2 for y in ys], [m["load_mb"] for m in rows], height=0.38, color=OURS)
    for y, m in zip(ys, rows, strict=True):
        ax.text(m["load_mb"] + 1, y + 0.2, f"{m['load_mb']:.0f}", va="center", fontsize=7)
    ax.set_yticks(list(ys), [m["arrangement"] for m in rows])
    ax.invert_yaxis()
    ax.set_xlabel("RSS, MB (grey: idle, blue: after the closed-loop load)")
    ax.set_title(
        "Memory per arrangement (seed claim: 290 MB system vs 850 MB monolith)", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def openloop_chart(doc: dict[str, Any], out: Path) -> None:
    points = doc["open_loop"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, path in zip(axes, ("product", "order"), strict=True):
        for arrangement, colour in (("stack", OURS), ("monolith", "#ff7f0e")):
            pts = sorted(
                (p for p in points if (p["arrangement"], p["path"]) == (arrangement, path)),
                key=lambda p: p["rate"],
            )
            rates = [p["rate"] for p in pts]
            for metric, style in (("p50_ms", ":"), ("p95_ms", "-"), ("p99_ms", "--")):
                ax.plot(
                    rates,
                    [p[metric] for p in pts],
                    style,
                    marker="o",
                    markersize=3,
                    color=colour,
                    label=f"{arrangement} {metric[:3]}",
                )
        ax.axhline(20, color="black", linewidth=0.8)
        ax.text(ax.get_xlim()[0], 21, " 20 ms", fontsize=7)
        ax.set_yscale("log")
        ax.set_xlabel("offered rate, requests/s (open loop, vegeta)")
        ax.set_ylabel("latency, ms")
        ax.set_title(f"{'GET /api/product/123' if path == 'product' else 'POST /api/order'}")
        ax.legend(fontsize=7)
    fig.suptitle(
        "Open loop: latency vs offered rate (25/50/70/90 % of each arrangement's saturation)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def scale_chart(doc: dict[str, Any], out: Path) -> None:
    """Startup to ready and idle RSS per service against catalog size (bench/scale.py)."""
    rows = doc["rows"]
    services = ("inventory", "pricing", "gateway")
    colours = dict(zip(services, ("#2ca02c", "#ff7f0e", OURS), strict=True))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for mode, style in (("memory", "-"), ("redis", "--")):
        mine = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["size"])
        if not mine:
            continue
        sizes = [r["size"] for r in mine]
        for svc in services:
            label = f"{svc}, {mode}"
            axes[0].plot(
                sizes,
                [r["ready_s"][svc] for r in mine],
                style,
                marker="o",
                color=colours[svc],
                label=label,
            )
            axes[1].plot(
                sizes,
                [r["rss_mb"][svc] for r in mine],
                style,
                marker="o",
                color=colours[svc],
                label=label,
            )
        axes[2].plot(
            sizes,
            [r["product"]["p99_ms"] for r in mine],
            style,
            marker="o",
            color=OURS,
            label=f"product GET p99, {mode}",
        )
        axes[2].plot(
            sizes,
            [r["inventory_get"]["p99_ms"] for r in mine],
            style,
            marker="o",
            color="#2ca02c",
            label=f"inventory GET p99, {mode}",
        )
    for ax, title, unit in (
        (axes[0], "startup to ready (Redis: incl. seeding)", "s"),
        (axes[1], "idle RSS per service", "MB"),
        (axes[2], "GET latency p99, closed loop, uniform ids", "ms"),
    ):
        ax.set_xscale("log")
        ax.set_xlabel("products in the catalog")
        ax.set_ylabel(unit)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=6)
    fig.suptitle(f"Cost of growth: {doc['when']}, {doc['commit']}, {doc['machine']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main() -> int:
    scale = RESULTS / "scale.json"
    if scale.exists():
        scale_chart(json.loads(scale.read_text()), RESULTS / "scale.svg")
        print(f"charts: scale.svg in {RESULTS}")
    latest = RESULTS / "latest.json"
    if not latest.exists():  # make bench-scale on its own
        return 0
    doc = json.loads(latest.read_text())
    made = []
    for name, draw in (
        ("claims.svg", claims_chart),
        ("targets.svg", targets_chart),
        ("memory.svg", memory_chart),
    ):
        draw(doc, RESULTS / name)
        made.append(name)
    if doc["open_loop"]:
        openloop_chart(doc, RESULTS / "openloop.svg")
        made.append("openloop.svg")
    print(f"charts: {', '.join(made)} in {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
