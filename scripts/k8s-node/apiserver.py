#!/usr/bin/env python3
"""etcd + kube-apiserver for scripts/k8s-test: tests/k8s/cluster.py's APIServer, plus what a
node needs of it.

The recipe (PKI, token file, one kubeconfig per component, flags) is cluster.py's, reused
as is; this wrapper only adds to the API server's command line what `kubectl logs/exec`
need: a client certificate for the kubelet connection (signed by the same CA, which the
kubelet trusts as its clientCAFile) and --kubelet-preferred-address-types=InternalIP (the
node's Hostname address does not resolve). Its processes outlive this command;
scripts/k8s-test stops them by PID (the env file names them).

    apiserver.py --bin BIN_DIR --dir WORK_DIR --env ENV_FILE
writes ENV_FILE (shell): K8S_DIR, K8S_SERVER, K8S_CA, K8S_SA_KEY, K8S_SERVICE_CIDR,
K8S_KUBECONFIG_<COMPONENT> for each user of cluster.USERS, K8S_PID_<PROCESS>.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "k8s"))
from cluster import SERVICE_CIDR, USERS, APIServer, _openssl


class NodeAPIServer(APIServer):
    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        if name == "kube-apiserver":
            key, crt = self._kubelet_client_cert()
            argv = [
                *argv,
                f"--kubelet-client-certificate={crt}",
                f"--kubelet-client-key={key}",
                "--kubelet-preferred-address-types=InternalIP",
            ]
        super().spawn(name, argv, env)

    def _kubelet_client_cert(self) -> tuple[Path, Path]:
        """kube-apiserver's client identity towards the kubelet, by cluster.py's CA."""
        (self.pki / "kubelet-client.ext").write_text(
            "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        )
        name = "apiserver-kubelet-client"
        _openssl(
            "req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
            f" -keyout {name}.key -out {name}.csr -subj /O=system:masters/CN={name}",
            cwd=self.pki,
        )
        _openssl(
            f"x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2"
            f" -extfile kubelet-client.ext -out {name}.crt",
            cwd=self.pki,
        )
        return self.pki / f"{name}.key", self.pki / f"{name}.crt"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True, type=Path)
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--env", required=True, type=Path)
    a = p.parse_args()
    a.dir.mkdir(parents=True, exist_ok=True)
    api = NodeAPIServer(a.bin, workdir=a.dir, die_with_parent=False)
    try:
        api.start()
    except BaseException:
        api.stop()
        raise
    values = {
        "K8S_DIR": str(api.dir),
        "K8S_SERVER": api.server,
        "K8S_CA": str(api.ca_crt),
        "K8S_SA_KEY": str(api.sa_key),
        "K8S_SERVICE_CIDR": SERVICE_CIDR,
    }
    for name in USERS:
        var = f"K8S_KUBECONFIG_{name.upper().replace('-', '_')}"
        values[var] = str(api.dir / f"kubeconfig-{name}")
    for name, proc in api.procs:
        values[f"K8S_PID_{name.upper().replace('-', '_')}"] = str(proc.pid)
    a.env.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
