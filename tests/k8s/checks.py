"""Consistency checks the API server does not make: it accepts each of these objects alone.

Each takes what `kubectl get ... -o json` lists from the API server (so it judges what was
really applied, after kustomize and admission) and returns one line per problem, empty
when the namespace is consistent:

- orphan_pdbs: a PodDisruptionBudget whose selector matches the pod template of no
  workload (Deployment, StatefulSet) in its namespace protects nothing;
- missing_scale_targets: a HorizontalPodAutoscaler whose scaleTargetRef names no workload;
- dangling_refs: a pod template's Secret/ConfigMap (or key) that does not exist.

`check_namespace(kubectl, ns)` runs all three against a live API server.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import label_selector_matches as selector_matches

Obj = dict[str, Any]
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


def _name(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _template_labels(workload: Obj) -> dict[str, str]:
    return workload["spec"]["template"].get("metadata", {}).get("labels") or {}


def orphan_pdbs(pdbs: Iterable[Obj], workloads: Iterable[Obj]) -> list[str]:
    workloads = [w for w in workloads if w["kind"] in WORKLOAD_KINDS]
    problems = []
    for pdb in pdbs:
        selector = pdb["spec"].get("selector")
        if not any(selector_matches(selector, _template_labels(w)) for w in workloads):
            problems.append(
                f"{_name(pdb)}: selector {json.dumps(selector, sort_keys=True)} matches no "
                f"pod template of {', '.join(WORKLOAD_KINDS)} in the namespace"
            )
    return problems


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]  # "apps/v1" -> "apps", the core "v1" -> ""


def missing_scale_targets(hpas: Iterable[Obj], workloads: Iterable[Obj]) -> list[str]:
    present = {(_group(w["apiVersion"]), w["kind"], w["metadata"]["name"]) for w in workloads}
    problems = []
    for hpa in hpas:
        ref = hpa["spec"]["scaleTargetRef"]
        if (_group(ref.get("apiVersion", "")), ref["kind"], ref["name"]) not in present:
            problems.append(
                f"{_name(hpa)}: scaleTargetRef {ref.get('apiVersion', '')} {ref['kind']}/"
                f"{ref['name']} does not exist in the namespace"
            )
    return problems


def _refs(pod_spec: Obj) -> Iterable[tuple[str, str, str | None, bool]]:
    """(kind, name, key or None, optional) of every Secret/ConfigMap a pod spec reads."""
    containers = (pod_spec.get("containers") or []) + (pod_spec.get("initContainers") or [])
    for c in containers:
        for env in c.get("env") or []:
            source = env.get("valueFrom") or {}
            for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                if ref := source.get(field):
                    yield kind, ref["name"], ref["key"], bool(ref.get("optional"))
        for env_from in c.get("envFrom") or []:
            for field, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                if ref := env_from.get(field):
                    yield kind, ref["name"], None, bool(ref.get("optional"))
    for vol in pod_spec.get("volumes") or []:
        if s := vol.get("secret"):
            yield "Secret", s["secretName"], None, bool(s.get("optional"))
        if cm := vol.get("configMap"):
            yield "ConfigMap", cm["name"], None, bool(cm.get("optional"))
        for src in (vol.get("projected") or {}).get("sources") or []:
            for field, kind in (("secret", "Secret"), ("configMap", "ConfigMap")):
                if ref := src.get(field):
                    yield kind, ref["name"], None, bool(ref.get("optional"))


def dangling_refs(workloads: Iterable[Obj], config: Iterable[Obj]) -> list[str]:
    keys = {
        (o["kind"], o["metadata"]["name"]): set(o.get("data") or {})
        | set(o.get("binaryData") or {})
        for o in config
    }
    problems = []
    for w in workloads:
        if w["kind"] not in WORKLOAD_KINDS:
            continue
        for kind, name, key, optional in _refs(w["spec"]["template"]["spec"]):
            if optional:
                continue
            if (kind, name) not in keys:
                problems.append(f"{_name(w)}: {kind} {name} does not exist")
            elif key is not None and key not in keys[kind, name]:
                problems.append(f"{_name(w)}: {kind} {name} has no key {key}")
    return sorted(set(problems))


def check_namespace(kubectl: Callable[..., str], ns: str) -> list[str]:
    """All three checks on what the API server holds in ns; kubectl(*args) -> stdout."""

    def get(kinds: str) -> list[Obj]:
        items: list[Obj] = json.loads(kubectl("get", kinds, "-n", ns, "-o", "json"))["items"]
        return items

    workloads = get("deployments.apps,statefulsets.apps")
    return (
        orphan_pdbs(get("poddisruptionbudgets.policy"), workloads)
        + missing_scale_targets(get("horizontalpodautoscalers.autoscaling"), workloads)
        + dangling_refs(workloads, get("secrets,configmaps"))
    )
