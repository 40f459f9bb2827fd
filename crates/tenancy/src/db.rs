//! Connecting to PostgreSQL and Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use sea_orm::sqlx::postgres::{PgConnection, PgPoolOptions};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, SqlxPostgresConnector};

use crate::config::DatabaseSettings;
use crate::registry::Tenant;

/// `application_name` of the server's write connections (and of the
/// one-use connections made from them), as `pg_stat_activity` shows it.
pub const WRITE_CONNECTIONS: &str = "strata-server";

/// `application_name` of the server's read pools' connections.
pub const READ_CONNECTIONS: &str = "strata-server-read";

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
            .application_name(WRITE_CONNECTIONS)
            .options([("plan_cache_mode", "force_custom_plan")])
    });
    Database::connect(options).await
}

/// Pools for reads that name a tenant's schema, apart from the pool for
/// writes: each tenant's reads go to one of them (its id modulo their
/// number). A connection keeps the prepared statements, catalog entries and
/// open files of every tenant it has served, so each backend then holds
/// only its pool's share of the tenants: requests spread over 1,000
/// tenants keep their one-tenant rate, where connections that served
/// every tenant fell to half (a backend keeps at most
/// `max_files_per_process` files open, 1,000 by default, and a stats
/// request reads seven tables). With `read_pool_spill` a read goes to
/// another pool when its own has no idle connection left while another
/// has; under load that soon makes every connection serve every tenant.
/// The connections plan generic plans from a statement's first execution:
/// a plan is made once per tenant and connection, not five times.
///
/// A backend keeps some 300 kB for each tenant it has served, for as long
/// as it lives; with thousands of tenants that is gigabytes. So once every
/// `read_connection_check_ms` a pool looks at the memory of a connection
/// it gets back, and closes it instead when its backend holds more than
/// `read_connection_max_mib`.
pub struct ReadPools {
    pools: Vec<DatabaseConnection>,
    spill: bool,
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
                    .application_name(READ_CONNECTIONS)
                    .options([("plan_cache_mode", mode.as_str())])
            });
            let recycling = Recycling::new(settings);
            options.map_sqlx_postgres_pool_opts(move |o| {
                let recycling = recycling.clone();
                o.after_release(move |conn, _| {
                    let recycling = recycling.clone();
                    Box::pin(async move { recycling.keep(conn).await })
                })
            });
            pools.push(Database::connect(options).await?);
        }
        Ok(Self {
            pools,
            spill: settings.read_pool_spill,
        })
    }

    /// The pool for `tenant`: its own, unless that one has no idle
    /// connection left while another has and `read_pool_spill` is set.
    pub fn for_tenant(&self, tenant: &Tenant) -> &DatabaseConnection {
        let own = (tenant.id().as_u128() % self.pools.len() as u128) as usize;
        if !self.spill {
            return &self.pools[own];
        }
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

/// Which released read connections go back to their pool.
#[derive(Clone)]
struct Recycling {
    /// 0: no bound, nothing looked at.
    max_bytes: u64,
    /// A pool looks at one connection at most once in this many
    /// milliseconds: adding up a backend's memory walks every context it
    /// holds (24 ms for a backend that served 1,000 tenants).
    every_ms: u64,
    since: Instant,
    /// When the next look is due, in milliseconds after `since`.
    next: Arc<AtomicU64>,
    /// Set once PostgreSQL refused to show the memory: below PostgreSQL 16
    /// only superusers and members of `pg_read_all_stats` may see it.
    refused: Arc<AtomicBool>,
}

impl Recycling {
    fn new(settings: &DatabaseSettings) -> Self {
        Self {
            max_bytes: settings.read_connection_max_mib.saturating_mul(1 << 20),
            every_ms: settings.read_connection_check_ms,
            since: Instant::now(),
            next: Arc::default(),
            refused: Arc::default(),
        }
    }

    /// Whether this release is the one to look at: the first once a look
    /// is due.
    fn due(&self) -> bool {
        if self.max_bytes == 0 || self.refused.load(Ordering::Relaxed) {
            return false;
        }
        let now = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next.load(Ordering::Acquire);
        now >= next
            && self
                .next
                .compare_exchange(
                    next,
                    now.saturating_add(self.every_ms),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }

    /// Whether `conn` goes back to the pool: not if it is looked at and its
    /// backend holds more than `max_bytes`.
    async fn keep(&self, conn: &mut PgConnection) -> Result<bool, sea_orm::sqlx::Error> {
        if !self.due() {
            return Ok(true);
        }
        let bytes: i64 = match sea_orm::sqlx::query_scalar(
            "SELECT sum(total_bytes)::bigint FROM pg_backend_memory_contexts",
        )
        .fetch_one(conn)
        .await
        {
            Ok(bytes) => bytes,
            Err(err) if is_insufficient_privilege(&err) => {
                if !self.refused.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "read connections are kept however big: the database role may not \
                         read pg_backend_memory_contexts (grant it pg_read_all_stats)"
                    );
                }
                return Ok(true);
            }
            Err(err) => return Err(err),
        };
        let keep = u64::try_from(bytes).unwrap_or(0) <= self.max_bytes;
        if !keep {
            tracing::debug!(
                mib = bytes >> 20,
                "read connection closed: its backend grew too big"
            );
        }
        Ok(keep)
    }
}

/// `insufficient_privilege`.
fn is_insufficient_privilege(err: &sea_orm::sqlx::Error) -> bool {
    crate::error::sqlx_sqlstate(err).as_deref() == Some("42501")
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
