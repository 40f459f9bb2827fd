//! Cloning a tenant within the database: a new tenant whose schema is
//! migrated like any new one and then filled with the source's rows, table
//! by table with set-based copies, in one transaction (the clone exists
//! whole or not at all).
//!
//! What a clone does not take: the source's sessions (everyone signs in
//! again), its pending webhook deliveries, and live webhook endpoints (they
//! are copied inactive, so a copy does not send the source's events to the
//! source's receivers).

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{ConnectionTrait, TransactionTrait};
use serde::Serialize;

use crate::error::Error;
use crate::migrate::tenant_migrations;
use crate::provision::{NewTenant, provision};
use crate::registry::{Registry, Tenant, TenantStatus};
use crate::slug::{SchemaName, Slug};
use crate::sql::{lock_schema, stmt};

/// Tables a clone leaves empty: sessions, pending deliveries, and the
/// migration record its own migrations wrote.
const NOT_COPIED: &[&str] = &["refresh_tokens", "webhook_deliveries", "tenant_migrations"];

/// What a clone copied: rows per table.
#[derive(Debug, Serialize)]
pub struct Cloned {
    pub tenant: String,
    pub source: String,
    pub tables: BTreeMap<String, u64>,
}

/// The tables of `schema` in an order where every table comes after those
/// it references.
pub(crate) async fn tables_in_order(
    conn: &impl ConnectionTrait,
    schema: &SchemaName,
) -> Result<Vec<String>, Error> {
    let rows = conn
        .query_all_raw(stmt(
            "SELECT c.relname::text, \
                    coalesce(array_agg(DISTINCT r.relname::text) \
                             FILTER (WHERE r.relname IS NOT NULL AND r.oid <> c.oid), '{}') \
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
               LEFT JOIN pg_constraint f ON f.conrelid = c.oid AND f.contype = 'f' \
               LEFT JOIN pg_class r ON r.oid = f.confrelid \
              WHERE n.nspname = $1 AND c.relkind = 'r' \
              GROUP BY c.relname ORDER BY c.relname",
            [schema.as_str().into()],
        ))
        .await?;
    let mut pending: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &rows {
        let name: String = r.try_get_by_index(0)?;
        let refs: Vec<String> = r.try_get_by_index(1)?;
        pending.insert(name, refs.into_iter().collect());
    }
    let mut order = Vec::new();
    while !pending.is_empty() {
        let ready: Vec<String> = pending
            .iter()
            .filter(|(_, refs)| refs.iter().all(|r| !pending.contains_key(r)))
            .map(|(t, _)| t.clone())
            .collect();
        if ready.is_empty() {
            // A cycle of references: the rest in name order (their checks
            // run at the end of each statement).
            order.extend(std::mem::take(&mut pending).into_keys());
            break;
        }
        for t in ready {
            pending.remove(&t);
            order.push(t);
        }
    }
    Ok(order)
}

/// The columns of `table` in `schema` that can be written (not generated).
pub(crate) async fn columns(
    conn: &impl ConnectionTrait,
    schema: &SchemaName,
    table: &str,
) -> Result<Vec<String>, Error> {
    Ok(conn
        .query_all_raw(stmt(
            "SELECT a.attname::text FROM pg_attribute a \
               JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
                AND a.attgenerated = '' ORDER BY a.attnum",
            [schema.as_str().into(), table.into()],
        ))
        .await?
        .iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect::<Result<_, _>>()?)
}

/// Copies `plan`'s tables (name, columns) from schema `src` into `dst`
/// (both quoted), in order, with set-based `INSERT … SELECT`s, the target's
/// triggers off (the journal and sync tracking are copied, not made
/// again); copied webhook endpoints are left inactive. Returns the rows per
/// table.
pub(crate) async fn copy_tables(
    txn: &sea_orm::DatabaseTransaction,
    src: &str,
    dst: &str,
    plan: &[(String, Vec<String>)],
) -> Result<BTreeMap<String, u64>, Error> {
    let mut tables = BTreeMap::new();
    for (t, cols) in plan {
        let cols = cols.join(", ");
        txn.execute_unprepared(&format!("ALTER TABLE {dst}.{t} DISABLE TRIGGER USER"))
            .await?;
        let copied = txn
            .execute_unprepared(&format!(
                "INSERT INTO {dst}.{t} ({cols}) OVERRIDING SYSTEM VALUE \
                 SELECT {cols} FROM {src}.{t}"
            ))
            .await?;
        txn.execute_unprepared(&format!("ALTER TABLE {dst}.{t} ENABLE TRIGGER USER"))
            .await?;
        tables.insert(t.clone(), copied.rows_affected());
    }
    txn.execute_unprepared(&format!(
        "UPDATE {dst}.webhook_endpoints SET active = false"
    ))
    .await?;
    Ok(tables)
}

