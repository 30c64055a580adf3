# shellcheck shell=bash
# A Docker engine of a test's own, sourced by scripts/compose-test and scripts/k8s-test:
# Debian's docker.io (installed when missing, root only), the pinned Compose v2 built from
# its Go module into the tools cache, dockerd started by PID on a private socket with its
# data root in the tools cache (images stay there between runs: compose-test builds the
# service images, k8s-test exports them), and its teardown: the daemon stopped by PID, its
# bridges and iptables rules removed, its exec root unmounted.
#
# Needs, from the caller: $run (a private temp dir), $tools (the tools cache), say().
# Sets: DOCKER_HOST (exported), $docker, $compose, $dockerd_pid.
compose_version=${COMPOSE_VERSION:-v2.40.3}
compose=$tools/compose-$compose_version/docker-compose
docker=/usr/bin/docker  # Debian's client, the same version as the daemon it talks to
export DOCKER_HOST=unix://$run/docker.sock DOCKER_BUILDKIT=0 COMPOSE_BAKE=false
dockerd_pid=""

docker_engine_packages() {
  local missing=() p
  for p in docker.io containerd runc debootstrap iptables; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || return 2
    # Debian starts the daemon it installs; the tests run their own.
    systemctl disable --now docker.service docker.socket containerd.service >/dev/null 2>&1 || true
  fi
}

docker_compose_tool() {
  [ -x "$compose" ] && return 0
  say "building Docker Compose $compose_version from its Go module (once; cached in $tools)"
  # The module has replace/exclude directives, so it cannot be `go install`ed: build it as
  # the main module from the module cache.
  local src
  src=$(GOFLAGS=-mod=mod go mod download -json "github.com/docker/compose/v2@$compose_version" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])') || return 1
  cp -r "$src" "$run/compose-src" && chmod -R u+w "$run/compose-src"
  mkdir -p "$(dirname "$compose")"
  (cd "$run/compose-src" && go build -trimpath \
    -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$compose_version" \
    -o "$compose" ./cmd) || return 1
}

# docker_engine_start [DOCKERD_FLAG...]: dockerd on $run/docker.sock, data root
# $tools/docker; the iptables and links from before are kept for docker_engine_stop.
docker_engine_start() {
  iptables-save >"$run/iptables.before" 2>/dev/null
  ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort >"$run/links.before"
  mkdir -p "$tools/docker"
  dockerd --data-root "$tools/docker" --exec-root "$run/exec" --pidfile "$run/dockerd.pid" \
    -H "$DOCKER_HOST" --log-level warn "$@" >"$run/dockerd.log" 2>&1 &
  dockerd_pid=$!
  local _
  for _ in $(seq 150); do $docker version >/dev/null 2>&1 && break; sleep 0.2; done
  if ! $docker version >/dev/null 2>&1; then
    say "dockerd did not start:" >&2; tail -20 "$run/dockerd.log" >&2; return 1
  fi
}

docker_engine_stop() {
  if [ -n "$dockerd_pid" ]; then
    kill "$dockerd_pid" 2>/dev/null
    local _
    for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$dockerd_pid" 2>/dev/null
    # dockerd stops its own containerd; anything it left (a shim) goes too.
    pkill -9 -f "containerd-shim.*$run" 2>/dev/null
    pkill -9 -f "containerd --config $run" 2>/dev/null
    dockerd_pid=""
  fi
  if [ -f "$run/links.before" ]; then
    local link
    for link in $(comm -13 "$run/links.before" <(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort)); do
      case "$link" in docker0|br-*|veth*) ip link delete "$link" 2>/dev/null ;; esac
    done
    rm -f "$run/links.before"
  fi
  if [ -s "$run/iptables.before" ]; then
    iptables-restore <"$run/iptables.before" 2>/dev/null
    rm -f "$run/iptables.before"
  fi
  umount -R "$run/exec" 2>/dev/null
  return 0
}
