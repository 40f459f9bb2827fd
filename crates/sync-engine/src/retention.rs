//! Tombstone retention: deletes are kept as tombstones for a while so that
//! pulls can deliver them; past the retention they are purged, and cursors
//! from before the purge get "reset required".

use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use tenancy::Registry;

use crate::error::SyncError;

/// Purges tombstones older than `retention` in the connection's tenant
/// schema; how many were purged. Cursors below the newest purged change
/// are refused from then on.
pub async fn purge_tombstones(
    conn: &impl ConnectionTrait,
    retention: Duration,
) -> Result<u64, SyncError> {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "WITH gone AS ( \
                 DELETE FROM sync_changes WHERE deleted \
                 AND changed_at < now() - make_interval(secs => $1) RETURNING txid), \
             raised AS ( \
                 UPDATE sync_state SET purged_before = greatest(purged_before, \
                     ((SELECT max(txid) FROM gone)::text::numeric + 1)::text::xid8) \
                 WHERE EXISTS (SELECT 1 FROM gone) RETURNING 1) \
             SELECT count(*) FROM gone",
            [retention.as_secs_f64().into()],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0) as u64)
}

/// The maintenance loop: every `interval`, in every active tenant, purges
/// tombstones older than `retention` and change-journal entries older than
/// the tenant's journal retention (`journal_days` where it set none), until
/// the task is aborted. Every server runs it; purges are idempotent.
pub fn spawn_purge(
    registry: Registry,
    retention: Duration,
    journal_days: i32,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tenancy::periodic::every(interval, move || {
        let registry = registry.clone();
        async move { purge_every_tenant(&registry, retention, journal_days).await }
    })
}

/// One round of the maintenance loop over every active tenant, each in a
/// transaction of its own; a tenant that fails is logged and skipped.
async fn purge_every_tenant(registry: &Registry, retention: Duration, journal_days: i32) {
    let Ok(tenants) = registry.list().await else {
        return;
    };
    for tenant in tenants
        .iter()
        .filter(|t| t.status() == tenancy::TenantStatus::Active)
    {
        let purged = async {
            let tx = tenancy::TenantTx::begin(registry.db(), tenant).await?;
            let n = purge_tombstones(tx.conn(), retention)
                .await
                .map_err(|e| tenancy::Error::Database(sea_orm::DbErr::Custom(e.to_string())))?;
            let entries = domain::journal::purge(tx.conn(), journal_days).await?;
            tx.commit().await?;
            Ok::<(u64, u64), tenancy::Error>((n, entries))
        }
        .await;
        match purged {
            Ok((0, 0)) => {}
            Ok((n, entries)) => {
                tracing::info!(tenant = %tenant.slug(), tombstones = n, journal_entries = entries, "expired tombstones and journal entries purged")
            }
            Err(e) => {
                tracing::warn!(tenant = %tenant.slug(), error = %e, "purging tombstones and journal entries failed")
            }
        }
    }
}
