#!/usr/bin/env python3
"""Removes every iptables/ip6tables chain named KUBE-* or CNI-* and every rule jumping to one.

What the kubelet, kube-proxy and the CNI plugins (bridge ipMasq, firewall, portmap) of
scripts/k8s-test leave in the kernel when they are stopped by PID. Each rule is deleted by
its own spec (iptables -D, as iptables-save printed it), never by restoring a saved table:
rules others add meanwhile (a dockerd) stay. Prints what it removed; exit 0 unless a chain
it wanted gone is still there.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys

OURS = re.compile(r"^(KUBE-|CNI-)")
TABLES = ("filter", "nat", "mangle", "raw")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603


def sweep(cmd: str) -> list[str]:
    left: list[str] = []
    for table in TABLES:
        saved = run(f"{cmd}-save", "-t", table)
        if saved.returncode != 0:
            continue
        chains = [
            line[1:].split()[0]
            for line in saved.stdout.splitlines()
            if line.startswith(":") and OURS.match(line[1:])
        ]
        removed = 0
        for line in saved.stdout.splitlines():
            if not line.startswith("-A "):
                continue
            words = shlex.split(line)
            chain = words[1]
            if OURS.match(chain):
                continue  # flushed with its chain below
            targets = [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-j", "-g")]
            jumps = any(OURS.match(t) for t in targets)
            if jumps and run(cmd, "-w", "-t", table, "-D", chain, *words[2:]).returncode == 0:
                removed += 1
        for chain in chains:
            run(cmd, "-w", "-t", table, "-F", chain)
        for chain in chains:
            run(cmd, "-w", "-t", table, "-X", chain)
        after = run(f"{cmd}-save", "-t", table).stdout
        still = [c for c in chains if re.search(rf"^:{re.escape(c)} ", after, re.M)]
        left += [f"{cmd} {table} {c}" for c in still]
        if chains or removed:
            print(f"iptables-sweep: {cmd} {table}: {len(chains)} chains, {removed} jumps removed")
    return left


def main() -> int:
    left: list[str] = []
    for cmd in ("iptables", "ip6tables"):
        if shutil.which(cmd) and shutil.which(f"{cmd}-save"):
            left += sweep(cmd)
    for entry in left:
        print(f"iptables-sweep: still there: {entry}", file=sys.stderr)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
