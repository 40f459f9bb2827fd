//! The standing of a signed-in user or operator: whether the account is
//! active, its credentials epoch, its roles and its recently revoked
//! sessions, read from PostgreSQL, which is the truth.
//!
//! Each server caches standings and drops them on `NOTIFY strata_standing`,
//! which triggers send when a change commits (see the tenant migration
//! `session_standing`), so a demotion, a disabled or deleted account, a new
//! password or a sign-out is refused on every server within milliseconds.
//! While the listener is not connected (startup, PostgreSQL restarting)
//! nothing is cached and every request reads the database; after it
//! reconnects the whole cache is dropped, since notifications may have been
//! missed. Redis plays no part.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, TransactionTrait};
use tenancy::{Tenant, TenantTx, stmt};
use uuid::Uuid;

use crate::error::ApiError;

/// The channel the triggers notify on.
pub const CHANNEL: &str = "strata_standing";

/// The cache key's schema for platform operators.
const OPERATORS: &str = "public";

/// How long a cached standing is trusted at most, should a notification be
/// lost without the listener noticing.
const MAX_AGE: Duration = Duration::from_secs(60);

/// Entries kept before the cache starts over.
const MAX_ENTRIES: usize = 100_000;

/// What an account may do now.
#[derive(Debug, FromQueryResult)]
pub struct Standing {
    pub is_active: bool,
    pub credentials_epoch: i64,
    /// Role names (operators have none).
    pub roles: Vec<String>,
    /// Sessions revoked recently enough that access tokens of them may
    /// still be unexpired.
    pub revoked: Vec<Uuid>,
}

impl Standing {
    /// Whether an access token of session `family`, issued in credentials
    /// epoch `epoch`, still speaks for this account; the reason if not.
    pub fn admits(&self, family: Uuid, epoch: i64) -> Result<(), ApiError> {
        if !self.is_active {
            Err(ApiError::Unauthorized("the account is disabled"))
        } else if epoch != self.credentials_epoch {
            Err(ApiError::Unauthorized(
                "the account's credentials changed; sign in again",
            ))
        } else if self.revoked.contains(&family) {
            Err(ApiError::Unauthorized("the session was revoked"))
        } else {
            Ok(())
        }
    }
}

/// A tenant user's standing, read in the tenant's transaction; `None` if
/// the user does not exist. `window_secs`: how far back revocations matter.
pub async fn of_user(
    conn: &impl ConnectionTrait,
    user: Uuid,
    window_secs: u64,
) -> Result<Option<Standing>, sea_orm::DbErr> {
    Standing::find_by_statement(stmt(
        "SELECT u.is_active, u.credentials_epoch, \
           ARRAY(SELECT r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
                 WHERE ur.user_id = u.id ORDER BY r.name) AS roles, \
           ARRAY(SELECT DISTINCT family_id FROM refresh_tokens \
                 WHERE user_id = u.id AND revoked_at > now() - make_interval(secs => $2)) \
             AS revoked \
         FROM users u WHERE u.id = $1",
        [user.into(), (window_secs as f64).into()],
    ))
    .one(conn)
    .await
}

/// An operator's standing; `None` if the operator does not exist.
pub async fn of_operator(
    conn: &impl ConnectionTrait,
    operator: Uuid,
) -> Result<Option<Standing>, sea_orm::DbErr> {
    Standing::find_by_statement(stmt(
        "SELECT o.is_active, o.credentials_epoch, ARRAY[]::text[] AS roles, \
           ARRAY(SELECT id FROM public.platform_operator_sessions \
                 WHERE operator_id = o.id AND revoked_at IS NOT NULL AND expires_at > now()) \
             AS revoked \
         FROM public.platform_operators o WHERE o.id = $1",
        [operator.into()],
    ))
    .one(conn)
    .await
}

struct Entry {
    standing: Option<Arc<Standing>>,
    loaded: Instant,
}

type Key = (Arc<str>, Uuid);

