# The dev overlay on a real one-node cluster (make k8s-test starts it: etcd, kube-apiserver,
# controller-manager, scheduler, kubelet on containerd, kube-proxy in iptables mode): every
# pod Ready through its probes, the seed API through the gateway Service, no Redis password
# in any log, a killed gateway pod and a rolling update of pricing without one failed
# request, a Redis pod restart that keeps orders and stock on its PersistentVolumeClaim.
# Ordered: each disruption comes after the checks of the quiet cluster; the log check last
# again, over every pod the disruptions made.
from __future__ import annotations

import os
import pathlib
import time
from typing import Any

from conftest import (
    GATEWAY,
    INVENTORY,
    POD_LOGS,
    Load,
    eventually,
    is_ready,
    kget,
    kubectl,
    pods,
    ready_pods,
    request,
    secret,
)

APPS = ("gateway", "pricing", "inventory", "redis")
# After a pod change the client loop runs on this long, so a late failure is seen too.
SETTLE_S = float(os.environ.get("K8S_SETTLE_S", "4"))


def test_every_pod_ready_through_its_probes() -> None:
    for app in APPS:
        (pod,) = ready_pods(app, 1)
        for c in pod["spec"]["containers"]:
            assert c.get("readinessProbe"), f"{app}/{c['name']} has no readiness probe"
            assert c.get("livenessProbe"), f"{app}/{c['name']} has no liveness probe"
        statuses = pod["status"]["containerStatuses"]
        assert all(s["ready"] and s["started"] for s in statuses), statuses
        restarts = sum(s["restartCount"] for s in statuses)
        print(f"k8s-test: {pod['metadata']['name']} Ready, {restarts} restarts, image "
              f"{statuses[0]['image']}")  # fmt: skip
    pvc = kget("pvc", "data-redis-0")
    assert pvc["status"]["phase"] == "Bound", pvc["status"]
    print(f"k8s-test: pvc data-redis-0 Bound to {pvc['spec']['volumeName']}")
    policies = kget("networkpolicy")["items"]
    print(f"k8s-test: {len(policies)} NetworkPolicies applied, NOT enforced: the bridge CNI "
          "plugin does not implement NetworkPolicy")  # fmt: skip


def test_seed_api_through_the_gateway_service() -> None:
    status, product = request(GATEWAY, "GET", "/api/product/123")
    assert status == 200, product
    assert product["pricing"]["final_price"] == 164.35
    assert product["pricing"]["price_tier"] == "basic"
    status, order = request(GATEWAY, "POST", "/api/order", {"product_id": 123, "quantity": 2})
    assert status == 201, order
    assert order["total_price"] == 328.7 and order["status"] == "confirmed", order
    status, again = request(GATEWAY, "GET", f"/api/order/{order['order_id']}")
    assert status == 200 and again["order_id"] == order["order_id"], again
    status, product = request(GATEWAY, "GET", "/api/product/123")
    assert product["inventory"]["available"] == 221, product


def logs_of_every_pod() -> dict[str, str]:
    """kubectl logs of every container of every pod (and its previous instance, if it
    restarted), plus the kubelet's log files of every pod it ran: also those deleted since."""
    texts: dict[str, str] = {}
    for pod in kget("pods")["items"]:
        name = pod["metadata"]["name"]
        for s in pod["status"].get("containerStatuses", []):
            texts[f"{name}/{s['name']}"] = kubectl("logs", name, "-c", s["name"])
            if s["restartCount"]:
                texts[f"{name}/{s['name']} (previous)"] = kubectl(
                    "logs", name, "-c", s["name"], "--previous", check=False
                )
    if POD_LOGS:
        for path in pathlib.Path(POD_LOGS).rglob("*"):
            if path.is_file():
                texts[str(path)] = path.read_text(errors="replace")
    return texts


