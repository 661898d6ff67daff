#!/usr/bin/env bash
# The whole suite: type check, lint (the workflow-determinism rules live there), then every
# test/**/*.test.ts with Node's test runner. Extra arguments are passed to `node --test`.
# One Kubernetes test control plane serves every test file that needs one
# (BLUEGREEN_TEST_CONTROL_PLANE); it is stopped by PID when the suite ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

npx tsc -p tsconfig.json
npx eslint src test examples bench scripts
mapfile -t files < <(find test -name '*.test.ts' | sort)

plane_dir="$(mktemp -d)/control-plane"
node --import tsx test/k8s-harness/main.ts --dir "$plane_dir" > "${plane_dir%/*}/k8s-harness.log" 2>&1 &
plane_pid=$!
trap 'kill "$plane_pid" 2>/dev/null; wait "$plane_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  [ -f "$plane_dir/plane.json" ] && break
  kill -0 "$plane_pid" 2>/dev/null || { cat "${plane_dir%/*}/k8s-harness.log" >&2; exit 1; }
  sleep 0.1
done
[ -f "$plane_dir/plane.json" ] || { echo "the test control plane did not start within 60 s" >&2; cat "${plane_dir%/*}/k8s-harness.log" >&2; exit 1; }
export BLUEGREEN_TEST_CONTROL_PLANE="$plane_dir"

# A hang fails (the bound applies to each test and to each file as a whole) instead of holding CI
# until its deadline; a file ended at its bound stops every process it started
# (test/helpers/stop-descendants-on-exit.mjs), so none outlives it to hold the runner open.
node --import tsx --import ./test/helpers/stop-descendants-on-exit.mjs --test --test-concurrency=1 --test-timeout=600000 "$@" "${files[@]}"
