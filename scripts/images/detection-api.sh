#!/usr/bin/env bash
# Builds the reference detection API's image from examples/detection-api/Dockerfile with podman, on
# the base image scripts/images/base.sh makes, and tags it at the versions the real node's tests
# deploy. Saved as one archive that `ctr images import` reads (all tags in it).
#  - good versions: the image as built;
#  - a faulty version, whose API answers 500 to every request (FAULT_ERROR_RATE=1);
#  - a crash-looping version, whose process exits with status 70 thirty seconds after each start
#    (FAULT_CRASH_AFTER_SECONDS=30): Ready first, then restarted by the kubelet, again and again.
# The faults are the service's own fault switches (examples/detection-api/src/config.ts), set in a
# layer on top of the one build, so every version runs the same code.
# As root. Usage: bash scripts/images/detection-api.sh OUT_ARCHIVE
set -euo pipefail
cd "$(dirname "$0")/../.."

REPOSITORY=registry.internal/detection-api
GOOD_VERSIONS=(v2.1.0 v2.2.0 v2.3.0)
FAULTY_VERSION=v2.4.0-errors
CRASHING_VERSION=v2.4.0-crashloop
BASE=localhost/node-base:22-bookworm
out="$1"
# podman's default ulimits exceed this machine's hard limit on open files.
limits=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

podman image exists "$BASE" || bash scripts/images/base.sh >/dev/null
podman build --quiet "${limits[@]}" --build-arg "BASE=$BASE" -f examples/detection-api/Dockerfile -t "$REPOSITORY:build" . >/dev/null

tags=()
for version in "${GOOD_VERSIONS[@]}"; do
  podman tag "$REPOSITORY:build" "$REPOSITORY:$version"
  tags+=("$REPOSITORY:$version")
done
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
with_fault() {
  printf 'FROM %s\nENV %s\n' "$REPOSITORY:build" "$2" | podman build --quiet "${limits[@]}" -t "$REPOSITORY:$1" -f - "$context" >/dev/null
  tags+=("$REPOSITORY:$1")
}
with_fault "$FAULTY_VERSION" FAULT_ERROR_RATE=1
with_fault "$CRASHING_VERSION" FAULT_CRASH_AFTER_SECONDS=30

mkdir -p "$(dirname "$out")"
rm -f "$out"
podman save --quiet --multi-image-archive --format docker-archive --output "$out" "${tags[@]}"
podman image prune --force >/dev/null
