#!/usr/bin/env bash
# Runs every test against real PostgreSQL and Redis, starting throwaway
# servers if none answer. Each test makes and drops a database of its own.
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
export STRATA_TEST_DATABASE_URL="$STRATA_PG_SERVER/postgres"
export STRATA_TEST_REDIS_URL="$STRATA_REDIS_URL"
# A Redis server binary: one test runs (and kills) a Redis of its own.
command -v redis-server >/dev/null || apt_install redis-server
# PgBouncer: one test runs the server behind a PgBouncer of its own.
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || apt_install pgbouncer
export PATH="$PATH:/usr/sbin"
# The real WatermelonDB and RxDB clients the sync tests drive.
command -v npm >/dev/null || apt_install nodejs npm
(cd clients/node && npm ci --no-audit --no-fund --loglevel=error >&2)
# Headless Chromium and its WebDriver: the console's browser tests.
{ command -v chromium >/dev/null && command -v chromedriver >/dev/null; } \
    || apt_install chromium chromium-driver
echo "test: PostgreSQL $STRATA_PG_SERVER, Redis $STRATA_REDIS_URL" >&2
cargo test --workspace --locked "$@"
