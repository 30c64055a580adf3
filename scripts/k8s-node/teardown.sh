#!/usr/bin/env bash
# Tears down what scripts/k8s-test started and made, given its run directory; run by its
# EXIT trap (so on success, failure and interrupt alike), and by hand for a run that was
# killed -9:  scripts/k8s-node/teardown.sh /tmp/polyshop-k8s.XXXXXX
#
# In order: the node agents and control loops (so nothing restarts a pod), every container
# through containerd (each task killed and deleted: its shim exits), whatever still runs
# in the pods' cgroups, containerd and any shim of its socket, the API server and etcd;
# each by the PID recorded when it was started. Then the mounts under the run directory
# (pod volumes, overlay rootfs, netns, shm), the bridge and any veth on it, every KUBE-* and
# CNI-* iptables chain, the pods' cgroups, the host sysctls put back, the CNI result cache
# of our network, and the run directory. Prints one line per kind of leftover it removed.
set -uo pipefail
run=${1:?usage: teardown.sh RUN_DIR}
[ -d "$run" ] || exit 0
here=$(cd "$(dirname "$0")" && pwd)
say() { printf 'k8s-test: teardown: %s\n' "$*"; }
ctr_sock=$run/containerd/containerd.sock
containers=""

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
# stop NAME [SECONDS]: SIGTERM the PID recorded for NAME, SIGKILL after SECONDS.
stop() {
  local name=$1 secs=${2:-10} pid i
  pid=$(cat "$run/pids/$name" 2>/dev/null) || return 0
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < secs * 5; i++)); do alive "$pid" || break; sleep 0.2; done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null; say "$name (pid $pid) killed"; fi
    for ((i = 0; i < 25; i++)); do alive "$pid" || break; sleep 0.2; done
  fi
  rm -f "$run/pids/$name"
}
# PIDs whose command line names this run's containerd (itself: --config; its shims:
# -address $ctr_sock).
pids_naming_run() {
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -F -- "$run/containerd/" >/dev/null && echo "${p#/proc/}"
  done
}

# 1. The agents and the control loops.
for name in kube-proxy kubelet kube-scheduler kube-controller-manager; do stop "$name" 10; done

# 2. Every container (sandboxes too) through containerd, while it is up.
if [ -S "$ctr_sock" ] && ctr --address "$ctr_sock" version >/dev/null 2>&1; then
  ctr_() { timeout 20 ctr --address "$ctr_sock" -n k8s.io "$@"; }
  containers=$(ctr_ containers ls -q 2>/dev/null)
  tasks=$(ctr_ tasks ls -q 2>/dev/null)
  for id in $tasks; do ctr_ tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1; done
  for id in $tasks; do ctr_ tasks delete -f "$id" >/dev/null 2>&1; done
  [ -n "$tasks" ] && say "$(wc -w <<<"$tasks") containers killed through containerd"
fi

# 3. Anything left in the pods' cgroups, by PID, until they are empty.
cg_root=$(cat "$run/cgroup-root" 2>/dev/null)
cg_dirs() {
  [ -n "$cg_root" ] || return 0
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    [ -d "/sys/fs/cgroup$cg_root" ] && find "/sys/fs/cgroup$cg_root" -depth -type d
  else
    local h
    for h in /sys/fs/cgroup/*/; do
      [ -d "$h${cg_root#/}" ] && find "$h${cg_root#/}" -depth -type d
    done
  fi
}
for _ in 1 2 3 4 5; do
  left=$(for d in $(cg_dirs); do cat "$d/cgroup.procs" 2>/dev/null; done | sort -u)
  [ -z "$left" ] && break
  say "killing pod processes $(tr '\n' ' ' <<<"$left")"
  # shellcheck disable=SC2086
  kill -KILL $left 2>/dev/null
  sleep 0.5
done

# 4. containerd, then any shim of its socket.
stop containerd 15
for _ in 1 2 3; do
  shims=$(pids_naming_run)
  [ -z "$shims" ] && break
  say "killing leftover processes of the run: $(tr '\n' ' ' <<<"$shims")"
  # shellcheck disable=SC2086
  kill -KILL $shims 2>/dev/null
  sleep 0.5
done

# 5. The control plane (whatever else was recorded, newest first).
if [ -f "$run/pids/order" ]; then
  for name in $(tac "$run/pids/order"); do stop "$name" 15; done
fi

# 6. Mounts under the run directory, deepest first.
for _ in 1 2 3; do
  mounts=$(awk -v r="$run/" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r -u)
  [ -z "$mounts" ] && break
  for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
  say "$(wc -w <<<"$mounts") mounts removed"
done

# 7. The bridge and whatever is still enslaved to it.
bridge=$(cat "$run/bridge" 2>/dev/null)
if [ -n "$bridge" ] && ip link show "$bridge" >/dev/null 2>&1; then
  for veth in $(ip -o link show master "$bridge" 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//'); do
    ip link delete "$veth" 2>/dev/null
  done
  ip link delete "$bridge" 2>/dev/null && say "bridge $bridge removed"
fi

# 8. iptables: every KUBE-* / CNI-* chain and the jumps into them.
python3 "$here/iptables-sweep.py" | sed 's/^/k8s-test: teardown: /'

# 9. The pods' cgroups.
for d in $(cg_dirs); do rmdir "$d" 2>/dev/null; done

# 10. Host sysctls the kubelet or kube-proxy changed.
if [ -f "$run/sysctls.before" ]; then
  while read -r key value; do
    [ "$(cat "/proc/sys/$key" 2>/dev/null)" = "$value" ] && continue
    echo "$value" >"/proc/sys/$key" 2>/dev/null && say "sysctl ${key//\//.} put back to $value"
  done <"$run/sysctls.before"
fi

# 11. What the kubelet and containerd put outside the run directory whatever their config:
# the /var/log/containers symlinks into it, the device plugin socket, libcni's results of
# our containers (our network's and the loopback's), the shims' socket dir; a directory
# that did not exist before the run goes if it is empty then.
find /var/log/containers -maxdepth 1 -type l -lname "$run/*" -delete 2>/dev/null
net=$(sed -n 's/.*"name": "\([^"]*\)".*/\1/p' "$run/cni/net.d/"*.conflist 2>/dev/null | head -1)
[ -n "$net" ] && rm -f /var/lib/cni/results/"$net"-* 2>/dev/null
for id in $containers; do rm -f "/var/lib/cni/results/cni-loopback-$id-lo"; done
if [ -f "$run/host-paths.before" ]; then
  while read -r path existed; do
    [ "$existed" = 0 ] || continue
    [ "$path" = /var/lib/kubelet ] && rm -f /var/lib/kubelet/device-plugins/kubelet.sock
    [ -d "$path" ] && find "$path" -depth -type d -empty -delete 2>/dev/null
  done <"$run/host-paths.before"
fi

status=0
if awk -v r="$run/" 'index($5, r) == 1' /proc/self/mountinfo | grep . >/dev/null; then
  say "mounts under $run remain" >&2; status=1
fi
if [ -n "$(pids_naming_run)" ]; then say "processes of the run remain" >&2; status=1; fi
[ "${K8S_TEST_KEEP:-0}" = 1 ] || rm -rf "$run" 2>/dev/null || { say "cannot remove $run" >&2; status=1; }
exit "$status"
