//! Tombstone retention: deletes are kept as tombstones for a while so that
//! pulls can deliver them; past the retention they are purged, and cursors
//! from before the purge get "reset required".

use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, Statement};

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
