# The source of polyshop's Grafana dashboards: `generate` writes deploy/grafana/dashboards/*.json
# from the panel lists below, `check` fails when a JSON file is stale or breaks the house
# rules (datasource by uid, targets, units, unique ids). Hand-edited JSON drifts; this does not.
# Every query uses only metrics the services really expose (services/contracts/observability.md
# plus the process_/go_ collectors); tests/dashboards proves each one returns data.
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
DS_UID = "polyshop-prometheus"  # must equal provisioning/datasources/prometheus.yml
DS = {"type": "prometheus", "uid": DS_UID}
JOBS = "gateway|pricing|inventory"
RI = "$__rate_interval"
REQ = "http_server_request_duration_seconds"
CLI = "http_client_request_duration_seconds"

Panel = dict[str, Any]


def target(expr: str, legend: str = "", ref: str = "A") -> dict[str, Any]:
    return {"refId": ref, "datasource": DS, "expr": expr, "legendFormat": legend or "__auto"}


def panel(
    kind: str,
    title: str,
    unit: str,
    targets: list[tuple[str, str]],
    *,
    w: int = 12,
    h: int = 8,
    description: str = "",
    mappings: list[dict[str, Any]] | None = None,
    thresholds: list[tuple[float | None, str]] | None = None,
    decimals: int | None = None,
) -> Panel:
    refs = "ABCDEFGH"
    defaults: dict[str, Any] = {"unit": unit}
    if mappings:
        defaults["mappings"] = mappings
    if thresholds:
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"value": v, "color": c} for v, c in thresholds],
        }
    if decimals is not None:
        defaults["decimals"] = decimals
    if kind == "timeseries":
        defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10}
    p: Panel = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"w": w, "h": h},
        "targets": [target(e, leg, refs[i]) for i, (e, leg) in enumerate(targets)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {},
    }
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}
    elif kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom"}}
    elif kind == "bargauge":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "orientation": "horizontal"}
    return p


def ratio(selector: str, bad: str, by: str) -> str:
    """Share of requests whose status matches `bad`, 0 (not "no data") when none does."""
    grp = f"sum by ({by}) " if by else "sum"
    num = f'{grp}(rate({REQ}_count{{{selector}, http_response_status_code=~"{bad}"}}[{RI}]))'
    den = f"{grp}(rate({REQ}_count{{{selector}}}[{RI}]))"
    return f"({num} or {den} * 0) / {den}"


def quantile(q: str, metric: str, selector: str, by: str = "") -> str:
    # le is summed per job only: Python writes le="1.0" where Go and Rust write le="1".
    keys = ", ".join(k for k in (by, "le") if k)
    series = f"{metric}_bucket{{{selector}}}" if selector else f"{metric}_bucket"
    return f"histogram_quantile({q}, sum by ({keys}) (rate({series}[{RI}])))"


BREAKER_MAP = [
    {
        "type": "value",
        "options": {
            "0": {"text": "closed", "color": "green"},
            "1": {"text": "half-open", "color": "yellow"},
            "2": {"text": "open", "color": "red"},
        },
    }
]
UP_MAP = [
    {
        "type": "value",
        "options": {"0": {"text": "down", "color": "red"}, "1": {"text": "up", "color": "green"}},
    }
]


def query_var(
    name: str, query: str, current: str, *, all_value: str = "", label: str = ""
) -> dict[str, Any]:
    """A label_values variable; with all_value it is multi-select with an "All" option."""
    multi = bool(all_value)
    v: dict[str, Any] = {
        "name": name,
        "label": label or name,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-var"},
        "refresh": 2,
        "sort": 1,
        "includeAll": multi,
        "multi": multi,
        "current": {"text": current, "value": current},
        "options": [],
    }
    if multi:
        v["allValue"] = all_value
        v["current"] = {"text": "All", "value": "$__all"}
    return v


