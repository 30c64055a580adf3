# Kubernetes API-server suite (tests/k8s): both overlays applied server-side to a real
# kube-apiserver v1.33 + etcd on loopback (tests/k8s/cluster.py), idempotence, kubectl
# diff, and the refusals and consistency checks. The binaries are built from their Go
# modules by scripts/k8s-build into the tools cache outside git (~/.cache/polyshop/tools/
# k8s-<version>/bin), inside this target rather than in make deps, so a cold build's cost
# (~10 min on 2 cores) shows in this stage; cached, the stage takes seconds.
E2E_TARGETS += test-k8s-apiserver

.PHONY: test-k8s-apiserver
test-k8s-apiserver: ## the k8s overlays against a real kube-apiserver + etcd (builds them once, cached)
	@test -x $(PY) || { echo "test-k8s-apiserver: .venv missing, run make deps" >&2; exit 2; }
	@command -v kubectl >/dev/null || { echo "test-k8s-apiserver: kubectl missing" >&2; exit 2; }
	@bin=$$(scripts/k8s-build apiserver); \
	  cd tests/k8s && K8S_BIN=$$bin $(PY) -m pytest -q $(K8S_ARGS)

# make k8s-test (scripts/k8s-test): the dev overlay on a real one-node cluster started here
# (the binaries above plus kube-controller-manager, kube-scheduler, kubelet, kube-proxy;
# Debian's containerd, the bridge CNI plugin), the images compose-test builds; pods Ready
# through their probes, the seed API through the gateway Service, a killed pod and a rolling
# update without a failed request, Redis restarted on its PVC; all torn down. Root only;
# not part of make test (CI runs it after compose-test).
.PHONY: k8s-test
k8s-test: deps-python ## the dev overlay on a real one-node cluster (containerd, kubelet, kube-proxy): probes, seed API, pod kill, rollout, Redis restart
	@scripts/k8s-test

# The Python of make k8s-test (its checks, the pause-image packer, the iptables sweep, the
# API-server wrapper): ruff with the gateway's settings, as lint-python does for the suites.
LINT_TARGETS += lint-k8s-test
K8S_TEST_PY := tests/k8s-cluster scripts/k8s-node/apiserver.py scripts/k8s-node/iptables-sweep.py \
  scripts/k8s-node/oci-image.py

.PHONY: lint-k8s-test
lint-k8s-test:
	@$(VENV)/bin/ruff check $(RUFF_CFG) $(K8S_TEST_PY)
	@$(VENV)/bin/ruff format $(RUFF_CFG) --check $(K8S_TEST_PY)
	@echo "lint-k8s-test: clean"
