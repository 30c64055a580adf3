# Every overlay, as rendered, keeps the hardening (policy.py); and the checker is proven to
# notice: each mutation below removes or mistypes one piece and must be reported.
from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from policy import OVERLAYS, Doc, app_of, render, violations


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> list[Doc]:
    return render(request.param)


def test_overlay_keeps_the_hardening(rendered: list[Doc]) -> None:
    assert violations(rendered) == []


def _workload(docs: list[Doc], name: str) -> Doc:
    return next(d for d in docs if d["kind"] in ("Deployment", "StatefulSet") and app_of(d) == name)


def _container(docs: list[Doc], name: str) -> Doc:
    c: Doc = _workload(docs, name)["spec"]["template"]["spec"]["containers"][0]
    return c


def _drop_policy(name: str) -> Callable[[list[Doc]], None]:
    def mutate(docs: list[Doc]) -> None:
        docs[:] = [
            d for d in docs if not (d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == name)
        ]

    return mutate


def _rename_key(obj: Doc, old: str, new: str) -> None:
    obj[new] = obj.pop(old)


def _widen_redis(docs: list[Doc]) -> None:
    p = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "redis")
    p["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {}}]


def _redis_as_deployment(docs: list[Doc]) -> None:
    r = _workload(docs, "redis")
    r["kind"] = "Deployment"
    r["spec"].pop("volumeClaimTemplates")
    r["spec"]["template"]["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]


def _commit_a_secret(docs: list[Doc]) -> None:
    docs.append(
        {
            "kind": "Secret",
            "metadata": {"name": "polyshop-secrets"},
            "stringData": {"ADMIN_TOKEN": "x"},
        }
    )


def _set_arg(name: str, value: str) -> Callable[[list[Doc]], None]:
    def mutate(docs: list[Doc]) -> None:
        args = _container(docs, "redis")["args"]
        args[args.index(name) + 1] = value

    return mutate


def _plain_redis_url(docs: list[Doc]) -> None:
    env = _container(docs, "pricing")["env"]
    next(e for e in env if e["name"] == "REDIS_URL")["value"] = "redis://redis:6379/0"


MUTATIONS: dict[str, tuple[Callable[[list[Doc]], None], str]] = {
    "readiness probe removed": (
        lambda d: _container(d, "pricing").pop("readinessProbe"),
        "pricing/pricing: no readinessProbe",
    ),
    "liveness probe removed": (
        lambda d: _container(d, "redis").pop("livenessProbe"),
        "redis/redis: no livenessProbe",
    ),
    "memory limit removed": (
        lambda d: _container(d, "inventory")["resources"]["limits"].pop("memory"),
        "inventory/inventory: no resources.limits.memory",
    ),
    "cpu request removed": (
        lambda d: _container(d, "gateway")["resources"]["requests"].pop("cpu"),
        "gateway/gateway: no resources.requests.cpu",
    ),
    "field mistyped": (
        lambda d: _rename_key(
            _container(d, "gateway")["securityContext"],
            "readOnlyRootFilesystem",
            "readOnlyRootFileSystem",
        ),
        "gateway/gateway: readOnlyRootFilesystem is not true",
    ),
    "capabilities kept": (
        lambda d: _container(d, "inventory")["securityContext"].pop("capabilities"),
        "inventory/inventory: capabilities do not drop ALL",
    ),
    "seccomp removed": (
        lambda d: _workload(d, "pricing")["spec"]["template"]["spec"]["securityContext"].pop(
            "seccompProfile"
        ),
        "pricing/pricing: seccompProfile is not RuntimeDefault",
    ),
    "root allowed": (
        lambda d: _workload(d, "gateway")["spec"]["template"]["spec"]["securityContext"].pop(
            "runAsNonRoot"
        ),
        "gateway/gateway: runAsNonRoot is not true",
    ),
    "preStop removed": (
        lambda d: _container(d, "gateway").pop("lifecycle"),
        "gateway/gateway: no preStop sleep (endpoints must drain before SIGTERM)",
    ),
    "default deny removed": (
        _drop_policy("default-deny"),
        "no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)",
    ),
    "pricing policy removed": (
        _drop_policy("pricing"),
        "NetworkPolicies block gateway -> pricing:8001",
    ),
    "inventory policy removed": (
        _drop_policy("inventory"),
        "NetworkPolicies block pricing -> inventory:8002",
    ),
    "dns policy removed": (_drop_policy("allow-dns"), "NetworkPolicies block DNS from gateway"),
    "redis open to all": (_widen_redis, "NetworkPolicies let prometheus reach redis:6379"),
    "redis without a volume": (_redis_as_deployment, "redis is a Deployment, not a StatefulSet"),
    "redis evicts": (
        _set_arg("--maxmemory-policy", "allkeys-lru"),
        "redis without --maxmemory-policy noeviction",
    ),
    "redis without aof": (_set_arg("--appendonly", "no"), "redis without --appendonly yes"),
    "a secret committed": (
        _commit_a_secret,
        "Secret polyshop-secrets is committed (users create polyshop-secrets)",
    ),
    "redis url without password": (
        _plain_redis_url,
        "pricing/pricing: REDIS_URL does not carry $(REDIS_PASSWORD)",
    ),
}


@pytest.mark.parametrize("name", MUTATIONS)
def test_the_checker_notices(rendered: list[Doc], name: str) -> None:
    mutate, expected = MUTATIONS[name]
    docs = copy.deepcopy(rendered)
    mutate(docs)
    assert expected in violations(docs)
