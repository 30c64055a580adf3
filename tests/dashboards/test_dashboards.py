# The proof that every dashboard shows data: each panel target of every Grafana dashboard in
# deploy/grafana/dashboards, and each recording rule, is evaluated by a real Prometheus that
# scraped the real stack under a mixed load, and must return at least one finite sample.
from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
import yaml

from conftest import ROOT, Observed

DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))

# What Grafana would put in place of its built-in variables for this test's Prometheus
# (1 s scrapes, queries at the end of a 15 s load): rate windows that hold several samples
# of the load, and a range that covers all of it.
BUILTINS = {
    "__rate_interval": "10s",
    "__interval": "2s",
    "__interval_ms": "2000",
    "__range": "1m",
    "__range_s": "60",
}
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def variables(dashboard: dict[str, Any]) -> dict[str, str]:
    """The dashboard's own variables at their default: "All" becomes the allValue regex."""
    values = dict(BUILTINS)
    for var in dashboard.get("templating", {}).get("list", []):
        current = var.get("current", {}).get("value")
        if current == "$__all" or (isinstance(current, list) and "$__all" in current):
            values[var["name"]] = var["allValue"]
        else:
            values[var["name"]] = str(current)
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    # Like Grafana: known names are replaced, anything else (label_replace's ${1}) is kept.
    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return values.get(name, m.group(0))

    return VARIABLE.sub(repl, expr)


def panel_targets() -> list[Any]:
    cases = []
    for path in DASHBOARDS:
        dash = json.loads(path.read_text())
        values = variables(dash)
        for panel in dash["panels"]:
            for t in panel.get("targets", []):
                cases.append(
                    pytest.param(
                        substitute(t["expr"], values),
                        id=f"{dash['uid']}/{panel['id']}-{panel['title']}/{t['refId']}",
                    )
                )
    return cases


LABEL_VALUES = re.compile(r"^label_values\((.+),\s*(\w+)\)$")


def variable_queries() -> list[Any]:
    """Each query variable's label_values(selector, label) as the PromQL Grafana runs for it."""
    cases = []
    for path in DASHBOARDS:
        dash = json.loads(path.read_text())
        values = variables(dash)
        for var in dash.get("templating", {}).get("list", []):
            if var.get("type") != "query":
                continue
            m = LABEL_VALUES.match(var["query"]["query"])
            assert m, f"{path.name}: ${var['name']}: only label_values(selector, label) is used"
            expr = f"count by ({m.group(2)}) ({substitute(m.group(1), values)})"
            cases.append(pytest.param(expr, id=f"{dash['uid']}/${var['name']}"))
    return cases


def recording_rules() -> list[Any]:
    cases = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    cases.append(pytest.param(rule["record"], id=rule["record"]))
    return cases


# A series selector: a metric name followed by its matchers, or by a range "[".
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\}|(?=\[))")
MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")


def alert_selectors() -> list[Any]:
    """(metric, label) pairs the alerts select on. promtool's tests feed synthetic series,
    so only the live stack can show that these names still exist."""
    pairs: set[tuple[str, str]] = set()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    for name, matchers in SELECTOR.findall(rule["expr"]):
                        pairs.add((name, ""))
                        pairs.update((name, label) for label in MATCHER.findall(matchers))
    return [pytest.param(n, lab, id=f"{n}{{{lab}}}") for n, lab in sorted(pairs)]


def assert_has_data(observed: Observed, expr: str) -> list[dict[str, Any]]:
    assert "$" not in expr.replace("${1}", ""), f"unsubstituted variable in {expr!r}"
    result = observed.query(expr)
    assert result, f"no data for {expr!r}"
    finite = [r for r in result if math.isfinite(float(r["value"][1]))]
    assert finite, f"only NaN/Inf for {expr!r}: {result}"
    return finite


def test_the_load_was_mixed(observed: Observed) -> None:
    # The panels below are only meaningful if the load produced what they show.
    for status in ("200", "201", "409", "422", "404"):
        assert observed.statuses[status] > 0, observed.statuses


def test_every_dashboard_and_rule_is_covered() -> None:
    assert len(DASHBOARDS) == 4
    assert len(panel_targets()) >= 40
    assert len(recording_rules()) >= 7
    assert len(alert_selectors()) >= 10


@pytest.mark.parametrize("expr", panel_targets())
def test_panel_shows_data(observed: Observed, expr: str) -> None:
    assert_has_data(observed, expr)


@pytest.mark.parametrize("expr", variable_queries())
def test_variable_has_options(observed: Observed, expr: str) -> None:
    assert_has_data(observed, expr)


@pytest.mark.parametrize("record", recording_rules())
def test_recording_rule_has_data(observed: Observed, record: str) -> None:
    assert_has_data(observed, record)


@pytest.mark.parametrize(("metric", "label"), alert_selectors())
def test_alert_selects_real_series(observed: Observed, metric: str, label: str) -> None:
    assert_has_data(observed, f'count({metric}{{{label}!=""}})' if label else f"count({metric})")


def test_values_match_the_load(observed: Observed) -> None:
    # Spot checks that the series carry the load, not just exist.
    rates = {
        r["metric"]["job"]: float(r["value"][1])
        for r in assert_has_data(observed, "job:http_server_requests:rate1m")
    }
    assert set(rates) == {"gateway", "pricing", "inventory"}
    assert all(v > 0 for v in rates.values()), rates
    orders = {
        r["metric"]["status"]: float(r["value"][1])
        for r in assert_has_data(observed, 'sum by (status) (polyshop_orders_total{job="gateway"})')
    }
    assert orders["confirmed"] > 0 and orders["rejected"] > 0, orders
    insufficient = assert_has_data(
        observed, 'polyshop_inventory_reservations_total{result="insufficient"}'
    )
    assert float(insufficient[0]["value"][1]) > 0
    # No 5xx on a healthy stack: the ratio is a real 0, not "no data" (its "or ... * 0" arm).
    if not any(s.startswith("5") for s in observed.statuses):
        errors = assert_has_data(observed, 'job:http_server_errors:ratio_rate1m{job="gateway"}')
        assert float(errors[0]["value"][1]) == 0.0


def test_substitution_keeps_label_replace_groups() -> None:
    values = {"job": "gateway", "__rate_interval": "10s"}
    got = substitute('label_replace(rate(x{job="$job"}[$__rate_interval]), "c", "${1}xx")', values)
    assert got == 'label_replace(rate(x{job="gateway"}[10s]), "c", "${1}xx")'


def test_prometheus_config_of_the_repo_names_the_jobs() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {c["job_name"] for c in config["scrape_configs"]}
    assert {"gateway", "pricing", "inventory"} <= jobs