def overview() -> tuple[str, str, list[Panel], list[dict[str, Any]]]:
    gw = 'job="gateway"'
    panels = [
        panel(
            "stat", "Services up", "none",
            [(f'sum(up{{job=~"{JOBS}"}})', "up")],
            w=4, h=4, thresholds=[(None, "red"), (3, "green")],
            description="Scrape targets answering, of 3 (gateway, pricing, inventory).",
        ),
        panel(
            "stat", "Gateway requests/s", "reqps",
            [(f"sum(rate({REQ}_count{{{gw}}}[{RI}]))", "rps")], w=5, h=4,
        ),
        panel(
            "stat", "Gateway 5xx ratio", "percentunit",
            [(ratio(gw, "5..", ""), "5xx")], w=5, h=4,
            thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")],
        ),
        panel(
            "stat", "Gateway p99 latency", "s",
            [(quantile("0.99", REQ, gw), "p99")], w=5, h=4,
            thresholds=[(None, "green"), (0.25, "orange"), (0.5, "red")],
        ),
        panel(
            "stat", "Confirmed orders/min", "opm",
            [(f'sum(rate(polyshop_orders_total{{status="confirmed"}}[{RI}])) * 60', "orders")],
            w=5, h=4,
        ),
        panel(
            "timeseries", "Requests/s by service", "reqps",
            [("job:http_server_requests:rate1m", "{{job}}")],
            description="Recording rule job:http_server_requests:rate1m.",
        ),
        panel(
            "timeseries", "5xx ratio by service", "percentunit",
            [("job:http_server_errors:ratio_rate1m", "{{job}}")],
            description="Recording rule job:http_server_errors:ratio_rate1m.",
        ),
        panel(
            "timeseries", "p99 latency by service", "s",
            [("job:http_server_request_duration_seconds:p99_1m", "{{job}}")],
            description="Recording rule job:http_server_request_duration_seconds:p99_1m.",
        ),
        panel(
            "timeseries", "Upstream calls/s", "reqps",
            [(
                f"sum by (job, server_address) (rate({CLI}_count[{RI}]))",
                "{{job}} -> {{server_address}}",
            )],
        ),
        panel(
            "stat", "Targets", "none",
            [(f'up{{job=~"{JOBS}"}}', "{{job}}")], w=12, h=5, mappings=UP_MAP,
            thresholds=[(None, "red"), (1, "green")],
        ),
        panel(
            "stat", "Circuit breakers", "none",
            [(
                "max by (job, upstream) (polyshop_circuit_breaker_state)",
                "{{job}} -> {{upstream}}",
            )],
            w=12, h=5, mappings=BREAKER_MAP,
            thresholds=[(None, "green"), (1, "yellow"), (2, "red")],
        ),
    ]  # fmt: skip
    return "polyshop-overview", "polyshop / System Overview", panels, []


