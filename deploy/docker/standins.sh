#!/usr/bin/env bash
# Local stand-ins for every base image that the Dockerfiles and docker-compose.yml name, so
# `docker compose up --build` runs here exactly as users run it, on a machine that can reach
# package registries but no container registry. Nothing is pulled: each stand-in is made from
# a debootstrapped Debian bookworm, this machine's own Go, Rust and Python toolchains, and
# Debian's packages, then tagged with the name the files use. The Dockerfiles and the compose
# file stay exactly what users run; only this script knows the images are stand-ins.
#
# Usage: standins.sh            (needs DOCKER_HOST pointing at a running daemon, and root)
# Images already present are kept (a local cache between runs); STANDINS_REBUILD=1 rebuilds.
set -euo pipefail
cd "$(dirname "$0")/../.."
docker=${DOCKER:-docker}
cache=${POLYSHOP_TOOLS:-$HOME/.cache/polyshop/tools}/standins
mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

have() { [ "${STANDINS_REBUILD:-0}" != 1 ] && $docker image inspect "$1" >/dev/null 2>&1; }
say() { printf 'standins: %s\n' "$*"; }
# build TAG...: a Dockerfile from stdin, the context $work/ctx (empty unless prepared).
made=0
build() {
  local first=$1 extra=()
  made=1
  for tag in "${@:2}"; do extra+=(-t "$tag"); done
  mkdir -p "$work/ctx"
  DOCKER_BUILDKIT=0 $docker build -q -t "$first" "${extra[@]}" -f - "$work/ctx" >/dev/null
  rm -rf "$work/ctx"
}

# --- debian:bookworm, debian:bookworm-slim ----------------------------------------------
# A debootstrap (minbase) of bookworm from the Debian mirror apt already uses, trimmed like
# the slim images (no docs, man pages, locales or apt lists). The machine reaches registries
# through a proxy whose CA only the host's bundle holds, so the stand-ins carry that bundle:
# builds inside them download crates, modules and wheels as a user's build would.
rootfs=$cache/bookworm
ensure_rootfs() {
  if [ ! -x "$rootfs/bin/sh" ]; then
    say "debootstrap bookworm (minbase) into $rootfs"
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" \
      http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1
  fi
  # The certificates of the host's bundle that Debian's lacks (the registry proxy's CA)
  # become local CAs of the rootfs, so OpenSSL's bundle and its hashed directory both
  # trust them, for every tool (apt, curl, pip, cargo, go).
  python3 - "$rootfs" <<'PY'
import re, sys
pem = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
def certs(path):
    return pem.findall(open(path).read())
root = sys.argv[1]
debian = set(certs(f"{root}/etc/ssl/certs/ca-certificates.crt"))
extra = [c for c in certs("/etc/ssl/certs/ca-certificates.crt") if c not in debian]
for i, c in enumerate(extra):
    open(f"{root}/usr/local/share/ca-certificates/host-{i}.crt", "w").write(c + "\n")
PY
  chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
  # pip trusts its own bundle (certifi), not the system's; point it at the system one, as
  # this machine's /etc/pip.conf does.
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$rootfs/etc/pip.conf"
}
if ! have debian:bookworm-slim; then
  ensure_rootfs
  say "debian:bookworm-slim, debian:bookworm"
  tar -C "$rootfs" \
    --exclude=./usr/share/doc --exclude=./usr/share/man --exclude=./usr/share/info \
    --exclude=./usr/share/locale --exclude='./var/lib/apt/lists/*' --exclude='./var/cache/apt/*' \
    --exclude=./proc --exclude=./sys --exclude=./dev \
    -c . | $docker import --change 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
  $docker tag debian:bookworm-slim debian:bookworm
fi

# --- golang:1.26-bookworm ----------------------------------------------------------------
# Debian + this machine's Go (its GOROOT, the same version go.mod asks for) where the
# official image keeps it, with the official image's environment.
if ! have golang:1.26-bookworm; then
  goroot=$(go env GOROOT)
  say "golang:1.26-bookworm from $goroot ($(go env GOVERSION))"
  tar -C "$goroot" --transform 's,^\.,usr/local/go,' --exclude=./test --exclude=./doc -c . |
    $docker import - polyshop-standin/go-toolchain >/dev/null
  build golang:1.26-bookworm <<'EOF'
FROM debian:bookworm
COPY --from=polyshop-standin/go-toolchain /usr/local/go /usr/local/go
ENV GOLANG_VERSION=1.26 GOTOOLCHAIN=local GOPATH=/go PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /go
EOF
fi

