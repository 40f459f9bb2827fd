//! Connecting to PostgreSQL and Redis.

use sea_orm::sqlx::postgres::PgPoolOptions;
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, SqlxPostgresConnector};

use crate::config::DatabaseSettings;
use crate::registry::Tenant;

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
    // Custom plans: a write's statement text is the same for every tenant
    // (it follows `search_path`), and a generic plan made while a tenant
    // was small is kept while the tenant grows (until autovacuum's next
    // ANALYZE). A create's tombstone lookup planned as a scan of a 60-row
    // change log went on scanning it at 10,000 rows (creates at half
    // speed, falling); a custom plan sees the table's current size.
    // PgBouncer drops the option; its unnamed statements are custom anyway.
    options.map_sqlx_postgres_opts(move |o| {
        o.statement_cache_capacity(capacity)
            .options([("plan_cache_mode", "force_custom_plan")])
    });
    Database::connect(options).await
}

/// Pools for reads that name a tenant's schema, apart from the pool for
/// writes: each tenant tends to one of them, and spills over to another
/// when its own has no idle connection. A connection keeps the prepared
/// statements and catalog entries of every tenant it has served; under
/// load that soon means every tenant, so a few warm connections serve
/// requests spread over many tenants best. Their connections plan generic
/// plans from a statement's first execution: a plan is made once per
/// tenant and connection, not five times.
pub struct ReadPools {
    pools: Vec<DatabaseConnection>,
}

impl ReadPools {
    /// Opens `settings.read_pools` pools (connections are made on demand).
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, DbErr> {
        let mut pools = Vec::with_capacity(settings.read_pools as usize);
        for _ in 0..settings.read_pools {
            let mut options = options(
                &settings.url,
                settings.read_pool_size,
                settings.acquire_timeout(),
            );
            let capacity = settings.statement_cache;
            let mode = settings.read_plan_cache_mode.clone();
            options.map_sqlx_postgres_opts(move |o| {
                o.statement_cache_capacity(capacity)
                    .options([("plan_cache_mode", mode.as_str())])
            });
            pools.push(Database::connect(options).await?);
        }
        Ok(Self { pools })
    }

    /// The pool for `tenant`: its own, unless that one has no idle
    /// connection left while another has.
    pub fn for_tenant(&self, tenant: &Tenant) -> &DatabaseConnection {
        let own = (tenant.id().as_u128() % self.pools.len() as u128) as usize;
        let idle = |db: &DatabaseConnection| {
            let pool = db.get_postgres_connection_pool();
            (
                pool.num_idle(),
                pool.size() < pool.options().get_max_connections(),
            )
        };
        match idle(&self.pools[own]) {
            (0, false) => self
                .pools
                .iter()
                .max_by_key(|db| idle(db).0)
                .filter(|db| idle(db).0 > 0)
                .unwrap_or(&self.pools[own]),
            _ => &self.pools[own],
        }
    }
}

/// A pool like `db`'s whose connections each serve one use and are then
/// closed: for making and migrating schemas. A PostgreSQL backend keeps
/// every PL/pgSQL function it has run, with its plans, until it ends
/// (migrations and seed rows run each tenant's own: some 1.6 MB a tenant),
/// and every backend walks all the plans it holds on each invalidation
/// message that DDL anywhere sends. A pooled connection that made 2,500
/// tenants held 1.1 GB, and making the next tenant took seconds.
pub fn one_use(db: &DatabaseConnection) -> DatabaseConnection {
    let pool = db.get_postgres_connection_pool();
    let once = PgPoolOptions::new()
        .max_connections(pool.options().get_max_connections())
        .min_connections(0)
        .acquire_timeout(pool.options().get_acquire_timeout())
        .test_before_acquire(false)
        .after_release(|_, _| Box::pin(async { Ok(false) }))
        .connect_lazy_with((*pool.connect_options()).clone());
    SqlxPostgresConnector::from_sqlx_postgres_pool(once)
}

/// One connection like `db`'s, kept across uses until the returned
/// connection is closed: for a run of schema work that shares a backend for
/// a while and then lets it go (see [`one_use`] for why not for long).
pub fn one_for_a_while(db: &DatabaseConnection) -> DatabaseConnection {
    let pool = db.get_postgres_connection_pool();
    let own = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(pool.options().get_acquire_timeout())
        .connect_lazy_with((*pool.connect_options()).clone());
    SqlxPostgresConnector::from_sqlx_postgres_pool(own)
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
