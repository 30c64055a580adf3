# One real etcd + kube-apiserver on loopback for the whole session (cluster.py), built by
# scripts/k8s-build apiserver (make test-k8s-apiserver passes its bin dir as K8S_BIN).
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster import APIServer
from manifests import ROOT


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing")
    pytest.skip(f"{what} is missing")


@pytest.fixture(scope="session")
def k8s_bin() -> Path:
    if os.environ.get("K8S_BIN"):
        return Path(os.environ["K8S_BIN"])
    # Run alone (pytest tests/k8s): the script is a no-op when the binaries are cached.
    out = subprocess.run(
        [str(ROOT / "scripts" / "k8s-build"), "apiserver"],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    ).stdout
    return Path(out.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def api(k8s_bin: Path) -> Iterator[APIServer]:
    for tool in ("kubectl", "openssl", "diff"):
        if shutil.which(tool) is None:
            _missing(tool)
    with APIServer(k8s_bin) as server:
        yield server
