# Routine tasks. `just --list` shows them all.

# Start the server with a demo tenant (starts PostgreSQL/Redis if needed).
dev:
    ./scripts/dev.sh

# Run every test against real PostgreSQL and Redis.
test *ARGS:
    ./scripts/test.sh {{ARGS}}

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --locked --all-targets -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# Apply shared migrations and bring every tenant up to date.
migrate:
    cargo run --locked --bin migrator -- shared up
    cargo run --locked --bin migrator -- tenants up --all

# Tenancy benchmark: provisioning, migrator, catalog size and requests/s
# spread over 1 to 1,000 tenants.
bench-tenancy tenants="1000":
    #!/usr/bin/env bash
    set -euo pipefail
    source scripts/services.sh
    export STRATA_TEST_DATABASE_URL="$STRATA_PG_SERVER/postgres" STRATA_TEST_REDIS_URL="$STRATA_REDIS_URL"
    cargo build --locked --release --bin migrator
    export MIGRATOR_BIN="$(realpath "${CARGO_TARGET_DIR:-target}")/release/migrator"
    BENCH_TENANTS={{tenants}} cargo bench --locked -p api --bench tenancy

# The tenancy benchmark at 10,000 tenants (some 80 minutes on 2 cores, about 18 GB).
bench-tenancy-10k:
    just bench-tenancy 10000

# CRM API benchmark: list/get/create requests/s, p99 and server memory.
bench-crud:
    #!/usr/bin/env bash
    set -euo pipefail
    source scripts/services.sh
    export STRATA_TEST_DATABASE_URL="$STRATA_PG_SERVER/postgres" STRATA_TEST_REDIS_URL="$STRATA_REDIS_URL"
    cargo build --locked --release --bin strata-server
    export SERVER_BIN="$(realpath "${CARGO_TARGET_DIR:-target}")/release/strata-server"
    cargo bench --locked -p api --bench crud

# Sync benchmark: push and pull records/s beside COPY, webhook deliveries/s and lag.
bench-sync:
    #!/usr/bin/env bash
    set -euo pipefail
    source scripts/services.sh
    export STRATA_TEST_DATABASE_URL="$STRATA_PG_SERVER/postgres" STRATA_TEST_REDIS_URL="$STRATA_REDIS_URL"
    cargo build --locked --release --bin strata-server
    export SERVER_BIN="$(realpath "${CARGO_TARGET_DIR:-target}")/release/strata-server"
    cargo bench --locked -p api --bench sync

# Soak test: 10 minutes of bounded sign-ins, pushes, pulls and reads on
# 127.0.0.1; fails on any error or if memory grows after warm-up.
# SOAK_SECONDS shortens it.
soak:
    #!/usr/bin/env bash
    set -euo pipefail
    source scripts/services.sh
    export STRATA_TEST_DATABASE_URL="$STRATA_PG_SERVER/postgres" STRATA_TEST_REDIS_URL="$STRATA_REDIS_URL"
    cargo build --locked --release --bin strata-server
    export SERVER_BIN="$(realpath "${CARGO_TARGET_DIR:-target}")/release/strata-server"
    cargo bench --locked -p api --bench soak

# Platform benchmark: cloning a tenant of 100,000 clients beside pg_dump | psql.
bench-platform:
    #!/usr/bin/env bash
    set -euo pipefail
    source scripts/services.sh
    export STRATA_TEST_DATABASE_URL="$STRATA_PG_SERVER/postgres" STRATA_TEST_REDIS_URL="$STRATA_REDIS_URL"
    cargo bench --locked -p api --bench platform

# Console benchmark: the sync-log page over 10,000 log lines, p50/p99 and weight.
bench-console:
    #!/usr/bin/env bash
    set -euo pipefail
    source scripts/services.sh
    export STRATA_TEST_DATABASE_URL="$STRATA_PG_SERVER/postgres" STRATA_TEST_REDIS_URL="$STRATA_REDIS_URL"
    cargo build --locked --release --bin strata-server
    export SERVER_BIN="$(realpath "${CARGO_TARGET_DIR:-target}")/release/strata-server"
    cargo bench --locked -p api --bench console

# Every benchmark.
bench: bench-tenancy bench-crud bench-sync bench-platform bench-console

# Stop the throwaway PostgreSQL and Redis that dev/test may have started.
stop-services:
    ./scripts/services.sh stop
