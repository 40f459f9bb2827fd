//! Spare schemas: tenant schemas migrated ahead of time, so that creating
//! a tenant renames one instead of running every migration (the DDL of a
//! whole tenant schema takes 100-200 ms; taking a spare a few).
//!
//! A spare is a schema named `spare_<hex>`, built by the same migrations as
//! a tenant's. Taking one, inside the provisioning transaction: lock it
//! (transaction advisory lock, skipping spares others hold), rename it to
//! the tenant's schema, point the `search_path` its functions were created
//! with at the new name, then apply whatever migrations it lacks. Nothing
//! else in a tenant schema names the schema. If no spare is ready,
//! provisioning migrates a fresh schema as before.

use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use sea_orm_migration::MigrationTrait;

use crate::error::Error;
use crate::migrate::apply_pending;
use crate::registry::Registry;
use crate::slug::SchemaName;
use crate::sql::{SCHEMA_LOCK_CLASS, read_all, stmt};

/// Spares looked at per claim before giving up (others hold them).
const TRIES: u64 = 8;

/// The names of the spare schemas, oldest first.
async fn names(db: &impl ConnectionTrait, limit: u64) -> Result<Vec<SchemaName>, Error> {
    let rows = db
        .query_all_raw(stmt(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'spare\\_%' \
             ORDER BY oid LIMIT $1",
            [(limit as i64).into()],
        ))
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get_by_index::<String>(0).ok())
        .filter_map(|n| SchemaName::spare(&n))
        .collect())
}

impl Registry {
    /// How many spare schemas are ready.
    pub async fn spare_count(&self) -> Result<usize, Error> {
        let rows: Vec<Count> = read_all(
            self.db(),
            stmt(
                "SELECT count(*) AS n FROM pg_namespace WHERE nspname LIKE 'spare\\_%'",
                [],
            ),
        )
        .await?;
        Ok(rows.first().map_or(0, |c| c.n as usize))
    }

    /// Makes spare schemas with `migrations` until `target` are ready; how
    /// many it made.
    pub async fn fill_spares(
        &self,
        target: usize,
        migrations: &[Box<dyn MigrationTrait>],
    ) -> Result<usize, Error> {
        let mut made = 0;
        while self.spare_count().await? < target {
            let schema = SchemaName::new_spare();
            let txn = self.db().begin().await?;
            txn.execute_unprepared(&format!("CREATE SCHEMA {}", schema.quoted()))
                .await?;
            apply_pending(&txn, &schema, migrations).await?;
            txn.commit().await?;
            made += 1;
        }
        Ok(made)
    }

    /// Drops every spare schema (before a rollback of tenant migrations,
    /// say); how many.
    pub async fn drop_spares(&self) -> Result<usize, Error> {
        let mut dropped = 0;
        loop {
            let txn = self.db().begin().await?;
            let Some(spare) = lock_one(&txn, None).await? else {
                txn.rollback().await?;
                return Ok(dropped);
            };
            txn.execute_unprepared(&format!("DROP SCHEMA {} CASCADE", spare.quoted()))
                .await?;
            txn.commit().await?;
            dropped += 1;
        }
    }
}

#[derive(sea_orm::FromQueryResult)]
struct Count {
    n: i64,
}

/// Locks a spare for the rest of `txn`: one no other transaction holds,
/// that still exists and, given `migrations`, has none outside them (a
/// newer Strata's spare is not this one's to take). `None` if there is none.
async fn lock_one(
    txn: &DatabaseTransaction,
    migrations: Option<&[Box<dyn MigrationTrait>]>,
) -> Result<Option<SchemaName>, Error> {
    for spare in names(txn, TRIES).await? {
        let locked = txn
            .query_one_raw(stmt(
                "SELECT pg_try_advisory_xact_lock($1, hashtext($2))",
                [SCHEMA_LOCK_CLASS.into(), spare.as_str().into()],
            ))
            .await?
            .and_then(|r| r.try_get_by_index::<bool>(0).ok())
            .unwrap_or(false);
        if !locked {
            continue;
        }
        // A new statement, a new snapshot: taken and committed by another
        // transaction between the listing and the lock?
        let exists = txn
            .query_one_raw(stmt(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1",
                [spare.as_str().into()],
            ))
            .await?
            .is_some();
        if !exists {
            continue;
        }
        if let Some(set) = migrations {
            let applied = txn
                .query_all_raw(stmt(
                    &format!("SELECT version FROM {}.tenant_migrations", spare.quoted()),
                    [],
                ))
                .await?;
            let known = applied.iter().all(|r| {
                r.try_get_by_index::<String>(0)
                    .is_ok_and(|v| set.iter().any(|m| m.name() == v))
            });
            if !known {
                continue;
            }
        }
        return Ok(Some(spare));
    }
    Ok(None)
}

/// Turns a spare into `schema` inside `txn`, if one is ready whose
/// migrations are all in `migrations` (see [`lock_one`]): renamed, its functions'
/// `search_path` moved with it. True if one was taken; the caller then
/// applies the migrations it lacks.
pub(crate) async fn take(
    txn: &DatabaseTransaction,
    schema: &SchemaName,
    migrations: &[Box<dyn MigrationTrait>],
) -> Result<bool, Error> {
    let Some(spare) = lock_one(txn, Some(migrations)).await? else {
        return Ok(false);
    };
    // The functions were made with `SET search_path FROM CURRENT` inside
    // the spare; made again from the tenant's schema, as on the spot.
    txn.execute_unprepared(&format!(
        "ALTER SCHEMA {} RENAME TO {q}; \
         DO $$ DECLARE f regprocedure; BEGIN \
           PERFORM set_config('search_path', '{q}', true); \
           FOR f IN SELECT p.oid FROM pg_proc p \
                    WHERE p.pronamespace = '{q}'::regnamespace \
                      AND EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\\_path=%') \
           LOOP EXECUTE format('ALTER FUNCTION %s SET search_path FROM CURRENT', f); \
           END LOOP; END $$;",
        spare.quoted(),
        q = schema.quoted(),
    ))
    .await?;
    Ok(true)
}
