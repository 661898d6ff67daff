#!/bin/sh
# Temporal's schema on PostgreSQL, with Temporal's own SQL tool: the steps docker-compose.yml runs
# (its temporal-schema service) and test/temporal-harness runs, so the two cannot drift. Idempotent:
# a database that exists is kept, and update-schema applies only the versions not yet applied.
#
#   POSTGRES_SEEDS=127.0.0.1 DB_PORT=5432 POSTGRES_USER=temporal POSTGRES_PWD=temporal \
#   SCHEMA_DIR=<go.temporal.io/server's schema/postgresql/v12> SQL_TOOL=temporal-sql-tool sh schema.sh
set -eu
: "${POSTGRES_SEEDS:?the PostgreSQL host}" "${DB_PORT:?its port}" "${POSTGRES_USER:?}" "${POSTGRES_PWD:?}" "${SCHEMA_DIR:?schema/postgresql/v12 of the server release}"
SQL_TOOL="${SQL_TOOL:-temporal-sql-tool}"

for pair in "temporal:temporal" "temporal_visibility:visibility"; do
  db="${pair%%:*}"
  dir="${pair#*:}"
  set -- "$SQL_TOOL" --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" --pw "$POSTGRES_PWD" --db "$db"
  "$@" create-database 2>/dev/null || echo "schema: database $db exists already"
  "$@" setup-schema -v 0.0
  "$@" update-schema -d "$SCHEMA_DIR/$dir/versioned"
done
