//! PULL: the changes since a cursor, model by model, page by page.
//!
//! Each change row carries the id of the transaction that last wrote the
//! record (`txid`). A pull delivers the rows with `lo <= txid < hi`, where
//! `hi` is the transaction horizon, `pg_snapshot_xmin(pg_current_snapshot())`:
//! every transaction below it has finished, so every change in range is
//! committed (and visible) or rolled back, and none can still appear there.
//! The next pull starts at `hi`. Transactions that commit out of order are
//! therefore never skipped, however long they run; a long transaction only
//! delays what pulls can see until it ends.
//!
//! The first page of a pull pins `hi`; later pages read the same range
//! after the last delivered (txid, id), so a multi-page sync never skips or
//! repeats a change. A record written again mid-pull moves above `hi` and
//! comes with the next pull.

use std::collections::BTreeMap;

use domain::render::{self, Objects};
use futures::TryStreamExt;
use sea_orm::{ConnectionTrait, DbBackend, Statement, StreamTrait, Value};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::cursor::Cursor;
use crate::error::SyncError;
use crate::models::Model;
use domain::access::Permissions;

/// One model's share of a pull.
#[derive(Debug, Default, Serialize)]
pub struct ModelChanges {
    pub created: Vec<Box<RawValue>>,
    pub updated: Vec<Box<RawValue>>,
    pub deleted: Vec<Uuid>,
}

impl ModelChanges {
    pub fn len(&self) -> usize {
        self.created.len() + self.updated.len() + self.deleted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a pull returns.
#[derive(Debug)]
pub struct Pulled {
    pub changes: BTreeMap<&'static str, ModelChanges>,
    /// Where the next pull (or the next page) starts.
    pub cursor: Cursor,
    pub has_more: bool,
}

/// The columns of a page's row before the record's ([`Spec::columns`]):
/// the record id, its change's transaction, whether it counts as created,
/// whether the pulling device created it, and whether the record is there
/// to deliver (null when deleted, or not the caller's to see).
///
/// [`Spec::columns`]: domain::Spec::columns
const RECORD_AT: usize = 5;

/// A record the server rendered, kept as text.
fn raw(data: String) -> Result<Box<RawValue>, SyncError> {
    RawValue::from_string(data)
        .map_err(|e| SyncError::Database(sea_orm::DbErr::Custom(e.to_string())))
}

fn parse_xid(text: &str) -> Result<u64, SyncError> {
    text.parse()
        .map_err(|_| SyncError::Database(sea_orm::DbErr::Custom(format!("bad xid8 `{text}`"))))
}

/// The transaction horizon: every transaction id below it has finished.
pub async fn horizon(conn: &impl ConnectionTrait) -> Result<u64, SyncError> {
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text",
        ))
        .await?
        .ok_or_else(|| SyncError::Database(sea_orm::DbErr::Custom("no horizon".into())))?;
    parse_xid(&row.try_get_by_index::<String>(0)?)
}

/// The oldest cursor still served (tombstones below it were purged).
async fn purged_before(conn: &impl ConnectionTrait) -> Result<u64, SyncError> {
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT purged_before::text FROM sync_state",
        ))
        .await?;
    match row {
        Some(r) => parse_xid(&r.try_get_by_index::<String>(0)?),
        None => Ok(0),
    }
}

/// Where a pull starts, how much it takes, and who pulls.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    /// The cursor as the client holds it (signed text); `None` starts over.
    pub cursor: Option<&'a str>,
    pub limit: usize,
    /// The pulling device, if it names itself: a record it created (pushed
    /// with the same device id) comes back as updated, not created.
    pub device: Option<&'a str>,
    /// Whether a first pull (no cursor) carries tombstones too. A first
    /// pull normally does not: the device holds nothing yet. A client that
    /// may start over while holding rows (RxDB keeps its checkpoint apart
    /// from its documents, so a replication stopped between the two starts
    /// again from an older one, or none) needs them, or a record deleted
    /// meanwhile stays on the device for good.
    pub tombstones: bool,
    /// Whether object fields (`custom`) travel as JSON text: WatermelonDB
    /// columns hold only scalars (its `@json` fields are text).
    pub flat: bool,
}

