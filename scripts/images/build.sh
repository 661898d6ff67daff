#!/usr/bin/env bash
# Builds one of the images the real node's tests run, with podman, from the repository's own
# Dockerfile, on the base image scripts/images/base.sh makes (made first if podman lacks it), and
# saves it as one archive that `ctr images import` reads (every tag in it).
#  - detection-api: examples/detection-api/Dockerfile, tagged at the versions the tests deploy:
#    - good versions: the image as built;
#    - a faulty version, whose API answers 500 to every request (FAULT_ERROR_RATE=1);
#    - a crash-looping version, whose process exits with status 70 thirty seconds after each start
#      (FAULT_CRASH_AFTER_SECONDS=30): Ready first, then restarted by the kubelet, again and again;
#    - a version that degrades: healthy for its first 40 s (its smoke suite passes), then half its
#      API requests answer 500 (FAULT_AFTER_SECONDS=40, FAULT_ERROR_RATE=0.5), for the SLO monitor.
#    The faults are the service's own switches (examples/detection-api/src/config.ts), set in a
#    layer on top of the one build, so every version runs the same code.
#  - worker: Dockerfile, tagged as deploy/worker/deployment.yaml names it.
# As root. Usage: bash scripts/images/build.sh detection-api|worker OUT_ARCHIVE
set -euo pipefail
cd "$(dirname "$0")/../.."

BASE=localhost/node-base:22-bookworm
image="$1"
out="$2"
# podman's default ulimits exceed this machine's hard limit on open files.
build=(podman build --quiet --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

# A Dockerfile build fetches from the npm registry, through this machine's proxy; npm sometimes
# dies there ("Exit handler never called!"). One more try before the build counts as failed.
build_from() {
  "${build[@]}" "$@" >/dev/null || { echo "build.sh: $image: the build failed; trying once more" >&2; "${build[@]}" "$@" >/dev/null; }
}

podman image exists "$BASE" || bash scripts/images/base.sh >/dev/null
tags=()
case "$image" in
  detection-api)
    repository=registry.internal/detection-api
    build_from --build-arg "BASE=$BASE" -f examples/detection-api/Dockerfile -t "$repository:build" .
    for version in v2.1.0 v2.2.0 v2.3.0; do
      podman tag "$repository:build" "$repository:$version"
      tags+=("$repository:$version")
    done
    context="$(mktemp -d)"
    trap 'rm -rf "$context"' EXIT
    for fault in v2.4.0-errors=FAULT_ERROR_RATE=1 v2.4.0-crashloop=FAULT_CRASH_AFTER_SECONDS=30 \
      'v2.4.0-degrades=FAULT_AFTER_SECONDS=40 FAULT_ERROR_RATE=0.5'; do
      printf 'FROM %s\nENV %s\n' "$repository:build" "${fault#*=}" | "${build[@]}" -t "$repository:${fault%%=*}" -f - "$context" >/dev/null
      tags+=("$repository:${fault%%=*}")
    done ;;
  worker)
    tag="$(sed -n 's/^ *image: *\(registry\.internal\/bluegreen-worker:[^ ]*\)$/\1/p' deploy/worker/deployment.yaml)"
    [ -n "$tag" ] || { echo "build.sh: no bluegreen-worker image in deploy/worker/deployment.yaml" >&2; exit 1; }
    build_from --build-arg "BASE=$BASE" -f Dockerfile -t "$tag" .
    tags+=("$tag") ;;
  *) echo "build.sh: no image '$image' (detection-api or worker)" >&2; exit 2 ;;
esac

mkdir -p "$(dirname "$out")"
rm -f "$out"
podman save --quiet --multi-image-archive --format docker-archive --output "$out" "${tags[@]}"
podman image prune --force >/dev/null
