"""The overlays as kustomize renders them, and the small edits the tests make to them."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "prod")
Obj = dict[str, Any]

_rendered: dict[str, list[Obj]] = {}


def render(overlay: str) -> list[Obj]:
    """`kubectl kustomize` of an overlay, as objects (a fresh copy each call)."""
    if overlay not in _rendered:
        out = subprocess.run(
            ["kubectl", "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        _rendered[overlay] = [d for d in yaml.safe_load_all(out) if d]
    return copy.deepcopy(_rendered[overlay])


def dump(docs: list[Obj]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def namespaces_of(docs: list[Obj]) -> list[str]:
    return [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"]


def retarget(docs: list[Obj], ns: str) -> list[Obj]:
    """The same objects in namespace ns instead (no Namespace objects): one scratch
    namespace per negative test, next to the real overlays, none disturbing another."""
    out = []
    for d in docs:
        if d["kind"] == "Namespace":
            continue
        if "namespace" in d["metadata"]:  # kustomize sets it on namespaced kinds only
            d["metadata"]["namespace"] = ns
        out.append(d)
    return out


def find(docs: list[Obj], kind: str, name: str) -> Obj:
    for d in docs:
        if d["kind"] == kind and d["metadata"]["name"] == name:
            return d
    raise LookupError(f"no {kind}/{name} in the rendered overlay")