/// Pulls up to `limit` changes of `models` for `caller`, from `cursor` (a
/// fresh start when `None`); records `device` created count as updated.
#[allow(clippy::too_many_arguments)] // each is one of the pull's inputs
pub async fn pull(
    conn: &(impl ConnectionTrait + StreamTrait),
    tenant: Uuid,
    caller: Uuid,
    perms: &Permissions,
    models: &[&'static Model],
    cursor: Option<Cursor>,
    limit: usize,
    device: Option<&str>,
    tombstones: bool,
    flat: bool,
) -> Result<Pulled, SyncError> {
    let scopes = models
        .iter()
        .map(|m| perms.read(m))
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<String> = models.iter().map(|m| m.name().to_owned()).collect();
    let (lo, hi, mut after) = match cursor {
        Some(c) => {
            if c.lo > 0 && c.lo < purged_before(conn).await? {
                return Err(SyncError::ResetRequired);
            }
            match c.hi {
                // A pull under way must keep asking for the same models.
                Some(hi) if c.m.as_ref() == Some(&names) => (c.lo, hi, c.after),
                Some(_) => {
                    return Err(SyncError::BadCursor(
                        "belongs to a pull of other models; finish it or start over".into(),
                    ));
                }
                None => (c.lo, horizon(conn).await?, None),
            }
        }
        None => (0, horizon(conn).await?, None),
    };
    let initial = lo == 0;
    // Pages are read in index order. Just after a large write the
    // statistics still see the new transaction ids as rare, and the
    // planner would rather sort every change of the model (hundreds of ms
    // for a tenant's first pull after an import) than walk the index.
    conn.execute_raw(Statement::from_string(
        DbBackend::Postgres,
        "SELECT set_config('enable_sort', 'off', true)",
    ))
    .await?;
    // Tombstones are left out of a first pull unless asked for.
    let skip_tombstones = initial && !tombstones;
    let objects = if flat {
        Objects::AsText
    } else {
        Objects::Nested
    };

    let mut changes: BTreeMap<&'static str, ModelChanges> = BTreeMap::new();
    let mut room = limit;
    let mut has_more = false;
    for (i, (model, scope)) in models.iter().zip(&scopes).enumerate() {
        let entry = changes.entry(model.name()).or_default();
        let start = match after {
            Some((m, _, _)) if m > i => continue,
            Some((m, txid, id)) if m == i => Some((txid, id)),
            _ => None,
        };
        if room == 0 {
            has_more = true;
            break;
        }
        let mut values: Vec<Value> = vec![lo.to_string().into(), hi.to_string().into()];
        let visible = scope.sql(model, caller, &mut values);
        let mut conditions = vec![
            format!("c.model = '{}'", model.name()),
            "c.txid >= $1::text::xid8".to_owned(),
            "c.txid < $2::text::xid8".to_owned(),
        ];

        if let Some((txid, id)) = start {
            values.push(txid.to_string().into());
            values.push(id.into());
            conditions.push(format!(
                "(c.txid, c.record_id) > (${}::text::xid8, ${})",
                values.len() - 1,
                values.len()
            ));
        }
        values.push(((room + 1) as i64).into());
        let lim = values.len();
        values.push(device.map(str::to_owned).into());
        let dev = values.len();
        if skip_tombstones {
            // A first pull brings no tombstones, except of records the
            // pulling device created itself (it pushed before it pulled).
            conditions.push(format!("(NOT c.deleted OR c.created_by_device = ${dev})"));
        }
        // One row per change, in delivery order, with the record's columns
        // in binary form, rendered here as REST renders them. The record is
        // read per change by key (LATERAL: a plain join may plan a scan of
        // the whole table), and only for the changes the page delivers.
        let sql = format!(
            "SELECT c.record_id, c.txid::text AS txid, \
                    c.created_txid >= $1::text::xid8 AND ( \
                      ${dev}::text IS NULL OR c.created_by_device IS DISTINCT FROM ${dev}) AS is_new, \
                    coalesce(c.created_by_device = ${dev}, false) AS is_own, r.* \
             FROM sync_changes c LEFT JOIN LATERAL ( \
               SELECT true AS present, {columns} FROM {table} t \
                WHERE NOT c.deleted AND t.id = c.record_id AND {visible}) r ON true \
             WHERE {conds} ORDER BY c.txid, c.record_id LIMIT ${lim}",
            columns = model.columns(),
            table = model.table,
            conds = conditions.join(" AND "),
        );
        // Rows are rendered as they arrive: PostgreSQL reads the next ones
        // meanwhile (on another core), and a page is held once, as records.
        let mut rows = std::pin::pin!(
            conn.stream_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                &sql,
                values,
            ))
            .await?
        );
        let mut fetched = 0;
        let mut last: Option<(String, Uuid)> = None;
        while let Some(row) = rows.try_next().await? {
            fetched += 1;
            if fetched > room {
                // The one row past the page: there is more.
                continue;
            }
            let record_id: Uuid = row.try_get_by_index(0)?;
            let txid: String = row.try_get_by_index(1)?;
            let is_new: bool = row.try_get_by_index(2)?;
            let is_own: bool = row.try_get_by_index(3)?;
            let present = row.try_get_by_index::<Option<bool>>(4)?.unwrap_or(false);
            if present {
                let data = render::record_with(model, &row, RECORD_AT, objects)?;
                if is_new || initial {
                    entry.created.push(raw(data)?);
                } else {
                    entry.updated.push(raw(data)?);
                }
            } else if !skip_tombstones || is_own {
                entry.deleted.push(record_id);
            }
            last = Some((txid, record_id));
        }
        let more_here = fetched > room;
        if let Some((txid, id)) = last {
            after = Some((i, parse_xid(&txid)?, id));
        }
        room -= fetched.min(room);
        if more_here {
            has_more = true;
            break;
        }
        after = Some((i + 1, 0, Uuid::nil()));
    }
    let cursor = if has_more {
        Cursor {
            t: tenant,
            lo,
            hi: Some(hi),
            after,
            m: Some(names),
        }
    } else {
        Cursor {
            t: tenant,
            lo: hi,
            hi: None,
            after: None,
            m: None,
        }
    };
    Ok(Pulled {
        changes,
        cursor,
        has_more,
    })
}

/// Most records one page returns.
pub const MAX_PAGE: usize = 10_000;

/// A pull for a caller with `perms`; checks the page size, the device
/// id and the cursor's tenant.
pub async fn for_caller(
    conn: &(impl ConnectionTrait + StreamTrait),
    key: &crate::CursorKey,
    tenant: Uuid,
    user: Uuid,
    perms: &Permissions,
    models: &[&'static Model],
    page: Page<'_>,
) -> Result<Pulled, SyncError> {
    let Page {
        cursor,
        limit,
        device,
        tombstones,
        flat,
    } = page;
    if let Some(d) = device {
        domain::check::parameter(d, 200).map_err(|message| SyncError::Invalid {
            field: "device_id",
            message,
        })?;
    }
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(SyncError::Invalid {
            field: "limit",
            message: format!("must be 1 to {MAX_PAGE}"),
        });
    }
    let cursor = cursor.map(|c| key.decode(c, tenant)).transpose()?;
    pull(
        conn, tenant, user, perms, models, cursor, limit, device, tombstones, flat,
    )
    .await
}