# --- rust:1.95-slim-bookworm -------------------------------------------------------------
# Debian + this machine's Rust toolchain (rustc, cargo, the std library; no docs) + the C
# linker the official image has (gcc, libc6-dev), with the official CARGO_HOME and PATH.
if ! have rust:1.95-slim-bookworm; then
  sysroot=$(rustc --print sysroot)
  say "rust:1.95-slim-bookworm from $sysroot ($(rustc --version))"
  tar -C "$sysroot" --transform 's,^\.,usr/local/rust,' --exclude=./share -c . |
    $docker import - polyshop-standin/rust-toolchain >/dev/null
  build rust:1.95-slim-bookworm <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null \
    && rm -rf /var/lib/apt/lists/*
COPY --from=polyshop-standin/rust-toolchain /usr/local/rust /usr/local/rust
ENV RUST_VERSION=1.95.0 CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EOF
fi

# --- python:3.11-slim-bookworm -----------------------------------------------------------
# Debian + this machine's CPython 3.11 under /usr/local, as the official image has it
# (the interpreter, its shared library and the standard library; no test suite and no
# third-party packages: venv's ensurepip carries pip).
if ! have python:3.11-slim-bookworm; then
  prefix=$(python3 -c 'import sys; print(sys.base_prefix)')
  say "python:3.11-slim-bookworm from $prefix ($(python3 --version))"
  (cd "$prefix" && tar --exclude='./lib/python3.11/test' --exclude='./lib/python3.11/site-packages/*' \
      --exclude='./lib/python3.11/idlelib' --exclude='./lib/python3.11/tkinter' \
      --exclude='./lib/python3.11/lib-dynload/_tkinter*' --exclude='./lib/python3.11/config-3.11-*' \
      --exclude='*/__pycache__' --transform 's,^\.,usr/local,' \
      -c ./lib ./include ./bin/python3.11) |
    $docker import - polyshop-standin/python-runtime >/dev/null
  build python:3.11-slim-bookworm <<'EOF'
