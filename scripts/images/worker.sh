#!/usr/bin/env bash
# Builds the worker's image from the repository's Dockerfile with podman, on the base image
# scripts/images/base.sh makes, tagged as deploy/worker/deployment.yaml names it, and saves it as an
# archive that `ctr images import` reads.
# As root. Usage: bash scripts/images/worker.sh OUT_ARCHIVE
set -euo pipefail
cd "$(dirname "$0")/../.."

BASE=localhost/node-base:22-bookworm
IMAGE="$(sed -n 's/^ *image: *\(registry\.internal\/bluegreen-worker:[^ ]*\)$/\1/p' deploy/worker/deployment.yaml)"
[ -n "$IMAGE" ] || { echo "worker.sh: no bluegreen-worker image in deploy/worker/deployment.yaml" >&2; exit 1; }
out="$1"

podman image exists "$BASE" || bash scripts/images/base.sh >/dev/null
# podman's default ulimits exceed this machine's hard limit on open files.
podman build --quiet --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --build-arg "BASE=$BASE" -f Dockerfile -t "$IMAGE" . >/dev/null
mkdir -p "$(dirname "$out")"
rm -f "$out"
podman save --quiet --format docker-archive --output "$out" "$IMAGE"
podman image prune --force >/dev/null
