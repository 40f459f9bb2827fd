//! Connecting to PostgreSQL and Redis.

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use crate::config::DatabaseSettings;

/// Opens the connection pool described by `settings`.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let mut options = options(
        &settings.url,
        settings.pool_size,
        settings.acquire_timeout(),
    );
    let capacity = if settings.prepared_statements {
        settings.statement_cache
    } else {
        // Behind a transaction-pooling PgBouncer older than 1.21: no
        // statement outlives its transaction (PgBouncer runs
        // `DEALLOCATE ALL` after each one, see deploy/pgbouncer.ini).
        0
    };
    options.map_sqlx_postgres_opts(move |o| o.statement_cache_capacity(capacity));
    Database::connect(options).await
}

/// Opens a pool of at most `pool_size` connections to `url`.
pub async fn connect_url(
    url: &str,
    pool_size: u32,
    acquire_timeout: std::time::Duration,
) -> Result<DatabaseConnection, DbErr> {
    Database::connect(options(url, pool_size, acquire_timeout)).await
}

fn options(url: &str, pool_size: u32, acquire_timeout: std::time::Duration) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(pool_size)
        .min_connections(0)
        .acquire_timeout(acquire_timeout)
        .connect_timeout(std::time::Duration::from_secs(5))
        // A pooled connection is checked by use; a ping before every
        // acquire would add a round trip to each request.
        .test_before_acquire(false)
        .sqlx_logging(false);
    options
}