FROM debian:bookworm-slim
# The shared libraries the interpreter's extension modules use, as the official image has.
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends libffi8 libsqlite3-0 \
        libssl3 libncursesw6 libnsl2 libuuid1 libbz2-1.0 liblzma5 libreadline8 >/dev/null \
    && rm -rf /var/lib/apt/lists/*
COPY --from=polyshop-standin/python-runtime /usr/local /usr/local
# The interpreter was linked with its build prefix as RUNPATH; the loader cache finds it here.
RUN echo /usr/local/lib > /etc/ld.so.conf.d/python.conf && ldconfig \
    && ln -s python3.11 /usr/local/bin/python3 && ln -s python3.11 /usr/local/bin/python \
    && python -c 'import ssl, sqlite3, venv, ctypes, lzma, bz2, uuid, readline'
ENV PYTHON_VERSION=3.11 LANG=C.UTF-8
CMD ["python3"]
EOF
fi

# --- gcr.io/distroless/static-debian12:nonroot, gcr.io/distroless/cc-debian12:nonroot --------
# What distroless puts in them: no shell, no package manager; passwd/group with root,
# nobody and nonroot (65532), CA certificates, /tmp; cc adds glibc and libgcc_s from the
# same Debian.
if ! have gcr.io/distroless/cc-debian12:nonroot; then
  ensure_rootfs
  d=$work/distroless
  mkdir -p "$d/etc/ssl/certs" "$d/tmp" "$d/home/nonroot" "$d/lib/x86_64-linux-gnu" "$d/lib64"
  chmod 1777 "$d/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$d/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$d/etc/group"
  cp "$rootfs/etc/ssl/certs/ca-certificates.crt" "$d/etc/ssl/certs/"
  cp "$rootfs/etc/os-release" "$d/etc/" 2>/dev/null || cp "$rootfs/usr/lib/os-release" "$d/etc/"
  say "gcr.io/distroless/static-debian12:nonroot"
  tar -C "$d" --owner=0 --group=0 -c . |
    $docker import --change 'USER 65532' --change 'WORKDIR /home/nonroot' - \
      gcr.io/distroless/static-debian12:nonroot >/dev/null
  for lib in libc.so.6 libm.so.6 libgcc_s.so.1 libdl.so.2 libpthread.so.0 librt.so.1 ld-linux-x86-64.so.2; do
    cp -L "$rootfs/lib/x86_64-linux-gnu/$lib" "$d/lib/x86_64-linux-gnu/"
  done
  ln -sf /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$d/lib64/ld-linux-x86-64.so.2"
  say "gcr.io/distroless/cc-debian12:nonroot"
  tar -C "$d" --owner=0 --group=0 -c . |
    $docker import --change 'USER 65532' --change 'WORKDIR /home/nonroot' - \
      gcr.io/distroless/cc-debian12:nonroot >/dev/null
fi

# --- redis:7.4-alpine ----------------------------------------------------------------------
# Debian's redis-server (7.0) with the official image's shape: /data, the redis user, and
# protected mode off by default (the official image compiles it off: inside a container
# network the other containers are the clients). Its entrypoint, like the official one,
# runs redis-server when the first argument is an option or a .conf file (Kubernetes
# `args: ["--requirepass", ...]` replaces CMD). The label marks this revision of the
# stand-in: a cached older one is rebuilt.
redis_rev=2
if ! have redis:7.4-alpine ||
  [ "$($docker image inspect -f '{{index .Config.Labels "polyshop.standin"}}' redis:7.4-alpine)" != "$redis_rev" ]; then
  say "redis:7.4-alpine from Debian's redis-server"
  mkdir -p "$work/ctx"
  cat >"$work/ctx/entrypoint.sh" <<'EOF'
#!/bin/sh
case "$1" in -*|*.conf) set -- redis-server "$@" ;; esac
if [ "$1" = redis-server ]; then shift; exec redis-server "$@" --protected-mode no; fi
exec "$@"
EOF
  chmod +x "$work/ctx/entrypoint.sh"
  build redis:7.4-alpine <<EOF
FROM debian:bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown redis:redis /data
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
LABEL polyshop.standin=$redis_rev
VOLUME /data
WORKDIR /data
USER redis
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
EOF
fi

# --- prom/prometheus:v2.53.3 -------------------------------------------------------------
# Debian's prometheus (2.42), at /bin/prometheus as in the official image (usrmerge), with its user and data directory, plus
# the wget the official busybox image has (the compose healthcheck uses it).
if ! have prom/prometheus:v2.53.3; then
  say "prom/prometheus:v2.53.3 from Debian's prometheus"
  build prom/prometheus:v2.53.3 <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus wget >/dev/null \
    && rm -rf /var/lib/apt/lists/* && test -x /bin/prometheus \
    && mkdir -p /prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
EOF
fi

# --- oliver006/redis_exporter:v1.67.0-alpine -------------------------------------------------
# Debian's prometheus-redis-exporter (1.45) at the official image's path, with wget.
if ! have oliver006/redis_exporter:v1.67.0-alpine; then
  say "oliver006/redis_exporter:v1.67.0-alpine from Debian's prometheus-redis-exporter"
  build oliver006/redis_exporter:v1.67.0-alpine <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus-redis-exporter wget >/dev/null \
    && rm -rf /var/lib/apt/lists/* && ln -s /usr/bin/prometheus-redis-exporter /redis_exporter
USER nobody
EXPOSE 9121
ENTRYPOINT ["/redis_exporter"]
EOF
fi

# --- locustio/locust:2.47.0 ----------------------------------------------------------------
# The python stand-in + Locust at the version load-tests/requirements.txt pins (every
# dependency pinned by that file), as the official image runs it: user locust, entrypoint
# locust.
if ! have locustio/locust:2.47.0; then
  say "locustio/locust:2.47.0 from the python stand-in + load-tests/requirements.txt"
  mkdir -p "$work/ctx"
  cp load-tests/requirements.txt "$work/ctx/"
  build locustio/locust:2.47.0 <<'EOF'
FROM python:3.11-slim-bookworm
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/locust && /opt/locust/bin/pip install -q --no-cache-dir \
        --disable-pip-version-check -r /tmp/requirements.txt \
    && useradd --create-home --uid 1000 locust
ENV PATH=/opt/locust/bin:$PATH
USER locust
WORKDIR /home/locust
EXPOSE 8089 5557
ENTRYPOINT ["locust"]
EOF
fi

# Grafana: no stand-in. Its server is not installable here, so CI never starts it (README).
# Only after building a stand-in: a prune also drops the untagged build-stage layers of the
# service images, the cache their next build (compose-test, then k8s-test) would hit.
if [ "$made" = 1 ]; then
  $docker rmi polyshop-standin/go-toolchain polyshop-standin/rust-toolchain \
    polyshop-standin/python-runtime >/dev/null 2>&1 || true
  $docker image prune -f >/dev/null
fi
say "ready: $($docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -v '^polyshop/' | tr '\n' ' ')"
