# The hardening every rendered overlay must keep, as one function: violations(docs) lists
# what is missing, in words a reviewer can act on. NetworkPolicies are checked by what they
# allow, not by how they are written: a small evaluator decides, for every pair of pods and
# port, whether traffic would pass an enforcing CNI, and the answer must be exactly the
# design's edges.
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from shutil import which
from typing import Any

import yaml

# tests/harness.py holds the label-selector rule tests/k8s uses too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import label_selector_matches as selects

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "prod")
SERVICES = {"gateway": 8000, "pricing": 8001, "inventory": 8002}
REDIS_PORT = 6379
SECRET = "polyshop-secrets"
NAME = "app.kubernetes.io/name"

Doc = dict[str, Any]


def render(overlay: str) -> list[Doc]:
    """The overlay as kubectl would apply it (kustomize if installed, else kubectl's own)."""
    path = ROOT / "deploy/k8s/overlays" / overlay
    cmd = (
        ["kustomize", "build", str(path)]
        if which("kustomize")
        else ["kubectl", "kustomize", str(path)]
    )
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@dataclass(frozen=True)
class Pod:
    """A pod as NetworkPolicies see it: its labels and its namespace's labels."""

    name: str
    namespace: str
    labels: dict[str, str]

    @property
    def ns_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


