//! Planner statistics that keep up with a tenant's growth.
//!
//! A generic plan is made from a table's statistics and kept until they
//! change. A key lookup planned while a tenant's table filled one page is a
//! sequential scan, and it stays one as the table grows, until autovacuum's
//! next `ANALYZE`; with thousands of tenants in a database that can be
//! minutes. The server refreshes the statistics of the tables it has
//! written once they have changed by as many rows as they held when their
//! statistics were taken (and by at least [`MIN_CHANGED_ROWS`]): the new
//! statistics invalidate the old plans on every connection.
//!
//! The check reads PostgreSQL's activity counts, which live in shared memory
//! (no table is opened) and which each backend reports within a second of
//! its transactions while busy, within ten when idle.

use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, TransactionTrait};

use crate::error::Error;
use crate::slug::SchemaName;
use crate::sql::{read_all, stmt};

/// Rows changed below which a table is left to autovacuum: a scan of a
/// table that small costs little more than a key lookup.
pub const MIN_CHANGED_ROWS: i64 = 1000;

#[derive(FromQueryResult)]
struct Grown {
    schema: String,
    name: String,
}

/// A tenant table whose statistics are out of date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub schema: SchemaName,
    pub name: String,
}

/// Those of `tables` in `schemas` that have changed (rows inserted, updated
/// or deleted) by at least as many rows as they held when their statistics
/// were taken, and by at least [`MIN_CHANGED_ROWS`]. A table this role may
/// not analyse, or that does not exist, is not among them.
pub async fn grown(
    db: &DatabaseConnection,
    schemas: &[SchemaName],
    tables: &[&str],
) -> Result<Vec<Table>, Error> {
    if schemas.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = schemas.iter().map(|s| s.as_str().to_owned()).collect();
    let tables: Vec<String> = tables.iter().map(|t| (*t).to_owned()).collect();
    let rows: Vec<Grown> = read_all(
        db,
        stmt(
            "SELECT s.name AS schema, t.name \
             FROM unnest($1::text[]) AS s(name) CROSS JOIN unnest($2::text[]) AS t(name) \
             JOIN pg_class c ON c.oid = to_regclass(format('%I.%I', s.name, t.name)) \
             WHERE pg_stat_get_mod_since_analyze(c.oid) >= greatest(c.reltuples::bigint, $3) \
               AND pg_has_role(c.relowner, 'USAGE')",
            [names.into(), tables.into(), MIN_CHANGED_ROWS.into()],
        ),
    )
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let schema = schemas.iter().find(|s| s.as_str() == r.schema)?;
            Some(Table {
                schema: schema.clone(),
                name: r.name,
            })
        })
        .collect())
}

/// `ANALYZE`s each of `tables`, giving up on one whose lock another
/// maintenance (autovacuum, a migration) holds for more than a second: that
/// one is being looked after already.
pub async fn analyze(db: &DatabaseConnection, tables: &[Table]) -> Result<(), Error> {
    for table in tables {
        let txn = db.begin().await?;
        txn.execute_unprepared("SET LOCAL lock_timeout = '1s'")
            .await?;
        let sql = format!(
            "ANALYZE {}.\"{}\"",
            table.schema.quoted(),
            table.name.replace('"', "\"\"")
        );
        match txn.execute_unprepared(&sql).await {
            Ok(_) => txn.commit().await?,
            Err(err) if is_lock_timeout(&err) => {
                txn.rollback().await?;
                tracing::debug!(
                    schema = table.schema.as_str(),
                    table = table.name,
                    "statistics busy; skipped"
                );
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Refreshes the statistics of those of `tables` in `schemas` that have
/// grown (see [`grown`]); which it refreshed.
pub async fn refresh_grown(
    db: &DatabaseConnection,
    schemas: &[SchemaName],
    tables: &[&str],
) -> Result<Vec<Table>, Error> {
    let grown = grown(db, schemas, tables).await?;
    analyze(db, &grown).await?;
    Ok(grown)
}

/// `lock_not_available`, as `lock_timeout` raises it.
fn is_lock_timeout(err: &sea_orm::DbErr) -> bool {
    crate::error::sqlstate(err).as_deref() == Some("55P03")
}
