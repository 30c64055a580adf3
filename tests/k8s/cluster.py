"""A real Kubernetes API server on loopback: etcd + kube-apiserver, nothing mocked.

Binaries come from `scripts/k8s-build apiserver` (or `node`), whose last output line is
their directory. Everything lives in one temp dir (etcd data, PKI, token file, logs,
kubeconfigs) that is removed at the end; every process is stopped by PID, on failure too.

Python (what tests/k8s/conftest.py does)::

    from cluster import APIServer
    with APIServer(bin_dir) as api:          # started and /readyz-ready on return
        api.kubectl("get", "ns")             # kubectl with api.kubeconfig (admin token)
        api.env()                            # os.environ + KUBECONFIG, for other tools
        api.kubeconfig_for("kube-scheduler") # a kubeconfig of one of USERS below
        api.spawn("kube-scheduler", [...])   # another process, stopped with the others

Shell (processes outlive the command; `stop` ends them by the PIDs in the env file)::

    bin=$(scripts/k8s-build apiserver)
    .venv/bin/python tests/k8s/cluster.py start --bin "$bin" --env /tmp/k8s.env
    . /tmp/k8s.env && kubectl get ns          # KUBECONFIG, K8S_DIR, K8S_PIDS, ...
    .venv/bin/python tests/k8s/cluster.py stop --env /tmp/k8s.env

What a node-level test needs is already made: USERS has a token per control-plane
component and one node (system:node:<NODE_NAME> in system:nodes, for --authorization-mode
Node), `ca_crt`/`ca_key` can sign (kube-controller-manager --cluster-signing-*),
`sa_key` is the service-account signing key (--service-account-private-key-file).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

SERVICE_CIDR = "10.96.0.0/16"
# The first address of SERVICE_CIDR: the `kubernetes` Service, so in the serving cert.
SERVICE_IP = "10.96.0.1"
ISSUER = "https://kubernetes.default.svc.cluster.local"
NODE_NAME = "polyshop-node"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0

# kubeconfig name -> (user, groups) in the static token file. Each gets a random token.
USERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("polyshop-admin", ("system:masters",)),
    "kube-controller-manager": ("system:kube-controller-manager", ()),
    "kube-scheduler": ("system:kube-scheduler", ()),
    "kube-proxy": ("system:kube-proxy", ()),
    "kubelet": (f"system:node:{NODE_NAME}", ("system:nodes",)),
}


class ClusterError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # A pytest killed outright (CI timeout, SIGKILL) runs no finalizer: the kernel then
    # ends the children instead of leaving an etcd and an API server behind.
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _openssl(args: str, *more: str, cwd: Path) -> None:
    # args: no argument of these commands has a space, so a plain split keeps them readable.
    subprocess.run(["openssl", *args.split(), *more], cwd=cwd, check=True, capture_output=True)


def make_pki(d: Path) -> None:
    """CA, serving cert (127.0.0.1, localhost, the in-cluster names), SA key pair."""
    d.mkdir(parents=True, exist_ok=True)
    ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    _openssl(
        f"req -x509 {ec} -days 2 -keyout ca.key -out ca.crt -subj /CN=polyshop-test-ca",
        "-addext=basicConstraints=critical,CA:TRUE",
        "-addext=keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )
    sans = ",".join(
        ["IP:127.0.0.1", f"IP:{SERVICE_IP}", "DNS:localhost", "DNS:kubernetes"]
        + [f"DNS:kubernetes.default{s}" for s in ("", ".svc", ".svc.cluster.local")]
    )
    (d / "serving.ext").write_text(
        f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
    )
    _openssl(
        f"req -new {ec} -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver", cwd=d
    )
    _openssl(
        "x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2"
        " -extfile serving.ext -out apiserver.crt",
        cwd=d,
    )
    # RSA: what every consumer of service-account keys accepts (RS256 is the JWT default).
    _openssl("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key", cwd=d)
    _openssl("pkey -in sa.key -pubout -out sa.pub", cwd=d)


@dataclass
class APIServer:
    bin_dir: Path
    workdir: Path | None = None  # None: a fresh temp dir, removed on stop
    die_with_parent: bool = True  # False for `cluster.py start` (processes outlive it)
    keep: bool = bool(os.environ.get("K8S_KEEP"))  # keep the dir (logs) for a post-mortem
    etcd_port: int = 0
    port: int = 0
    tokens: dict[str, str] = field(default_factory=dict)
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    _own_dir: bool = False

    # --- paths ----------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        assert self.workdir is not None, "not started"
        return self.workdir

    @property
    def pki(self) -> Path:
        return self.dir / "pki"

    ca_crt = property(lambda self: self.pki / "ca.crt")
    ca_key = property(lambda self: self.pki / "ca.key")
    sa_key = property(lambda self: self.pki / "sa.key")
    sa_pub = property(lambda self: self.pki / "sa.pub")

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    def log(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    # --- lifecycle ------------------------------------------------------------------
    def __enter__(self) -> APIServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        for b in ("etcd", "kube-apiserver"):
            if not os.access(self.bin_dir / b, os.X_OK):
                raise ClusterError(f"{self.bin_dir / b} missing: run scripts/k8s-build apiserver")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="polyshop-k8s-"))
            self._own_dir = True
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        # etcd needs no PKI: it starts while openssl works (~1 s of the 3-4 s start).
        self._spawn_etcd()
        make_pki(self.pki)
        self.tokens = {name: secrets.token_hex(16) for name in USERS}
        # token,user,uid[,"group,group"]: no fourth column for no groups (not one "" group).
        lines = []
        for name, (user, groups) in USERS.items():
            line = f"{self.tokens[name]},{user},{user}"
            lines.append(f'{line},"{",".join(groups)}"\n' if groups else f"{line}\n")
        (self.dir / "tokens.csv").write_text("".join(lines))
        self._retry_on_port_clash("etcd", self._wait_etcd, self._spawn_etcd)
        self._retry_on_port_clash("kube-apiserver", self._start_apiserver, self._start_apiserver)
        for name in USERS:
            self.kubeconfig_for(name)
        shutil.copy(self.dir / "kubeconfig-admin", self.kubeconfig)

    def _retry_on_port_clash(
        self, name: str, first: Callable[[], None], again: Callable[[], None]
    ) -> None:
        # free_port() only finds a port free now: another suite may take it before the
        # process binds it. That, and only that, is worth a new port and a second try.
        try:
            first()
            return
        except ClusterError as e:
            if "address already in use" not in str(e):
                raise
        self.procs = [(n, p) for n, p in self.procs if n != name]
        again()
        if name == "etcd":
            self._wait_etcd()

    def _wait_etcd(self) -> None:
        self._wait(f"http://127.0.0.1:{self.etcd_port}/health", "etcd", ssl_ctx=None, token=None)

    def _spawn_etcd(self) -> None:
        self.etcd_port, peer = free_port(), free_port()
        client, peer_url = f"http://127.0.0.1:{self.etcd_port}", f"http://127.0.0.1:{peer}"
        self.spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=polyshop",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=polyshop={peer_url}",
                "--log-level=warn",
                # Throwaway data: fsync only slows every write of the tests.
                "--unsafe-no-fsync",
            ],
        )

    def _start_apiserver(self) -> None:
        self.port = free_port()
        self.spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--cert-dir={self.pki}",  # never /var/run/kubernetes
                f"--tls-cert-file={self.pki / 'apiserver.crt'}",
                f"--tls-private-key-file={self.pki / 'apiserver.key'}",
                f"--client-ca-file={self.ca_crt}",
                f"--token-auth-file={self.dir / 'tokens.csv'}",
                "--authorization-mode=Node,RBAC",
                f"--service-account-key-file={self.sa_pub}",
                f"--service-account-signing-key-file={self.sa_key}",
                f"--service-account-issuer={ISSUER}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--profiling=false",
            ],
        )
        ctx = ssl.create_default_context(cafile=str(self.ca_crt))
        self._wait(
            f"{self.server}/readyz", "kube-apiserver", ssl_ctx=ctx, token=self.tokens["admin"]
        )

    def _wait(self, url: str, name: str, ssl_ctx: ssl.SSLContext | None, token: str | None) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        proc = dict(self.procs)[name]
        last = ""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ClusterError(f"{name} exited {proc.returncode}:\n{self.tail(name)}")
            req = urllib.request.Request(url)
            if token:
                req.add_header("Authorization", f"Bearer {token}")
            try:
                with urllib.request.urlopen(req, timeout=2, context=ssl_ctx) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError) as e:
                last = str(e)
            time.sleep(0.1)
        raise ClusterError(f"{name} not ready in {START_TIMEOUT_S}s ({last}):\n{self.tail(name)}")

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        """Start a process logging to logs/<name>.log; stop() ends it (reverse order)."""
        with self.log(name).open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )
        self.procs.append((name, proc))

    def tail(self, name: str, lines: int = 40) -> str:
        try:
            return "\n".join(self.log(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        # One at a time, newest first: an API server whose etcd is gone hangs in shutdown.
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        if self._own_dir and not self.keep and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- clients --------------------------------------------------------------------
    def kubeconfig_for(self, name: str) -> Path:
        path = self.dir / f"kubeconfig-{name}"
        path.write_text(
            f"""apiVersion: v1
