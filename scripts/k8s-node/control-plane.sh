# shellcheck shell=bash
# The control plane of scripts/k8s-test, sourced by it: etcd + kube-apiserver on loopback
# as tests/k8s/cluster.py starts them (its PKI, token file and per-component kubeconfigs;
# apiserver.py adds the kubelet client certificate and InternalIP preference that `kubectl
# logs/exec` need), then kube-controller-manager and kube-scheduler, each with its own
# identity (Node and RBAC authorizers: the kubelet is system:node:<name>, kube-proxy
# system:kube-proxy, ...).
#
# Needs: $run, $root, $kbin, start_bg, wait_for, free_port, say.
# Sets: $apiserver_url, $admin_kubeconfig, $cp_ca, $service_cidr, $kubeconfig_<component>.

cp_apiserver_start() {
  python3 "$root/scripts/k8s-node/apiserver.py" --bin "$kbin" --dir "$run/apiserver" \
    --env "$run/apiserver.env" >"$run/log/apiserver-start.log" 2>&1 ||
    { tail -40 "$run/log/apiserver-start.log" >&2; return 1; }
  # shellcheck disable=SC1091
  . "$run/apiserver.env"
  # The teardown stops them by these PIDs, after everything of the node.
  echo "$K8S_PID_ETCD" >"$run/pids/etcd" && echo etcd >>"$run/pids/order"
  echo "$K8S_PID_KUBE_APISERVER" >"$run/pids/kube-apiserver" && echo kube-apiserver >>"$run/pids/order"
  ln -sf "$run/apiserver/logs/etcd.log" "$run/log/etcd.log"
  ln -sf "$run/apiserver/logs/kube-apiserver.log" "$run/log/kube-apiserver.log"
  apiserver_url=$K8S_SERVER
  admin_kubeconfig=$K8S_KUBECONFIG_ADMIN
  cp_ca=$K8S_CA
  service_cidr=$K8S_SERVICE_CIDR
}

cp_controllers_start() {
  local cm_port sched_port
  cm_port=$(free_port) sched_port=$(free_port)
  start_bg kube-controller-manager "$kbin/kube-controller-manager" \
    --kubeconfig="$K8S_KUBECONFIG_KUBE_CONTROLLER_MANAGER" \
    --authentication-kubeconfig="$K8S_KUBECONFIG_KUBE_CONTROLLER_MANAGER" \
    --authorization-kubeconfig="$K8S_KUBECONFIG_KUBE_CONTROLLER_MANAGER" \
    --bind-address=127.0.0.1 --secure-port="$cm_port" --leader-elect=false \
    --use-service-account-credentials=true --root-ca-file="$cp_ca" \
    --service-account-private-key-file="$K8S_SA_KEY" --service-cluster-ip-range="$service_cidr" \
    --profiling=false --v="${K8S_VERBOSITY:-1}"
  start_bg kube-scheduler "$kbin/kube-scheduler" \
    --kubeconfig="$K8S_KUBECONFIG_KUBE_SCHEDULER" \
    --authentication-kubeconfig="$K8S_KUBECONFIG_KUBE_SCHEDULER" \
    --authorization-kubeconfig="$K8S_KUBECONFIG_KUBE_SCHEDULER" \
    --bind-address=127.0.0.1 --secure-port="$sched_port" --leader-elect=false \
    --profiling=false --v="${K8S_VERBOSITY:-1}"
  WAIT_LOG=$run/log/kube-controller-manager.log
  wait_for kube-controller-manager 60 curl -fsSk "https://127.0.0.1:$cm_port/healthz" || return 1
  WAIT_LOG=$run/log/kube-scheduler.log
  wait_for kube-scheduler 60 curl -fsSk "https://127.0.0.1:$sched_port/healthz" || return 1
}
