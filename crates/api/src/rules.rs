//! Each tenant's rules, kept by every server: its custom field definitions
//! and what each set of roles may read and write. Every list and write
//! needs them and they change rarely, so they are read once and dropped on
//! `NOTIFY strata_rules, '<schema>'`, which triggers send when a change to
//! them commits (tenant migration `announce_rule_changes`).

use std::sync::Arc;
use std::time::Duration;

use domain::access::Permissions;
use domain::custom::Definitions;
use sea_orm::{DatabaseConnection, DbErr};
use tenancy::{Tenant, TenantTx};

use crate::cache::{Cache, Invalidated};

/// The channel the triggers notify on.
pub const CHANNEL: &str = "strata_rules";

/// How long rules are trusted at most, should a notification be lost.
const MAX_AGE: Duration = Duration::from_secs(60);

/// Entries kept before a cache starts over.
const MAX_ENTRIES: usize = 100_000;

/// A tenant's schema and a set of role names.
type RolesIn = (Arc<str>, Box<[String]>);

/// Every server's cache of tenant rules.
pub struct Rules {
    custom: Cache<Arc<str>, Arc<Definitions>>,
    permissions: Cache<RolesIn, Arc<Permissions>>,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            custom: Cache::new(MAX_AGE, MAX_ENTRIES),
            permissions: Cache::new(MAX_AGE, MAX_ENTRIES),
        }
    }
}

impl Rules {
    /// The custom field definitions of `tx`'s tenant (read in `tx` if not
    /// kept).
    pub async fn custom(&self, tx: &TenantTx) -> Result<Arc<Definitions>, DbErr> {
        let key: Arc<str> = Arc::from(tx.schema().as_str());
        through(&self.custom, key, || Definitions::load(tx.conn())).await
    }

    /// What `roles` may read and write in `tx`'s tenant (read in `tx` if
    /// not kept).
    pub async fn permissions(
        &self,
        tx: &TenantTx,
        roles: &[String],
    ) -> Result<Arc<Permissions>, DbErr> {
        let key: RolesIn = (Arc::from(tx.schema().as_str()), Box::from(roles));
        through(&self.permissions, key, || {
            Permissions::load(tx.conn(), roles)
        })
        .await
    }

    /// Both, for a request outside a transaction: when either is not kept,
    /// both are read in a transaction of their own.
    pub async fn of(
        &self,
        db: &DatabaseConnection,
        tenant: &Tenant,
        roles: &[String],
    ) -> Result<(Arc<Permissions>, Arc<Definitions>), tenancy::Error> {
        let schema: Arc<str> = Arc::from(tenant.schema().as_str());
        let perms_key = (Arc::clone(&schema), Box::from(roles));
        if let (Some(p), Some(c)) = (self.permissions.get(&perms_key), self.custom.get(&schema)) {
            return Ok((p, c));
        }
        let tx = TenantTx::begin(db, tenant).await?;
        let perms = self.permissions(&tx, roles).await?;
        let custom = self.custom(&tx).await?;
        tx.commit().await?;
        Ok((perms, custom))
    }
}

/// `key`'s value in `cache`, or `load`'s (kept unless invalidated meanwhile).
async fn through<K, V, F, Fut>(cache: &Cache<K, Arc<V>>, key: K, load: F) -> Result<Arc<V>, DbErr>
where
    K: std::hash::Hash + Eq,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<V, DbErr>>,
{
    if let Some(found) = cache.get(&key) {
        return Ok(found);
    }
    let generation = cache.generation();
    let loaded = Arc::new(load().await?);
    cache.keep(key, Arc::clone(&loaded), generation);
    Ok(loaded)
}

impl Invalidated for Rules {
    fn channel(&self) -> &'static str {
        CHANNEL
    }

    /// Drops the rules of the tenant whose schema is `payload`.
    fn invalidate(&self, schema: &str) {
        self.custom.invalidate(|e| {
            e.remove(schema);
        });
        self.permissions
            .invalidate(|e| e.retain(|(s, _), _| &**s != schema));
    }

    fn set_listening(&self, on: bool) {
        self.custom.set_listening(on);
        self.permissions.set_listening(on);
    }
}
