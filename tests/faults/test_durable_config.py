# The fault suite proves persistence with deploy/redis/redis.conf; this keeps every other way
# of starting Redis on the same settings, so what is proven is what users run.
from __future__ import annotations

import re

import yaml

from conftest import REDIS_CONF, ROOT


def directives() -> dict[str, str]:
    out = {}
    for line in REDIS_CONF.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            out[name] = value.strip().strip('"')
    return out


def test_the_config_is_durable_and_never_evicts() -> None:
    d = directives()
    assert d["appendonly"] == "yes"
    assert d["appendfsync"] == "everysec"
    assert d["maxmemory-policy"] == "noeviction"
    assert d["maxmemory"].endswith("mb")  # noeviction means nothing without a bound


def test_compose_runs_redis_with_the_config_on_a_volume() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    redis = compose["services"]["redis"]
    assert redis["command"] == ["redis-server", "/usr/local/etc/redis/redis.conf"]
    assert "./deploy/redis/redis.conf:/usr/local/etc/redis/redis.conf:ro" in redis["volumes"]
    data = [v for v in redis["volumes"] if v.endswith(":/data")]
    assert data and data[0].split(":")[0] in compose["volumes"]  # a named volume


def test_make_run_redis_uses_the_config() -> None:
    script = (ROOT / "scripts" / "run-stack").read_text()
    assert re.search(r'redis-server "\$PWD/deploy/redis/redis\.conf"', script)
    assert '--dir "$PWD/.run/redis"' in script


def test_kubernetes_passes_the_same_directives() -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy/k8s/base/redis.yaml").read_text()))
    workload = next(d for d in docs if d["kind"] in ("Deployment", "StatefulSet"))
    args = workload["spec"]["template"]["spec"]["containers"][0]["args"]
    given = dict(zip(args[::2], args[1::2], strict=True))
    for name, value in directives().items():
        assert given.get(f"--{name}") == value, f"k8s redis lacks --{name} {value}"
