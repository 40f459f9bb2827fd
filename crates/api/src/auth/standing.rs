//! The standing of a signed-in user or operator: whether the account is
//! active, its credentials epoch, its roles and its recently revoked
//! sessions, read from PostgreSQL, which is the truth.
//!
//! Each server caches standings and drops them on `NOTIFY strata_standing`,
//! which triggers send when a change commits (see the tenant migration
//! `session_standing`), so a demotion, a disabled or deleted account, a new
//! password or a sign-out is refused on every server within milliseconds.
//! While the listener is not connected (startup, PostgreSQL restarting)
//! nothing is cached and every request reads the database (see
//! [`crate::cache`]). Redis plays no part.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, TransactionTrait};
use tenancy::{Tenant, TenantTx, stmt};
use uuid::Uuid;

use crate::cache::{Cache, Invalidated};
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

type Key = (Arc<str>, Uuid);

/// Every server's cache of standings.
pub struct Standings {
    cache: Cache<Key, Option<Arc<Standing>>>,
    window_secs: u64,
}

impl Standings {
    /// `window_secs`: how long an access token can live, plus leeway.
    pub fn new(window_secs: u64) -> Self {
        Self {
            cache: Cache::new(MAX_AGE, MAX_ENTRIES),
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
        if let Some(found) = self.cache.get(&key) {
            return Ok(found);
        }
        let generation = self.cache.generation();
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
        if let Some(found) = self.cache.get(&key) {
            return Ok(found);
        }
        let generation = self.cache.generation();
        let txn = db.begin().await?;
        let standing = of_operator(&txn, operator).await?;
        txn.commit().await?;
        Ok(self.keep(key, generation, standing))
    }

    /// Drops what this server holds of `operator`'s standing, once a change
    /// to it has committed here: other servers follow by notification, this
    /// one before it answers.
    pub fn forget_operator(&self, operator: Uuid) {
        self.invalidate(&format!("{OPERATORS} {operator}"));
    }

    fn keep(&self, key: Key, generation: u64, standing: Option<Standing>) -> Option<Arc<Standing>> {
        let standing = standing.map(Arc::new);
        self.cache.keep(key, standing.clone(), generation);
        standing
    }

    /// True while notifications are being received (and standings cached).
    pub fn is_listening(&self) -> bool {
        self.cache.is_listening()
    }
}

impl Invalidated for Standings {
    fn channel(&self) -> &'static str {
        CHANNEL
    }

    /// Applies one notification: `<schema> <id>` or `<schema> *`.
    fn invalidate(&self, payload: &str) {
        self.cache
            .invalidate(|entries| match payload.split_once(' ') {
                Some((schema, id)) => match Uuid::parse_str(id) {
                    Ok(id) => {
                        entries.remove(&(Arc::from(schema), id));
                    }
                    Err(_) => entries.retain(|(s, _), _| &**s != schema),
                },
                None => entries.clear(),
            });
    }

    fn set_listening(&self, on: bool) {
        self.cache.set_listening(on);
    }
}
