//! Tenant-scoped transactions: the only way to reach a tenant's tables.

use std::future::Future;
use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};

use crate::error::Error;
use crate::registry::Tenant;
use crate::slug::SchemaName;
use crate::sql::{Then, enter_schema, stmt};

/// What a committed transaction changed of what servers keep in memory, as
/// the tenant's triggers noted it (tenant migration
/// `tell_the_writer_what_changed`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The tenant's rules: custom fields, roles, sync permissions, filters.
    pub rules: bool,
    /// Users' standing: one user's id, or `*` for several.
    pub standing: Option<String>,
    /// The transaction wrote something (it was given a transaction id).
    pub wrote: bool,
}

/// Told a tenant's schema and what a transaction changed, once it has
/// committed.
pub type OnCommit = Arc<dyn Fn(&SchemaName, &Changed) + Send + Sync>;

tokio::task_local! {
    static ON_COMMIT: OnCommit;
}

/// Runs `f` with `hook` told what each of its tenant transactions changed,
/// as soon as each commits. Every server hears of every change by
/// `NOTIFY`, a moment after the commit; this lets the writing server's own
/// caches follow its writes before it answers. Each commit in scope reads
/// the transaction's note first (one more statement).
pub async fn on_commit<F: Future>(hook: OnCommit, f: F) -> F::Output {
    ON_COMMIT.scope(hook, f).await
}

/// What the triggers noted in `txn` so far.
async fn noted(txn: &DatabaseTransaction) -> Result<Changed, DbErr> {
    let row = txn
        .query_one_raw(stmt(
            "SELECT coalesce(current_setting('strata.rules_changed', true), '') = 'on', \
                    nullif(current_setting('strata.standing_changed', true), ''), \
                    txid_current_if_assigned() IS NOT NULL",
            [],
        ))
        .await?;
    Ok(match row {
        Some(r) => Changed {
            rules: r.try_get_by_index(0)?,
            standing: r.try_get_by_index(1)?,
            wrote: r.try_get_by_index(2)?,
        },
        None => Changed::default(),
    })
}

/// A transaction whose `search_path` is the tenant's schema, then `public`.
///
/// `search_path` is set with `SET LOCAL` semantics, so it ends with the
/// transaction and never leaks to the next user of the pooled connection
/// (nor across PgBouncer's transaction pooling). Starting one checks that the
/// schema exists: PostgreSQL would otherwise fall through to `public`.
pub struct TenantTx {
    txn: DatabaseTransaction,
    schema: SchemaName,
}

impl TenantTx {
    pub async fn begin(db: &DatabaseConnection, tenant: &Tenant) -> Result<Self, Error> {
        let txn = db.begin().await?;
        let schema = tenant.schema().clone();
        if let Err(e) = enter_schema(&txn, &schema, Then::Public).await {
            txn.rollback().await?;
            return Err(e);
        }
        Ok(Self { txn, schema })
    }

    /// A transaction whose `search_path` the caller has set to `schema`.
    pub(crate) fn entered(txn: DatabaseTransaction, schema: SchemaName) -> Self {
        Self { txn, schema }
    }

    /// The connection to run the tenant's queries on.
    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    pub fn schema(&self) -> &SchemaName {
        &self.schema
    }

    /// Commits; inside [`on_commit`], then tells its hook what changed.
    pub async fn commit(self) -> Result<(), DbErr> {
        let Ok(hook) = ON_COMMIT.try_with(Arc::clone) else {
            return self.txn.commit().await;
        };
        // A transaction an error aborted refuses the read and commits as a
        // rollback: it changed nothing, and the commit reports as before.
        let changed = noted(&self.txn).await.unwrap_or_default();
        self.txn.commit().await?;
        if changed != Changed::default() {
            hook(&self.schema, &changed);
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

impl std::ops::Deref for TenantTx {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}
