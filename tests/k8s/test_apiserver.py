"""The overlays against a real kube-apiserver (v1.33, etcd behind it, RBAC on).

For each overlay: its Namespaces are created, then the Secret the user must create
(polyshop-secrets), then a server-side dry run, a real server-side apply, a second apply
that must change nothing (every object's resourceVersion and generation unchanged), a
`kubectl diff --server-side` that finds nothing, and the consistency checks of checks.py.

Then the refusals: each negative test mutates one real object of the prod overlay in a
scratch namespace, shows that the unmutated object is accepted, and that the mutation is
refused by the server (a, b, c) or reported by checks.py (d, e).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from checks import check_namespace, missing_scale_targets, orphan_pdbs, selector_matches
from cluster import APIServer
from manifests import OVERLAYS, Obj, dump, find, namespaces_of, render, retarget

SECRET = "polyshop-secrets"
SECRET_KEYS = ("ADMIN_TOKEN", "REDIS_PASSWORD")
SSA = ("apply", "--server-side", "--validate=strict", "-f", "-")


def create_secret(api: APIServer, ns: str) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": ns},
        "type": "Opaque",
        # On stdin, not the command line: no secret value in the process table.
        "stringData": {key: secrets.token_hex(24) for key in SECRET_KEYS},
    }
    api.kubectl("create", "-f", "-", input=json.dumps(secret))


def versions(api: APIServer, manifest: str) -> dict[str, tuple[str, int | None]]:
    """kind/ns/name -> (resourceVersion, generation) of every object of the manifest."""
    out = json.loads(api.kubectl("get", "-f", "-", "-o", "json", input=manifest).stdout)
    items = out["items"] if out["kind"] == "List" else [out]
    return {
        f"{o['kind']}/{o['metadata'].get('namespace', '')}/{o['metadata']['name']}": (
            o["metadata"]["resourceVersion"],
            o["metadata"].get("generation"),
        )
        for o in items
    }


def stdout_of(api: APIServer) -> Callable[..., str]:
    return lambda *args: api.kubectl(*args).stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_applies_idempotently(api: APIServer, overlay: str) -> None:
    docs = render(overlay)
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == SECRET], (
        f"{SECRET} is the user's to create; the overlay must not ship it"
    )
    namespaces = namespaces_of(docs)
    used = {d["metadata"]["namespace"] for d in docs if "namespace" in d["metadata"]}
    assert namespaces, "the overlay creates no Namespace"
    assert used <= set(namespaces), f"objects in namespaces the overlay does not create: {used}"

    api.kubectl(*SSA, input=dump([d for d in docs if d["kind"] == "Namespace"]))
    for ns in namespaces:
        create_secret(api, ns)
    manifest = dump(docs)

    api.kubectl(*SSA, "--dry-run=server", input=manifest)
    rest = [d for d in docs if d["kind"] != "Namespace"]
    left = api.kubectl("get", "-f", "-", "--ignore-not-found", "-o", "name", input=dump(rest))
    assert left.stdout.strip() == "", f"the dry run persisted objects:\n{left.stdout}"

    first = api.kubectl(*SSA, input=manifest)
    assert "serverside-applied" in first.stdout
    before = versions(api, manifest)
    assert len(before) == len(docs)
    api.kubectl(*SSA, input=manifest)
    after = versions(api, manifest)
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not changed, f"the second apply changed (resourceVersion, generation): {changed}"

    diff = api.kubectl("diff", "--server-side", "-f", "-", input=manifest, check=False)
    assert diff.returncode == 0, (
        f"kubectl diff exited {diff.returncode}:\n{diff.stdout}{diff.stderr}"
    )

    for ns in namespaces:
        assert check_namespace(stdout_of(api), ns) == [], f"overlay {overlay}, namespace {ns}"


# --- negative tests -----------------------------------------------------------------------
@pytest.fixture
def scratch(api: APIServer, request: pytest.FixtureRequest) -> str:
    ns = "neg-" + request.node.name.removeprefix("test_").replace("_", "-")[:50]
    api.kubectl("create", "namespace", ns)
    create_secret(api, ns)  # as a user would before applying
    return ns


def prod_in(ns: str) -> list[Obj]:
    return retarget(render("prod"), ns)


def refused(api: APIServer, obj: Obj, *extra: str) -> str:
    """Applies obj (strict, server-side); asserts the server refuses it; returns stderr."""
    r = api.kubectl(*SSA, *extra, input=dump([obj]), check=False)
    assert r.returncode != 0, f"accepted:\n{r.stdout}"
    return r.stderr


def test_a_unknown_field_refused_by_strict_validation(api: APIServer, scratch: str) -> None:
    deploy = find(prod_in(scratch), "Deployment", "gateway")
    api.kubectl(*SSA, "--dry-run=server", input=dump([deploy]))  # the control: accepted
    deploy["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    typo = dump([deploy])
    # Client-side apply: --validate=strict is what refuses it; with warn the server would
    # drop the field and take the rest, which is how a typo ships unnoticed.
    lax = api.kubectl("apply", "--validate=warn", "--dry-run=server", "-f", "-", input=typo)
    assert 'unknown field "spec.template.spec.containers[0].imagePullPolicyy"' in lax.stderr
    r = api.kubectl("apply", "--validate=strict", "-f", "-", input=typo, check=False)
    assert r.returncode != 0, r.stdout
    assert 'unknown field "spec.template.spec.containers[0].imagePullPolicyy"' in r.stderr, r.stderr
    # Server-side apply refuses it at any --validate: it cannot type an undeclared field.
    err = refused(api, deploy)
    assert 'containers[name="gateway"].imagePullPolicyy: field not declared in schema' in err, err
    gone = api.kubectl("get", "deployment", "gateway", "-n", scratch, check=False)
    assert gone.returncode != 0, "the refused Deployment exists"


def test_b_selector_not_matching_template_refused(api: APIServer, scratch: str) -> None:
    deploy = find(prod_in(scratch), "Deployment", "pricing")
    deploy["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = "not-pricing"
    err = refused(api, deploy, "--dry-run=server")
    assert "`selector` does not match template `labels`" in err, err
    err = refused(api, deploy)
    assert "`selector` does not match template `labels`" in err, err


def test_c_immutable_selector_refused_on_reapply(api: APIServer, scratch: str) -> None:
    deploy = find(prod_in(scratch), "Deployment", "pricing")
    api.kubectl(*SSA, input=dump([deploy]))
    # Selector and template labels change together: only immutability can refuse it.
    deploy["spec"]["selector"]["matchLabels"]["track"] = "canary"
    deploy["spec"]["template"]["metadata"]["labels"]["track"] = "canary"
    err = refused(api, deploy)
    assert "field is immutable" in err and "spec.selector" in err, err
    live = json.loads(
        api.kubectl("get", "deployment", "pricing", "-n", scratch, "-o", "json").stdout
    )
    assert "track" not in live["spec"]["selector"]["matchLabels"]


def test_d_orphan_pdb_detected(api: APIServer, scratch: str) -> None:
    docs = prod_in(scratch)
    pdb = find(docs, "PodDisruptionBudget", "gateway")
    pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = "gatewy"
    api.kubectl(*SSA, input=dump(docs))  # the server takes it: hence the check
    problems = check_namespace(stdout_of(api), scratch)
    assert len(problems) == 1, problems
    assert problems[0].startswith("PodDisruptionBudget/gateway: selector"), problems


def test_e_hpa_missing_target_detected(api: APIServer, scratch: str) -> None:
    docs = prod_in(scratch)
    find(docs, "HorizontalPodAutoscaler", "pricing")["spec"]["scaleTargetRef"]["name"] = "pricng"
    api.kubectl(*SSA, input=dump(docs))
    problems = check_namespace(stdout_of(api), scratch)
    assert problems == [
        "HorizontalPodAutoscaler/pricing: scaleTargetRef apps/v1 Deployment/pricng "
        "does not exist in the namespace"
    ]


def test_dangling_secret_key_detected(api: APIServer, scratch: str) -> None:
    docs = prod_in(scratch)
    deploy = find(docs, "Deployment", "gateway")
    refs = [
        e["valueFrom"]["secretKeyRef"]
        for c in deploy["spec"]["template"]["spec"]["containers"]
        for e in c.get("env") or []
        if "secretKeyRef" in (e.get("valueFrom") or {})
    ]
    assert refs, "the gateway reads no Secret key"
    refs[0]["key"] += "_TYPO"
    api.kubectl(*SSA, input=dump(docs))
    problems = check_namespace(stdout_of(api), scratch)
    assert problems == [f"Deployment/gateway: Secret {refs[0]['name']} has no key {refs[0]['key']}"]


# --- the checkers' selector logic, without a server -----------------------------------------
@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({}, {"a": "1"}, True),  # policy/v1: an empty selector selects every pod
        (None, {"a": "1"}, False),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
            {"a": "2"},
            True,
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"b": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"b": "1"}, True),
    ],
)
def test_selector_semantics(selector: Any, labels: dict[str, str], expected: bool) -> None:
    assert selector_matches(selector, labels) is expected


def test_checkers_on_plain_objects() -> None:
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {}}},
    }
    pdb = {"kind": "PodDisruptionBudget", "metadata": {"name": "p"}, "spec": {}}
    pdb["spec"]["selector"] = {"matchLabels": {"app": "web"}}
    assert orphan_pdbs([pdb], [deploy]) == []
    pdb["spec"]["selector"] = {"matchLabels": {"app": "db"}}
    assert len(orphan_pdbs([pdb], [deploy])) == 1
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    hpa = {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"}, "spec": {}}
    hpa["spec"]["scaleTargetRef"] = ref
    assert missing_scale_targets([hpa], [deploy]) == []
    ref["kind"] = "StatefulSet"  # right name, wrong kind
    assert len(missing_scale_targets([hpa], [deploy])) == 1
