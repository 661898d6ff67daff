#!/usr/bin/env bash
# The whole suite: type check and lint (the workflow-determinism rules live there) side by side,
# then every test/**/*.test.ts through scripts/run-suite.ts, several files at once as test/suite.ts
# says, ending with each file's wall and CPU time. Extra arguments go to run-suite.ts: options for
# `node --test`, or the files to run instead of all.
# One Kubernetes test control plane serves every test file that needs one
# (BLUEGREEN_TEST_CONTROL_PLANE), each file in namespaces of its own; it starts while the type
# check runs, and is stopped by PID when the suite ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
# The dependencies as package-lock.json has them, first (npm test's pretest does it too): run
# directly after the lock changed, a background build's setup would reinstall them under the type check.
if [ ! -d node_modules/@temporalio/worker ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
# The local platform's replicas run the detection API compiled: again if a source is newer.
bash scripts/setup.sh --detection-api

# Every temporary directory the suite's files make (a real node's containerd holds 1.5 GB of image
# layers) is under one of the run's own, removed when the suite ends, however it ends.
# Others may enter it, as /tmp: PostgreSQL (test/temporal-harness) runs as its own user.
TMPDIR="$(mktemp -d -t bluegreen-suite-XXXXXX)"
chmod 0755 "$TMPDIR"
export TMPDIR
plane_dir="$(mktemp -d)/control-plane"
node --import tsx test/k8s-harness/main.ts --dir "$plane_dir" > "${plane_dir%/*}/k8s-harness.log" 2>&1 &
plane_pid=$!
# Stops the control plane and removes the run's directory; a file killed past its bound may have
# left a real node's mounts in it, unmounted first (deepest first).
cleanup() {
  kill "$plane_pid" 2>/dev/null; wait "$plane_pid" 2>/dev/null || true
  awk -v d="$TMPDIR/" 'index($2, d) == 1 { print length($2), $2 }' /proc/mounts | sort -rn | cut -d' ' -f2- |
    xargs -r -d '\n' umount -l || true
  rm -rf --one-file-system "$TMPDIR" "${BLUEGREEN_COMPILED_SRC:-}"
}
trap cleanup EXIT

# Our own processes the files start (workers, the local platform) run transpiled JavaScript, not
# through tsx (a worker loaded in 1.9 CPU-seconds against 4.0): src/ transpiled once (esbuild,
# about a second) beside src/, so that the paths they derive from their own location hold.
# The type check below is what checks the types.
export BLUEGREEN_COMPILED_SRC="$PWD/.suite-build"
rm -rf "$BLUEGREEN_COMPILED_SRC"
mapfile -t sources < <(find src -name '*.ts' ! -name '*.d.ts')
npx esbuild "${sources[@]}" --outbase=src --outdir="$BLUEGREEN_COMPILED_SRC" --platform=node --format=esm \
  --target=node20 --log-level=warning

# The workflows bundled once for the whole suite (a few CPU-seconds each time), beside the checks:
# every worker the files start, in their processes or as processes of their own, loads this file.
export BLUEGREEN_WORKFLOW_BUNDLE="$TMPDIR/workflow-bundle.js"
node --import tsx scripts/bundle-workflows.ts --out "$BLUEGREEN_WORKFLOW_BUNDLE" > /dev/null & bundle_pid=$!

checks_started=$(date +%s)
# The files prettier formats (.prettierrc.json); `npm run format` writes them.
FORMATTED=('src/**/*.ts' 'test/**/*.ts' 'examples/**/*.ts' 'bench/**/*.ts' 'scripts/**/*.ts' 'bin/*.js')
npx tsc -p tsconfig.json & tsc_pid=$!
npx eslint src test examples bench scripts & lint_pid=$!
npx prettier --check --log-level warn "${FORMATTED[@]}" & format_pid=$!
tsc_code=0; lint_code=0; format_code=0
wait "$tsc_pid" || tsc_code=$?
wait "$lint_pid" || lint_code=$?
wait "$format_pid" || format_code=$?
wait "$bundle_pid" || { echo "bundling the workflows failed (scripts/bundle-workflows.ts)" >&2; exit 1; }
[ "$format_code" -eq 0 ] || echo "not formatted: npm run format writes the files above as prettier formats them" >&2
[ "$tsc_code" -eq 0 ] && [ "$lint_code" -eq 0 ] && [ "$format_code" -eq 0 ] ||
  { echo "type check (exit $tsc_code), lint (exit $lint_code) or format check (exit $format_code) failed" >&2; exit 1; }
echo "type check, lint and format check: $(( $(date +%s) - checks_started )) s"

for _ in $(seq 1 900); do
  [ -f "$plane_dir/plane.json" ] && break
  kill -0 "$plane_pid" 2>/dev/null || { cat "${plane_dir%/*}/k8s-harness.log" >&2; exit 1; }
  sleep 0.1
done
[ -f "$plane_dir/plane.json" ] || { echo "the test control plane did not start within 90 s" >&2; cat "${plane_dir%/*}/k8s-harness.log" >&2; exit 1; }
export BLUEGREEN_TEST_CONTROL_PLANE="$plane_dir"

# A hang fails (the bound applies to each test and to each file as a whole) instead of holding CI
# until its deadline; a file ended at its bound stops every process it started
# (test/helpers/stop-descendants-on-exit.mjs), so none outlives it to hold the runner open.
node --import tsx scripts/run-suite.ts "$@"