def service_health() -> tuple[str, str, list[Panel], list[dict[str, Any]]]:
    sel = 'job="$job", instance=~"$instance"'
    panels = [
        panel(
            "stat", "Up", "none", [(f"up{{{sel}}}", "{{instance}}")], w=6, h=4,
            mappings=UP_MAP, thresholds=[(None, "red"), (1, "green")],
        ),
        panel(
            "stat", "Requests/s", "reqps", [(f"sum(rate({REQ}_count{{{sel}}}[{RI}]))", "rps")],
            w=6, h=4,
        ),
        panel(
            "stat", "5xx ratio", "percentunit", [(ratio(sel, "5..", ""), "5xx")], w=6, h=4,
            thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")],
        ),
        panel(
            "stat", "p99 latency", "s", [(quantile("0.99", REQ, sel), "p99")], w=6, h=4,
        ),
        panel(
            "timeseries", "Requests/s by route", "reqps",
            [(f"sum by (http_route) (rate({REQ}_count{{{sel}}}[{RI}]))", "{{http_route}}")],
        ),
        panel(
            "timeseries", "Responses/s by status class", "reqps",
            [(
                f'sum by (class) (label_replace(rate({REQ}_count{{{sel}}}[{RI}]), '
                f'"class", "${{1}}xx", "http_response_status_code", "(.).."))',
                "{{class}}",
            )],
            description="4xx are the client's (422 invalid, 409 no stock); 5xx are ours.",
        ),
        panel(
            "timeseries", "Error ratios", "percentunit",
            [(ratio(sel, "5..", ""), "5xx"), (ratio(sel, "4..", ""), "4xx")],
        ),
        panel(
            "timeseries", "Latency quantiles (all routes)", "s",
            [
                (quantile("0.50", REQ, sel), "p50"),
                (quantile("0.95", REQ, sel), "p95"),
                (quantile("0.99", REQ, sel), "p99"),
            ],
        ),
        panel(
            "timeseries", "p99 latency by route", "s",
            [(quantile("0.99", REQ, sel, "http_route"), "{{http_route}}")],
        ),
        panel(
            "timeseries", "p95 latency by route", "s",
            [(quantile("0.95", REQ, sel, "http_route"), "{{http_route}}")],
        ),
        panel(
            "timeseries", "Upstream calls/s by target and status", "reqps",
            [(
                "sum by (server_address, http_response_status_code)"
                f" (rate({CLI}_count{{{sel}}}[{RI}]))",
                "{{server_address}} {{http_response_status_code}}",
            )],
            description="Calls this service makes (gateway and pricing); status 0 = no answer.",
        ),
        panel(
            "timeseries", "Upstream p99 by target", "s",
            [(quantile("0.99", CLI, sel, "server_address"), "{{server_address}}")],
        ),
        panel(
            "timeseries", "Circuit breaker state", "none",
            [(f"max by (upstream) (polyshop_circuit_breaker_state{{{sel}}})", "{{upstream}}")],
            mappings=BREAKER_MAP, description="0 closed, 1 half-open, 2 open.",
            thresholds=[(None, "green"), (1, "yellow"), (2, "red")], w=24,
        ),
    ]  # fmt: skip
    variables = [
        query_var("job", f'label_values(up{{job=~"{JOBS}"}}, job)', "gateway", label="service"),
        query_var("instance", 'label_values(up{job="$job"}, instance)', "", all_value=".*"),
    ]
    return "polyshop-service-health", "polyshop / Service Health", panels, variables


def resources() -> tuple[str, str, list[Panel], list[dict[str, Any]]]:
    sel = 'job=~"$job"'
    panels = [
        panel(
            "timeseries", "Resident memory", "bytes",
            [(f"process_resident_memory_bytes{{{sel}}}", "{{job}} {{instance}}")],
        ),
        panel(
            "timeseries", "CPU (cores)", "short",
            [(f"rate(process_cpu_seconds_total{{{sel}}}[{RI}])", "{{job}} {{instance}}")],
            description="1 = one core busy.",
        ),
        panel(
            "timeseries", "CPU time per request", "s",
            [(
                f"sum by (job, instance) (rate(process_cpu_seconds_total{{{sel}}}[{RI}]))"
                f" / sum by (job, instance) (rate({REQ}_count{{{sel}}}[{RI}]))",
                "{{job}}",
            )],
            description="What one API request costs each process; compare with bench/ numbers.",
        ),
        panel(
            "timeseries", "Open file descriptors", "none",
            [(f"process_open_fds{{{sel}}}", "{{job}} {{instance}}")],
        ),
        panel(
            "timeseries", "File descriptor usage", "percentunit",
            [(f"process_open_fds{{{sel}}} / process_max_fds{{{sel}}}", "{{job}} {{instance}}")],
        ),
        panel(
            "timeseries", "Process uptime", "s",
            [(f"time() - process_start_time_seconds{{{sel}}}", "{{job}} {{instance}}")],
        ),
        panel(
            "timeseries", "Inventory goroutines", "none",
            [('go_goroutines{job="inventory"}', "{{instance}}")],
        ),
        panel(
            "timeseries", "Inventory Go heap in use", "bytes",
            [('go_memstats_heap_alloc_bytes{job="inventory"}', "{{instance}}")],
        ),
        panel(
            "timeseries", "Pricing OS threads", "none",
            [('process_threads{job="pricing"}', "{{instance}}")],
        ),
        panel(
            "timeseries", "Scrape duration", "s",
            [(f"scrape_duration_seconds{{{sel}}}", "{{job}} {{instance}}")],
            description="How long Prometheus takes to read /metrics.",
        ),
        # Redis, through redis_exporter (job "redis"): the one store every replica shares.
        panel(
            "timeseries", "Redis memory", "bytes",
            [('redis_memory_used_bytes{job="redis"}', "used"),
             ('redis_memory_max_bytes{job="redis"} > 0', "maxmemory")],
            description="noeviction: at maxmemory every write fails (alert at 80 %).",
        ),
        panel(
            "timeseries", "Redis commands per second", "ops",
            [(f'rate(redis_commands_processed_total{{job="redis"}}[{RI}])', "{{instance}}")],
        ),
        panel(
            "timeseries", "Redis connected clients", "none",
            [('redis_connected_clients{job="redis"}', "{{instance}}")],
            description="Each service keeps a pool; a climb means leaked or stuck connections.",
        ),
        panel(
            "timeseries", "Redis keys", "none",
            [('sum by (db) (redis_db_keys{job="redis"})', "{{db}}")],
            description="Stock, holds, orders, idempotency keys and the price book.",
        ),
    ]  # fmt: skip
    variables = [
        query_var(
            "job", f'label_values(up{{job=~"{JOBS}"}}, job)', "", all_value=JOBS, label="service"
        )
    ]
    return "polyshop-resources", "polyshop / Resource Usage", panels, variables


