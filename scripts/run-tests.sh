#!/usr/bin/env bash
# The whole suite: type check, lint (the workflow-determinism rules live there), then every
# test/**/*.test.ts with Node's test runner. Extra arguments are passed to `node --test`.
set -euo pipefail
cd "$(dirname "$0")/.."

npx tsc -p tsconfig.json
npx eslint src test examples bench scripts
mapfile -t files < <(find test -name '*.test.ts' | sort)
# A hang fails (the bound applies to each test and to each file as a whole) instead of holding CI
# until its deadline.
exec node --import tsx --test --test-concurrency=1 --test-timeout=600000 "$@" "${files[@]}"
