# shellcheck shell=bash
# The worker node of scripts/k8s-test, sourced by it: Debian's containerd + runc on a config,
# socket, root and state of their own under $run (a system containerd, or compose-test's,
# is never touched), the bridge + host-local (+ firewall, + portmap) CNI plugins from
# Debian's containernetworking-plugins, a pause image built here (pause.go, packed by
# oci-image.py: no registry is reachable), then the kubelet and kube-proxy (iptables mode).
# Every process is started by start_bg, which records its PID; teardown.sh stops them by
# PID and removes what they made (iptables chains, the bridge, netns, mounts, cgroups).
#
# Needs, from the caller: $run (the run directory), $tools (the tools cache), $kbin (the
# Kubernetes binaries), say(). Sets: $ctr_sock, $node_name, $node_ip, $pod_cidr.

node_name=${K8S_NODE_NAME:-polyshop-node}
# The pod network: one /24 on one bridge of our own name (not cni0: another CNI user on
# this machine keeps its own). 10.244/16 is the usual flannel/kind range.
pod_cidr=${K8S_POD_CIDR:-10.244.0.0/24}
pod_gw=${pod_cidr%.*}.1
bridge=${K8S_BRIDGE:-pshop0}
pause_image=registry.k8s.io/pause:3.10
cni_bin=/usr/lib/cni
ctr_sock=$run/containerd/containerd.sock
# The node's address: the host's own (eth0's), what the API server dials for logs/exec.
node_ip=${K8S_NODE_IP:-$(ip -4 -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')}
node_ip=${node_ip:-127.0.0.1}

ctr_() { ctr --address "$ctr_sock" -n k8s.io "$@"; }

# start_bg NAME CMD...: starts CMD in the background with its output in $run/log/NAME.log;
# its PID goes to $run/pids/NAME (the teardown's list, in start order).
start_bg() {
  local name=$1; shift
  mkdir -p "$run/log" "$run/pids"
  "$@" >"$run/log/$name.log" 2>&1 </dev/null &
  echo $! >"$run/pids/$name"
  echo "$name" >>"$run/pids/order"
}

# wait_for WHAT SECONDS CMD...: polls CMD until it succeeds; on timeout prints the log tail.
wait_for() {
  local what=$1 secs=$2 log=${WAIT_LOG:-}; shift 2
  local end=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$end" ]; then
      say "$what: not ready after ${secs}s" >&2
      [ -n "$log" ] && [ -f "$log" ] && tail -25 "$log" >&2
      return 1
    fi
    sleep 0.5
  done
}

node_packages() {
  local missing=() p
  for p in containerd runc containernetworking-plugins iptables conntrack; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
      >"$run/log/apt.log" 2>&1 || { tail -20 "$run/log/apt.log" >&2; return 1; }
    # Debian starts the containerd it installs; this node runs its own.
    systemctl disable --now containerd.service >/dev/null 2>&1 || true
  fi
  local b
  for b in bridge host-local loopback firewall portmap; do
    [ -x "$cni_bin/$b" ] || { say "CNI plugin $cni_bin/$b missing" >&2; return 1; }
  done
}

# The pause binary (cached by the hash of its source) as an OCI archive in $run.
node_pause_archive() {
  local src=$root/scripts/k8s-node/pause.go bin
  bin=$tools/k8s-node/pause-$(sha256sum "$src" | cut -c1-12)
  if [ ! -x "$bin" ]; then
    mkdir -p "$(dirname "$bin")"
    { (cd "$run" && CGO_ENABLED=0 GOFLAGS='' go build -trimpath -ldflags '-s -w' -o "$bin.tmp" "$src") &&
      mv "$bin.tmp" "$bin"; } || return 1
  fi
  python3 "$root/scripts/k8s-node/oci-image.py" "$pause_image" "$bin" "$run/pause.tar"
}

node_containerd_start() {
  local c=$run/containerd
  mkdir -p "$c/root" "$c/state" "$c/opt"
  cat >"$c/config.toml" <<EOF
# containerd of scripts/k8s-test: everything under $c.
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "$ctr_sock"
[ttrpc]
  address = "$ctr_sock.ttrpc"
[debug]
  address = "$c/debug.sock"
  level = "info"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  # root here lacks CAP_SYS_RESOURCE: never lower a container's oom_score_adj below ours
  # (without it runc fails with "can't get final child's PID from pipe").
  restrict_oom_score_adj = true
  # Pod network namespaces under $c/state, not /run/netns: the teardown finds them all.
  netns_mounts_under_state_dir = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$c/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$cni_bin"
    conf_dir = "$run/cni/net.d"
    max_conf_num = 1
EOF
  WAIT_LOG=$run/log/containerd.log
  start_bg containerd containerd --config "$c/config.toml"
  wait_for containerd 30 ctr --address "$ctr_sock" version || return 1
}

# The pod network: a bridge of our own, host-local IPAM with its state under $run, the
# firewall plugin (this host's FORWARD policy may be DROP, e.g. after a dockerd: it admits
# the pods' traffic in a CNI-FORWARD chain), portmap for hostPorts.
node_cni_config() {
  mkdir -p "$run/cni/net.d" "$run/cni/ipam"
  echo "$bridge" >"$run/bridge"
  cat >"$run/cni/net.d/10-polyshop.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "polyshop-k8s",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$run/cni/ipam",
        "ranges": [[{"subnet": "$pod_cidr", "gateway": "$pod_gw"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "firewall", "backend": "iptables"},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

node_import_pause() {
  ctr_ images import "$run/pause.tar" >"$run/log/import-pause.log" 2>&1 ||
    { cat "$run/log/import-pause.log" >&2; return 1; }
  ctr_ images ls -q | grep -x "$pause_image" >/dev/null || { say "pause image not tagged $pause_image" >&2; return 1; }
}

# The host sysctls the kubelet (protectKernelDefaults: false sets them) and kube-proxy may
# change, saved for teardown.sh to put back.
node_save_sysctls() {
  local k
  for k in vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops \
    kernel/keys/root_maxkeys kernel/keys/root_maxbytes net/ipv4/conf/all/route_localnet \
    net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables net/netfilter/nf_conntrack_max \
    net/netfilter/nf_conntrack_tcp_timeout_established \
    net/netfilter/nf_conntrack_tcp_timeout_close_wait; do
    [ -r "/proc/sys/$k" ] && printf '%s %s\n' "$k" "$(cat "/proc/sys/$k")"
  done >"$run/sysctls.before"
}

# Host paths the kubelet and containerd use whatever their configuration (the device
# plugin socket, the /var/log/containers symlinks, libcni's result cache, the shims'
# socket dir): which existed before, so teardown.sh removes only what this run made.
node_record_host_paths() {
  local p
  for p in /var/lib/kubelet /var/log/containers /var/lib/cni /run/containerd; do
    if [ -e "$p" ]; then echo "$p 1"; else echo "$p 0"; fi
  done >"$run/host-paths.before"
}

# The pods' cgroups live under a root of this run's own name in every v1 hierarchy (or
# under it in the v2 tree): teardown.sh kills whatever is left in them by PID, then
# removes them. The kubelet wants its cgroup-root to exist.
node_cgroup_root() {
  cg_root=/$(basename "$run")
  echo "$cg_root" >"$run/cgroup-root"
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    mkdir -p "/sys/fs/cgroup$cg_root"
    return
  fi
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h" ] || continue
    mkdir -p "$h${cg_root#/}" 2>/dev/null || continue
    if [ -f "$h/cpuset.cpus" ]; then  # v1 cpuset: a new cgroup starts with no cpus or mems
      cat "$h/cpuset.cpus" >"$h${cg_root#/}/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h${cg_root#/}/cpuset.mems"
    fi
  done
}

# node_kubelet_start KUBECONFIG CA_FILE: the kubelet registers $node_name; the API server
# reaches it on $node_ip:$kubelet_port with a client certificate of $CA_FILE (logs, exec).
node_kubelet_start() {
  local kubeconfig=$1 ca=$2 k=$run/kubelet
  kubelet_port=$(free_port) kubelet_healthz=$(free_port)
  mkdir -p "$k/root" "$run/pod-logs"
  # The pods resolve names through the node's resolver (no cluster DNS: scripts/k8s-test
  # gives them the Services' names as hostAliases); a copy, so a change of the host's file
  # during the run does not matter.
  grep -v '^search' /etc/resolv.conf >"$k/resolv.conf"
  cat >"$k/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $kubelet_healthz
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $ca}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupRoot: $cg_root
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$ctr_sock
podLogsDir: $run/pod-logs
resolvConf: $k/resolv.conf
serializeImagePulls: false
# Never garbage-collect the imported images (nothing could pull them back), never evict
# for a full disk of a CI machine: this node lives for one test.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
# Fast status for a test: probes and pod status reach the API server within seconds.
nodeStatusUpdateFrequency: 4s
syncFrequency: 10s
fileCheckFrequency: 20s
shutdownGracePeriod: 0s
containerLogMaxSize: 10Mi
EOF
  WAIT_LOG=$run/log/kubelet.log
  start_bg kubelet "$kbin/kubelet" --config="$k/config.yaml" --kubeconfig="$kubeconfig" \
    --root-dir="$k/root" --cert-dir="$k/pki" --hostname-override="$node_name" \
    --node-ip="$node_ip" --v="${K8S_VERBOSITY:-1}"
  wait_for kubelet 60 curl -fsS "http://127.0.0.1:$kubelet_healthz/healthz" || return 1
}

# node_kube_proxy_start KUBECONFIG: iptables mode; conntrack and localhost node ports
# left as they are (no host sysctl to change).
node_kube_proxy_start() {
  local kubeconfig=$1
  kube_proxy_healthz=$(free_port)
  cat >"$run/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $kubeconfig}
mode: iptables
hostnameOverride: $node_name
clusterCIDR: $pod_cidr
detectLocalMode: ClusterCIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$kube_proxy_healthz
metricsBindAddress: 127.0.0.1:$(free_port)
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false, minSyncPeriod: 0s, syncPeriod: 30s}
EOF
  WAIT_LOG=$run/log/kube-proxy.log
  start_bg kube-proxy "$kbin/kube-proxy" --config="$run/kube-proxy.yaml" --v="${K8S_VERBOSITY:-1}"
  wait_for kube-proxy 60 curl -fsS "http://127.0.0.1:$kube_proxy_healthz/healthz" || return 1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
