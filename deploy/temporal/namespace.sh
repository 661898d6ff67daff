#!/bin/sh
# Registers a Temporal namespace (default: `default`, 3 days' retention) through the frontend's HTTP
# API, retrying while the server comes up; a namespace that exists already is left as it is.
# docker-compose.yml's temporal-namespace service and test/temporal-harness run it.
#
#   TEMPORAL_HTTP=http://127.0.0.1:7243 NAMESPACE=default sh namespace.sh
set -eu
: "${TEMPORAL_HTTP:?the frontend's HTTP address, such as http://temporal:7243}"
NAMESPACE="${NAMESPACE:-default}"
RETENTION="${RETENTION:-72h}"
seconds=$(( ${RETENTION%h} * 3600 ))

for _ in $(seq 1 60); do
  code=$(curl -s -o /tmp/namespace.$$ -w '%{http_code}' -X POST "$TEMPORAL_HTTP/api/v1/namespaces" \
    -H 'content-type: application/json' \
    -d "{\"namespace\":\"$NAMESPACE\",\"workflowExecutionRetentionPeriod\":\"${seconds}s\"}" || true)
  case "$code" in
    200) echo "namespace: $NAMESPACE registered"; rm -f /tmp/namespace.$$; exit 0 ;;
    409) echo "namespace: $NAMESPACE exists already"; rm -f /tmp/namespace.$$; exit 0 ;;
  esac
  sleep 1
done
echo "namespace: $NAMESPACE could not be registered at $TEMPORAL_HTTP (last answer $code: $(cat /tmp/namespace.$$ 2>/dev/null))" >&2
exit 1