def business() -> tuple[str, str, list[Panel], list[dict[str, Any]]]:
    orders = "polyshop_orders_total"
    res = "polyshop_inventory_reservations_total"
    panels = [
        panel(
            "stat", "Confirmed orders (range)", "none",
            [(f'sum(increase({orders}{{status="confirmed"}}[$__range]))', "orders")],
            w=6, h=4, decimals=0,
        ),
        panel(
            "stat", "Revenue (range)", "currencyUSD",
            [("sum(increase(polyshop_order_revenue_total[$__range]))", "revenue")], w=6, h=4,
        ),
        panel(
            "stat", "Average order value", "currencyUSD",
            [(
                f"sum(rate(polyshop_order_revenue_total[{RI}]))"
                f' / sum(rate({orders}{{status="confirmed"}}[{RI}]))',
                "AOV",
            )],
            w=6, h=4,
        ),
        panel(
            "stat", "Order success ratio", "percentunit",
            [(
                f'sum(rate({orders}{{status="confirmed"}}[{RI}])) / sum(rate({orders}[{RI}]))',
                "confirmed",
            )],
            w=6, h=4, description="Confirmed over all orders (rejected 4xx and failed 5xx).",
        ),
        panel(
            "timeseries", "Orders/min by status", "opm",
            [(f"sum by (status) (rate({orders}[{RI}])) * 60", "{{status}}")],
            description="confirmed; rejected = 4xx (bad input, no stock); failed = 5xx.",
        ),
        panel(
            "timeseries", "Revenue/min", "currencyUSD",
            [(f"sum(rate(polyshop_order_revenue_total[{RI}])) * 60", "USD/min")],
        ),
        panel(
            "timeseries", "Reservations/s by result", "ops",
            [(f"sum by (result) (rate({res}[{RI}]))", "{{result}}")],
        ),
        panel(
            "timeseries", "Reservations refused for lack of stock", "percentunit",
            [(
                f'sum(rate({res}{{result="insufficient"}}[{RI}]))'
                f' / sum(rate({res}{{result=~"reserved|insufficient"}}[{RI}]))',
                "insufficient",
            )],
            description="PolyshopReservationsFailing fires above 25 % for 10 minutes.",
        ),
        panel(
            "bargauge", "Available units by warehouse", "none",
            [("sum by (warehouse) (polyshop_inventory_available_units)", "{{warehouse}}")],
        ),
        panel(
            "bargauge", "Products held by inventory shard", "none",
            # max, not sum: replicas of one shard share its store and report the same count.
            [("max by (shard) (polyshop_inventory_products_held)", "{{shard}}")],
            description="How the catalog is spread over the shards (unsharded: one bar).",
        ),
        panel(
            "timeseries", "Prices calculated/s by tier", "ops",
            [(f"sum by (tier) (rate(polyshop_pricing_calculations_total[{RI}]))", "{{tier}}")],
        ),
        panel(
            "timeseries", "Price calculation time", "s",
            [
                (quantile("0.50", "polyshop_pricing_calculation_duration_seconds", ""), "p50"),
                (quantile("0.99", "polyshop_pricing_calculation_duration_seconds", ""), "p99"),
            ],
            w=24,
        ),
    ]  # fmt: skip
    return "polyshop-business", "polyshop / Business Metrics", panels, []


