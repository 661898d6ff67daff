#!/usr/bin/env bash
# npm run drill:NAME — one resilience drill of docs/RESULTS.md on its own, against real servers
# (the same tests `npm test` runs, chosen by file and name). Installs what it needs first.
#   worker-kill            the worker SIGKILLed in each phase, a new one started
#   temporal-restart       the Temporal dev server restarted (database file) during monitoring
#   prometheus-down        Prometheus stopped during monitoring: rolled back on measurement errors
#   kubernetes-api-faults  20 % transient API faults, then permanent 403/404/422, through a proxy
#   bad-input              thousands of generated specs, every invalid one rejected before any call
#   secrets                no credential (mTLS key, API key, Prometheus token, webhook) in histories
#   concurrent-deploys     a second deploy of a running app refused; different apps in parallel
#   abort-slow-write       an abort while a write is held 5 s (the switch, a canary's first weight, an HTTPRoute's): the old slot ends live
#   abort-sweep            aborts across Deploying and Switching, local platform and control plane
#   worker-down            abort with no worker: recorded (exit 5); the next worker restores traffic
#   control-plane-down     the kube-apiserver stopped 3 min during a rollback: rollback-stuck, then rolled back (npm test: 90 s)
#   approve-against-abort  both at the same instant, 100 trials: exactly one takes effect
#   workers-chaos          3 workers, 50 deployments, one worker SIGKILLed every 20 s: outcomes, cluster state, repeated writes
#   temporal-postgres      Temporal on PostgreSQL: deployments through a server restart and a database restart
#   release-controller     the GitOps controller: an abort annotation with no worker, the leader SIGKILLed, a 403 without each verb
#   train-worker-missing   a release train whose cluster's worker is missing 2 min: it waits, notifies once, goes on (npm test: 25 s)
#   train                  a release train's worker SIGKILLed during a soak, the server restarted during a wave, an abort mid-wave
set -euo pipefail
cd "$(dirname "$0")/.."

pattern=''
full=''
case "${1:-}" in
  worker-kill) files=(test/e2e/drills.e2e.test.ts) pattern='SIGKILLed' ;;
  temporal-restart) files=(test/e2e/drills.e2e.test.ts) pattern='Temporal server restarts' ;;
  prometheus-down) files=(test/e2e/drills.e2e.test.ts) pattern='Prometheus stops' ;;
  kubernetes-api-faults) files=(test/e2e/kubernetes-api-faults.e2e.test.ts) ;;
  bad-input) files=(test/deployment-spec/deployment-spec.property.test.ts) ;;
  # The histories checked are those of the drills run before it in the same file.
  secrets) files=(test/e2e/drills.e2e.test.ts) ;;
  concurrent-deploys) files=(test/client/cli.e2e.test.ts test/e2e/kubernetes-deployments.e2e.test.ts) pattern='refuses a second deploy|different apps' ;;
  abort-slow-write) files=(test/e2e/abort-drills.e2e.test.ts test/e2e/kubernetes-abort-drills.e2e.test.ts) pattern='held 5 s' ;;
  abort-sweep) files=(test/e2e/abort-drills.e2e.test.ts test/e2e/kubernetes-abort-drills.e2e.test.ts) pattern='sweeps the abort' ;;
  worker-down) files=(test/e2e/abort-drills.e2e.test.ts test/client/cli.e2e.test.ts) pattern='SIGKILLed, `bluegreen abort`|no worker running' ;;
  control-plane-down) files=(test/e2e/kubernetes-abort-drills.e2e.test.ts) pattern='minutes without an API server' full=1 ;;
  approve-against-abort) files=(test/workflows/blue-green-deployment.test.ts) pattern='approve against abort' ;;
  workers-chaos) files=(test/e2e/workers-chaos.e2e.test.ts) ;;
  temporal-postgres) files=(test/e2e/temporal-postgres.e2e.test.ts) ;;
  release-controller) files=(test/gitops/release-controller.e2e.test.ts) ;;
  train-worker-missing) files=(test/e2e/release-train.e2e.test.ts) pattern='worker is missing' full=1 ;;
  train) files=(test/e2e/release-train-drills.e2e.test.ts) ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

bash scripts/setup.sh
# A drill `npm test` shortens (to the least that still crosses its bounds) runs here at full length.
[ -n "$full" ] && export BLUEGREEN_DRILL_FULL_LENGTH=1
exec node --import tsx --import ./test/helpers/stop-descendants-on-exit.mjs --test --test-reporter=spec --test-concurrency=1 --test-timeout=600000 ${pattern:+--test-name-pattern="$pattern"} "${files[@]}"