kind: Config
clusters:
  - name: polyshop
    cluster:
      server: {self.server}
      certificate-authority: {self.ca_crt}
users:
  - name: {name}
    user:
      token: {self.tokens[name]}
contexts:
  - name: {name}
    context:
      cluster: polyshop
      user: {name}
current-context: {name}
"""
        )
        path.chmod(0o600)
        return path

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            ["kubectl", *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=120,
            check=False,
        )
        if check and r.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} exited {r.returncode}:\n{r.stderr}")
        return r


# --- shell entry point --------------------------------------------------------------------
def _write_env(api: APIServer, path: Path) -> None:
    values = {
        "KUBECONFIG": str(api.kubeconfig),
        "K8S_DIR": str(api.dir),
        "K8S_SERVER": api.server,
        "K8S_PIDS": " ".join(str(p.pid) for _, p in api.procs),
    }
    for name, proc in api.procs:
        values[f"K8S_{name.upper().replace('-', '_')}_PID"] = str(proc.pid)
    path.write_text("".join(f"export {k}='{v}'\n" for k, v in values.items()))


def _stop_from_env(path: Path) -> None:
    values = {}
    for line in path.read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        values[key] = value.strip("'")
    pids = [int(p) for p in values.get("K8S_PIDS", "").split()]
    for pid in reversed(pids):  # newest first, one at a time, as APIServer.stop
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if values.get("K8S_DIR"):
        shutil.rmtree(values["K8S_DIR"], ignore_errors=True)
    path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (its parent, cluster.py start, is gone and init has not reaped it yet).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    start = sub.add_parser("start", help="start etcd + kube-apiserver, write the env file")
    start.add_argument("--bin", required=True, type=Path, help="scripts/k8s-build's bin dir")
    start.add_argument("--env", required=True, type=Path, help="env file to write")
    stop = sub.add_parser("stop", help="stop what the env file names, remove its dir")
    stop.add_argument("--env", required=True, type=Path)
    a = p.parse_args()
    if a.cmd == "stop":
        _stop_from_env(a.env)
        return 0
    api = APIServer(a.bin, die_with_parent=False)
    try:
        api.start()
    except BaseException:
        api.stop()
        raise
    _write_env(api, a.env)
    print(f"kube-apiserver on {api.server}; . {a.env} then kubectl; stop with: stop --env {a.env}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