BUILDERS = {
    "system-overview.json": overview,
    "service-health.json": service_health,
    "resource-usage.json": resources,
    "business-metrics.json": business,
}


def layout(panels: list[Panel]) -> list[Panel]:
    """Ids and grid positions: left to right, wrapping at Grafana's 24 columns."""
    x = y = row_h = 0
    for i, p in enumerate(panels, start=1):
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        p["id"] = i
        p["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
        x, row_h = x + w, max(row_h, h)
    return panels


def build(uid: str, title: str, panels: list[Panel], variables: list[dict[str, Any]]) -> Any:
    return {
        "uid": uid,
        "title": title,
        "tags": ["polyshop"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "5s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-15m", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [
            {"title": "polyshop", "type": "dashboards", "tags": ["polyshop"], "asDropdown": True}
        ],
        "panels": layout(panels),
    }


def render() -> dict[str, str]:
    return {
        name: json.dumps(build(*fn()), indent=2, sort_keys=True) + "\n"
        for name, fn in BUILDERS.items()
    }


def problems(name: str, dash: Any) -> list[str]:
    """House rules every dashboard file must keep, also when edited by hand."""
    out: list[str] = []
    if not dash.get("uid") or not dash.get("title"):
        out.append(f"{name}: dashboard needs a uid and a title")
    ids: set[int] = set()
    for p in dash.get("panels", []):
        where = f"{name}: panel {p.get('id')} {p.get('title')!r}"
        if p.get("id") in ids:
            out.append(f"{where}: duplicate panel id")
        ids.add(p.get("id"))
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != DS_UID:
            out.append(f"{where}: datasource must be uid {DS_UID}")
        targets = p.get("targets") or []
        if not targets:
            out.append(f"{where}: no targets")
        for t in targets:
            if not str(t.get("expr", "")).strip():
                out.append(f"{where}: target {t.get('refId')} has no expr")
            if t.get("datasource", {}).get("uid") != DS_UID:
                out.append(f"{where}: target {t.get('refId')} datasource must be uid {DS_UID}")
        if not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            out.append(f"{where}: no unit")
    return out


def check() -> int:
    errors: list[str] = []
    uids: dict[str, str] = {}
    wanted = render()
    for path in sorted(OUT.glob("*.json")):
        text = path.read_text()
        try:
            dash = json.loads(text)
        except ValueError as exc:
            errors.append(f"{path.name}: not JSON: {exc}")
            continue
        errors += problems(path.name, dash)
        if dash.get("uid") in uids:
            errors.append(f"{path.name}: uid {dash['uid']} also used by {uids[dash['uid']]}")
        uids[dash.get("uid")] = path.name
        if path.name in wanted and wanted[path.name] != text:
            errors.append(f"{path.name}: stale; run python3 deploy/grafana/dashboards.py generate")
    for name in wanted:
        if not (OUT / name).exists():
            errors.append(f"{name}: missing; run python3 deploy/grafana/dashboards.py generate")
    for err in errors:
        print(err, file=sys.stderr)
    if not errors:
        panels = sum(len(json.loads(t)["panels"]) for t in wanted.values())
        print(f"dashboards: {len(wanted)} dashboards, {panels} panels, all fresh and well-formed")
    return 1 if errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["generate", "check"])
    args = parser.parse_args()
    if args.command == "check":
        return check()
    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
    return check()


if __name__ == "__main__":
    sys.exit(main())
