#!/usr/bin/env bash
# Starts the local PostgreSQL 15 cluster (Debian's postgresql and postgresql-15-postgis-3) and
# makes a test role and database with PostGIS, for the history store's PostGIS tests. Prints the
# line to eval: export FW_TEST_PG="PG:..." (the tests read it; without it they skip PostGIS).
# Idempotent. CI runs it from .ci/run; on a workstation: eval "$(bash scripts/start_postgres.sh)".
set -euo pipefail
VER=15
DB=${FW_TEST_PG_DB:-farmwatch_test}
if ! command -v pg_ctlcluster >/dev/null; then
  echo "start_postgres: PostgreSQL is not installed (scripts/bootstrap.sh --postgres)" >&2
  exit 1
fi
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
if ! pg_lsclusters -h | grep -q "^$VER  *main"; then
  as_root pg_createcluster "$VER" main >&2
fi
if ! pg_lsclusters -h | grep -q "^$VER  *main  *[0-9]*  *online"; then
  as_root pg_ctlcluster "$VER" main start >&2
fi
for _ in $(seq 1 60); do
  as_postgres pg_isready -q && break
  sleep 0.5
done
as_postgres psql -qtAc "SELECT 1 FROM pg_roles WHERE rolname='fw'" | grep -q 1 ||
  as_postgres psql -qc "CREATE ROLE fw LOGIN SUPERUSER PASSWORD 'fw'" >&2
as_postgres psql -qtAc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1 ||
  as_postgres createdb -O fw "$DB" >&2
as_postgres psql -d "$DB" -qc "CREATE EXTENSION IF NOT EXISTS postgis" >&2
echo "export FW_TEST_PG=\"PG:host=localhost dbname=$DB user=fw password=fw\""