/// Every server's cache of standings.
pub struct Standings {
    entries: RwLock<HashMap<Key, Entry>>,
    listening: AtomicBool,
    /// Bumped by every invalidation: a load that began before one is not
    /// cached, so a change committed during the load is never hidden.
    generation: AtomicU64,
    window_secs: u64,
}

impl Standings {
    /// `window_secs`: how long an access token can live, plus leeway.
    pub fn new(window_secs: u64) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            listening: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            window_secs,
        }
    }

    /// The standing of `user` of `tenant`; `None` if it does not exist.
    pub async fn user(
        &self,
        db: &DatabaseConnection,
        tenant: &Tenant,
        user: Uuid,
    ) -> Result<Option<Arc<Standing>>, ApiError> {
        let key: Key = (Arc::from(tenant.schema().as_str()), user);
        if let Some(found) = self.cached(&key) {
            return Ok(found);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let tx = TenantTx::begin(db, tenant).await?;
        let standing = of_user(tx.conn(), user, self.window_secs).await?;
        tx.commit().await?;
        Ok(self.keep(key, generation, standing))
    }

    /// The standing of platform operator `operator`.
    pub async fn operator(
        &self,
        db: &DatabaseConnection,
        operator: Uuid,
    ) -> Result<Option<Arc<Standing>>, ApiError> {
        let key: Key = (Arc::from(OPERATORS), operator);
        if let Some(found) = self.cached(&key) {
            return Ok(found);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let txn = db.begin().await?;
        let standing = of_operator(&txn, operator).await?;
        txn.commit().await?;
        Ok(self.keep(key, generation, standing))
    }

    fn cached(&self, key: &Key) -> Option<Option<Arc<Standing>>> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|e| e.loaded.elapsed() < MAX_AGE)
            .map(|e| e.standing.clone())
    }

    fn keep(&self, key: Key, generation: u64, standing: Option<Standing>) -> Option<Arc<Standing>> {
        let standing = standing.map(Arc::new);
        if self.listening.load(Ordering::Acquire) {
            let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
            // Checked under the lock that invalidations take.
            if self.generation.load(Ordering::Acquire) == generation {
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
                entries.insert(
                    key,
                    Entry {
                        standing: standing.clone(),
                        loaded: Instant::now(),
                    },
                );
            }
        }
        standing
    }

    /// Applies one notification: `<schema> <id>` or `<schema> *`.
    fn invalidate(&self, payload: &str) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        match payload.split_once(' ') {
            Some((schema, id)) => match Uuid::parse_str(id) {
                Ok(id) => {
                    entries.remove(&(Arc::from(schema), id));
                }
                Err(_) => entries.retain(|(s, _), _| &**s != schema),
            },
            None => entries.clear(),
        }
    }

    fn forget_all(&self) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    /// True while notifications are being received (and standings cached).
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Listens for standing changes on a connection of its own, reconnecting
    /// with backoff; caches only while connected.
    /// `url` is PostgreSQL's own address: LISTEN does not pass through a
    /// transaction-pooling PgBouncer.
    pub fn spawn_listener(self: &Arc<Self>, url: String) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match PgListener::connect(&url).await {
                    Ok(mut listener) => match listener.listen(CHANNEL).await {
                        Ok(()) => {
                            this.forget_all();
                            this.listening.store(true, Ordering::Release);
                            tracing::debug!(channel = CHANNEL, "standing cache listening");
                            backoff = Duration::from_millis(100);
                            // try_recv: a lost connection ends the loop
                            // instead of reconnecting silently.
                            while let Ok(Some(note)) = listener.try_recv().await {
                                this.invalidate(note.payload());
                            }
                        }
                        Err(err) => tracing::warn!(error = %err, "LISTEN failed"),
                    },
                    Err(err) => tracing::warn!(error = %err, "standing listener cannot connect"),
                }
                this.listening.store(false, Ordering::Release);
                this.forget_all();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        })
    }
}