/// Sets every identity sequence of `schema` to go on after the ids its
/// table holds.
pub(crate) async fn continue_identities(
    txn: &sea_orm::DatabaseTransaction,
    schema: &SchemaName,
) -> Result<(), Error> {
    let dst = schema.quoted();
    let identities = txn
        .query_all_raw(stmt(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
              WHERE table_schema = $1 AND is_identity = 'YES'",
            [schema.as_str().into()],
        ))
        .await?;
    for r in &identities {
        let (t, c): (String, String) = (r.try_get_by_index(0)?, r.try_get_by_index(1)?);
        txn.execute_unprepared(&format!(
            "SELECT setval(pg_get_serial_sequence('{dst}.{t}', '{c}'), \
                           coalesce((SELECT max({c}) FROM {dst}.{t}), 0) + 1, false)"
        ))
        .await?;
    }
    Ok(())
}

impl Registry {
    /// Creates `new` as a copy of `source`, which must be at the same
    /// migration version as a new tenant (run `tenants up` first).
    pub async fn clone_tenant(&self, source: &Slug, new: &NewTenant) -> Result<Cloned, Error> {
        let from = self.get(source).await?;
        let migrations = tenant_migrations();
        // One snapshot for every table read (under READ COMMITTED each
        // copy would see the source at another moment, and a record made
        // in between could be copied without what it references); no
        // migration runs on the source meanwhile.
        let txn = self
            .ddl()
            .begin_with_config(Some(sea_orm::IsolationLevel::RepeatableRead), None)
            .await?;
        lock_schema(&txn, from.schema()).await?;
        let have: BTreeSet<String> = txn
            .query_all_raw(stmt(
                &format!(
                    "SELECT version FROM {}.tenant_migrations",
                    from.schema().quoted()
                ),
                [],
            ))
            .await?
            .iter()
            .map(|r| r.try_get_by_index::<String>(0))
            .collect::<Result<_, _>>()?;
        let want: BTreeSet<String> = migrations.iter().map(|m| m.name().to_owned()).collect();
        if have != want {
            return Err(Error::NotCurrent(from.slug().clone()));
        }
        let (row, target) = provision(&txn, new, &migrations).await?;
        let (src, dst) = (from.schema().quoted(), target.quoted());
        let every = tables_in_order(&txn, from.schema()).await?;
        // Rows the migrations seeded (roles, settings, event types) give
        // way to the source's; triggers stay off while rows are copied, as
        // the journal and sync tracking are copied themselves.
        let all: Vec<String> = every
            .iter()
            .filter(|t| t.as_str() != "tenant_migrations")
            .map(|t| format!("{dst}.{t}"))
            .collect();
        let order: Vec<String> = every
            .into_iter()
            .filter(|t| !NOT_COPIED.contains(&t.as_str()))
            .collect();
        txn.execute_unprepared(&format!("TRUNCATE {}", all.join(", ")))
            .await?;
        let mut plan = Vec::with_capacity(order.len());
        for t in order {
            let cols = columns(&txn, from.schema(), &t).await?;
            plan.push((t, cols));
        }
        let tables = copy_tables(&txn, &src, &dst, &plan).await?;
        continue_identities(&txn, &target).await?;
        let sql = format!(
            "UPDATE public.tenants t SET status = $2, updated_at = now() \
             WHERE t.id = $1 RETURNING {}",
            crate::registry::TENANT_COLUMNS
        );
        let row = crate::registry::TenantRow::find_by_statement_one(
            &txn,
            stmt(&sql, [row.id.into(), TenantStatus::Active.as_str().into()]),
        )
        .await?;
        txn.commit().await?;
        let tenant = Tenant::try_from(row)?;
        self.events().tenant_changed(tenant.id()).await;
        Ok(Cloned {
            tenant: tenant.slug().as_str().to_owned(),
            source: from.slug().as_str().to_owned(),
            tables,
        })
    }
}