def check_no_password_in_logs() -> None:
    password = secret("REDIS_PASSWORD")
    assert len(password) >= 16
    texts = logs_of_every_pod()
    leaked = [where for where, text in texts.items() if password in text]
    assert not leaked, f"the Redis password is in the logs of {leaked}"
    for app in ("gateway", "pricing", "inventory"):
        assert any(w.startswith(app) and t.strip() for w, t in texts.items()), f"no {app} logs"
    size = sum(len(t) for t in texts.values())
    print(f"k8s-test: Redis password absent from {len(texts)} logs ({size} bytes)")


def test_redis_password_never_in_logs() -> None:
    check_no_password_in_logs()


def scale(deployment: str, replicas: int) -> list[dict[str, Any]]:
    kubectl("scale", f"deployment/{deployment}", f"--replicas={replicas}")
    return ready_pods(deployment, replicas)


def test_killed_gateway_pod_is_replaced_without_a_failed_request(order_product: int) -> None:
    before = scale("gateway", 2)
    victim = before[0]["metadata"]["name"]
    with Load(GATEWAY, order_product) as load:
        time.sleep(2)
        t0 = time.monotonic()
        kubectl("delete", "pod", victim, "--wait=false")
        after = ready_pods("gateway", 2, exclude={victim})
        replaced_s = time.monotonic() - t0
        time.sleep(SETTLE_S)
    new = sorted({p["metadata"]["name"] for p in after} - {p["metadata"]["name"] for p in before})
    print(f"k8s-test: gateway pod {victim} deleted, replaced by {new} in {replaced_s:.1f}s; "
          f"client loop: {load.summary()}")  # fmt: skip
    assert len(new) == 1
    assert load.ok > 20
    assert not load.failures, load.failures[:20]


def test_rolling_update_of_pricing_without_a_failed_request(order_product: int) -> None:
    before = {p["metadata"]["name"] for p in scale("pricing", 2)}
    with Load(GATEWAY, order_product) as load:
        time.sleep(2)
        t0 = time.monotonic()
        kubectl("rollout", "restart", "deployment/pricing")
        kubectl("rollout", "status", "deployment/pricing", "--timeout=240s", timeout=260)
        after = {p["metadata"]["name"] for p in ready_pods("pricing", 2)}
        rolled_s = time.monotonic() - t0
        time.sleep(SETTLE_S)
    print(f"k8s-test: pricing rolled {sorted(before)} -> {sorted(after)} in {rolled_s:.1f}s; "
          f"client loop: {load.summary()}")  # fmt: skip
    assert not after & before, "the rollout replaced every pricing pod"
    assert load.ok > 20
    assert not load.failures, load.failures[:20]


def test_redis_restart_keeps_orders_and_stock() -> None:
    status, placed = request(GATEWAY, "POST", "/api/order", {"product_id": 125, "quantity": 3})
    assert status == 201, placed
    status, item = request(INVENTORY, "GET", "/api/inventory/125")
    assert status == 200, item
    before = item["available"]
    (old,) = ready_pods("redis", 1)
    t0 = time.monotonic()
    kubectl("delete", "pod", "redis-0", "--wait=true", timeout=180)

    def restarted() -> bool:
        (pod,) = pods("redis")
        return is_ready(pod) and pod["metadata"]["uid"] != old["metadata"]["uid"]

    eventually(restarted, "redis-0 recreated and Ready", 180)
    redis_s = time.monotonic() - t0

    def reconnected() -> bool:
        status, _ = request(GATEWAY, "POST", "/api/order", {"product_id": 126, "quantity": 1})
        return status == 201

    eventually(reconnected, "the services reconnect to the restarted Redis", 120)
    status, kept = request(GATEWAY, "GET", f"/api/order/{placed['order_id']}")
    assert status == 200, kept
    assert kept["order_id"] == placed["order_id"] and kept["status"] == "confirmed", kept
    status, item = request(INVENTORY, "GET", "/api/inventory/125")
    assert status == 200 and item["available"] == before, (before, item)
    print(f"k8s-test: redis-0 back in {redis_s:.1f}s (new uid, same claim); order "
          f"{placed['order_id']} kept, stock of 125 still {before}")  # fmt: skip


def test_redis_password_never_in_logs_after_the_disruptions() -> None:
    check_no_password_in_logs()