def workloads(docs: Iterable[Doc]) -> Iterator[Doc]:
    return (d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet"))


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _peer_matches(peer: Doc, policy_ns: str, pod: Pod) -> bool:
    if "ipBlock" in peer:
        return True  # an address range: treat as matching anything (too wide to prove narrow)
    ns_sel = peer.get("namespaceSelector")
    pod_sel = peer.get("podSelector")
    in_ns = selects(ns_sel, pod.ns_labels) if ns_sel is not None else pod.namespace == policy_ns
    return in_ns and (pod_sel is None or selects(pod_sel, pod.labels))


def _port_matches(rule: Doc, port: int) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    return any(p.get("port") in (None, port) and p.get("protocol", "TCP") == "TCP" for p in ports)


def _direction_allows(
    policies: list[Doc], subject: Pod, peer: Pod, port: int, kind: str, peers_key: str
) -> bool:
    """Whether the policies selecting `subject` let this traffic pass in one direction."""
    governing = [
        p
        for p in policies
        if p["metadata"]["namespace"] == subject.namespace
        and selects(p["spec"].get("podSelector"), subject.labels)
        and kind in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not governing:
        return True  # no policy selects the pod in this direction: everything passes
    rules_key = kind.lower()
    for p in governing:
        for rule in p["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(
                _peer_matches(x, p["metadata"]["namespace"], peer) for x in peers
            )
            if peer_ok and _port_matches(rule, port):
                return True
    return False


def allowed(policies: list[Doc], src: Pod, dst: Pod, port: int) -> bool:
    egress = _direction_allows(policies, src, dst, port, "Egress", "to")
    ingress = _direction_allows(policies, dst, src, port, "Ingress", "from")
    return egress and ingress


def app_of(workload: Doc) -> str:
    """The service a workload runs: its pods' app label (prod's inventory StatefulSet is
    named inv, after its shards), else its name."""
    labels = _get(workload, "spec", "template", "metadata", "labels") or {}
    return str(labels.get(NAME) or workload["metadata"]["name"])


def _pod(docs: list[Doc], app: str) -> Pod | None:
    for w in workloads(docs):
        labels = _get(w, "spec", "template", "metadata", "labels") or {}
        if labels.get(NAME) == app:
            return Pod(app, w["metadata"]["namespace"], labels)
    return None


def network_violations(docs: list[Doc]) -> list[str]:
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    ns = next((d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"), "polyshop")
    out = []
    if not any(
        _get(p, "spec", "podSelector") == {}
        and set(_get(p, "spec", "policyTypes") or []) == {"Ingress", "Egress"}
        and not _get(p, "spec", "ingress")
        and not _get(p, "spec", "egress")
        for p in policies
    ):
        out.append("no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)")
    pods = {app: _pod(docs, app) for app in (*SERVICES, "redis")}
    ours = [p for p in pods.values() if p is not None]
    prometheus = Pod("prometheus", "monitoring", {NAME: "prometheus"})
    ingress = Pod("ingress", "ingress-nginx", {NAME: "ingress-nginx"})
    stranger = Pod("stranger", ns, {NAME: "stranger"})  # any other pod in the namespace
    want = {("ingress", "gateway", 8000)}
    want |= {("prometheus", app, port) for app, port in SERVICES.items()}
    want |= {("gateway", "pricing", 8001), ("gateway", "inventory", 8002)}
    want |= {("pricing", "inventory", 8002)}
    want |= {(app, "redis", REDIS_PORT) for app in SERVICES}
    ports = {**SERVICES, "redis": REDIS_PORT}
    for src in [*ours, prometheus, ingress, stranger]:
        for dst in ours:
            if src.name == dst.name:
                continue
            port = ports[dst.name]
            got = allowed(policies, src, dst, port)
            if got and (src.name, dst.name, port) not in want:
                out.append(f"NetworkPolicies let {src.name} reach {dst.name}:{port}")
            if not got and (src.name, dst.name, port) in want:
                out.append(f"NetworkPolicies block {src.name} -> {dst.name}:{port}")
    dns = Pod("kube-dns", "kube-system", {"k8s-app": "kube-dns"})
    for pod in ours:
        if pod.name != "redis" and not _direction_allows(policies, pod, dns, 53, "Egress", "to"):
            out.append(f"NetworkPolicies block DNS from {pod.name}")
    return out


def _container_violations(where: str, c: Doc, service: bool) -> list[str]:
    out = []
    for kind in ("requests", "limits"):
        for res in ("cpu", "memory"):
            if not _get(c, "resources", kind, res):
                out.append(f"{where}: no resources.{kind}.{res}")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if not c.get(probe):
            out.append(f"{where}: no {probe}")
    sc = c.get("securityContext") or {}
    if sc.get("readOnlyRootFilesystem") is not True:
        out.append(f"{where}: readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        out.append(f"{where}: allowPrivilegeEscalation is not false")
    if "ALL" not in (_get(sc, "capabilities", "drop") or []):
        out.append(f"{where}: capabilities do not drop ALL")
    if service and not (_get(c, "lifecycle", "preStop", "sleep", "seconds") or 0) > 0:
        out.append(f"{where}: no preStop sleep (endpoints must drain before SIGTERM)")
    return out


def _env(c: Doc) -> list[Doc]:
    return list(c.get("env") or [])


def _secret_refs(obj: Any) -> Iterator[Doc]:
    if isinstance(obj, dict):
        if "secretKeyRef" in obj:
            yield obj["secretKeyRef"]
        for v in obj.values():
            yield from _secret_refs(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _secret_refs(v)


def _redis_url_violations(where: str, c: Doc) -> list[str]:
    env = _env(c)
    names = [e["name"] for e in env]
    url = next((e for e in env if e["name"] == "REDIS_URL"), None)
    if url is None:
        return [f"{where}: no REDIS_URL in env"]
    if "$(REDIS_PASSWORD)" not in url.get("value", ""):
        return [f"{where}: REDIS_URL does not carry $(REDIS_PASSWORD)"]
    if "REDIS_PASSWORD" not in names or names.index("REDIS_PASSWORD") > names.index("REDIS_URL"):
        return [f"{where}: REDIS_PASSWORD must be defined before REDIS_URL to expand"]
    pw = env[names.index("REDIS_PASSWORD")]
    if _get(pw, "valueFrom", "secretKeyRef", "name") != SECRET:
        return [f"{where}: REDIS_PASSWORD does not come from the Secret {SECRET}"]
    return []


def _redis_violations(docs: list[Doc]) -> list[str]:
    redis = [w for w in workloads(docs) if w["metadata"]["name"] == "redis"]
    if not redis:
        return ["no redis workload"]
    r = redis[0]
    out = []
    if r["kind"] != "StatefulSet":
        out.append(f"redis is a {r['kind']}, not a StatefulSet")
    claims = {t["metadata"]["name"] for t in _get(r, "spec", "volumeClaimTemplates") or []}
    c = _get(r, "spec", "template", "spec", "containers")[0]
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts") or []}
    data = [n for n, path in mounts.items() if path == "/data"]
    if not data or data[0] not in claims:
        out.append("redis /data is not on a PersistentVolumeClaim (volumeClaimTemplates)")
    args = c.get("args") or []
    pairs = dict(zip(args[::2], args[1::2], strict=False))
    if pairs.get("--appendonly") != "yes":
        out.append("redis without --appendonly yes")
    if pairs.get("--maxmemory-policy") != "noeviction":
        out.append("redis without --maxmemory-policy noeviction")
    if pairs.get("--requirepass") != "$(REDIS_PASSWORD)":
        out.append("redis without --requirepass $(REDIS_PASSWORD)")
    pw = next((e for e in _env(c) if e["name"] == "REDIS_PASSWORD"), None)
    if _get(pw, "valueFrom", "secretKeyRef", "name") != SECRET:
        out.append(f"redis REDIS_PASSWORD does not come from the Secret {SECRET}")
    return out


def violations(docs: list[Doc]) -> list[str]:
    out: list[str] = []
    for d in docs:
        if d["kind"] == "Secret":
            out.append(f"Secret {d['metadata']['name']} is committed (users create {SECRET})")
        if d["kind"] == "ConfigMap" and "REDIS_URL" in (d.get("data") or {}):
            out.append(
                "REDIS_URL in a ConfigMap: it carries the password, build it from the Secret"
            )
    for ref in _secret_refs(docs):
        if ref.get("name") != SECRET or ref.get("optional"):
            out.append(f"a secretKeyRef to {ref.get('name')} (optional={ref.get('optional')})")
    names = {app_of(w) for w in workloads(docs)}
    for missing in sorted({*SERVICES, "redis"} - names):
        out.append(f"no workload {missing}")
    for w in workloads(docs):
        name = app_of(w)
        spec = _get(w, "spec", "template", "spec") or {}
        psc = spec.get("securityContext") or {}
        if spec.get("automountServiceAccountToken") is not False:
            out.append(f"{name}: automountServiceAccountToken is not false")
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            where = f"{name}/{c['name']}"
            csc = c.get("securityContext") or {}
            if csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
                out.append(f"{where}: runAsNonRoot is not true")
            seccomp = _get(csc, "seccompProfile", "type") or _get(psc, "seccompProfile", "type")
            if seccomp != "RuntimeDefault":
                out.append(f"{where}: seccompProfile is not RuntimeDefault")
            out += _container_violations(where, c, name in SERVICES)
            if name in SERVICES:
                out += _redis_url_violations(where, c)
        grace = spec.get("terminationGracePeriodSeconds", 30)
        for c in spec.get("containers") or []:
            pause = _get(c, "lifecycle", "preStop", "sleep", "seconds") or 0
            if pause and grace < pause + 10:
                out.append(
                    f"{name}: terminationGracePeriodSeconds {grace} leaves < 10 s after preStop"
                )
    out += _redis_violations(docs)
    out += network_violations(docs)
    return out
