#!/usr/bin/env bash
# Starts the server with a demo tenant: PostgreSQL and Redis (throwaway ones
# if none answer), the `strata` database, shared migrations, tenant `demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
DB="${STRATA_DATABASE:-strata}"
export STRATA__DATABASE__URL="$STRATA_PG_SERVER/$DB"
export STRATA__REDIS__URL="$STRATA_REDIS_URL"
export DATABASE_URL="$STRATA__DATABASE__URL"
# Accept the checked-in development secret (refused outside development mode).
export STRATA__SERVER__DEVELOPMENT="${STRATA__SERVER__DEVELOPMENT:-true}"

command -v psql >/dev/null || apt_install postgresql-client
cargo build --locked --bin migrator --bin strata-server
if ! psql "$STRATA_PG_SERVER/postgres" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
  psql "$STRATA_PG_SERVER/postgres" -qc "CREATE DATABASE $DB"
fi
target_dir="${CARGO_TARGET_DIR:-target}"
"$target_dir/debug/migrator" shared up
if "$target_dir/debug/migrator" tenant list --json | grep '"slug": "demo"' >/dev/null; then
  "$target_dir/debug/migrator" migrate-tenant demo
else
  "$target_dir/debug/migrator" tenant create demo --name "Demo Company" \
    --admin-email admin@demo.test --admin-password demo-password
fi

listen="${STRATA__SERVER__LISTEN:-127.0.0.1:8080}"
cat >&2 <<MSG

Strata is starting on http://$listen with tenant "demo"
(administrator admin@demo.test, password demo-password).
Console: http://demo.localhost:${listen##*:}/console/ (sign in as that administrator). Try:
  curl -s -H 'Host: demo.localhost' http://$listen/api/v1/tenant
  curl -s -H 'Host: demo.localhost' -H 'content-type: application/json' -d '{"email":"admin@demo.test","password":"demo-password"}' http://$listen/api/v1/auth/token
API reference: http://$listen/docs/   Migrator: DATABASE_URL=$DATABASE_URL $target_dir/debug/migrator --help

MSG
exec "$target_dir/debug/strata-server"
