//! Spare schemas: tenant schemas migrated ahead of time, so that creating
//! a tenant takes one instead of running every migration (the DDL of a
//! whole tenant schema takes 100-200 ms; taking a spare a few).
//!
//! A spare is built by the same migrations as a tenant's. Taking one,
//! inside the provisioning transaction: lock it (transaction advisory lock,
//! skipping spares others hold), make it the tenant's schema, then apply
//! whatever migrations it lacks. If none is ready, provisioning migrates a
//! fresh schema as before. Spares come in two kinds ([`SpareNames`]):
//!
//! - `spare_<hex>`, renamed to `t_<slug>` when taken; its functions were
//!   made with `SET search_path FROM CURRENT`, so each is altered to the
//!   new name. `ALTER FUNCTION` finds a function by walking every schema's
//!   function of that name, so this grows with the number of tenants.
//! - `tenant_<hex>`, which keeps its name: the registry row names it as the
//!   tenant's schema. A schema so named that no row names is a spare.
//!   Taking one costs the same at any number of tenants.

use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use sea_orm_migration::MigrationTrait;

use crate::error::Error;
use crate::migrate::apply_pending;
use crate::registry::Registry;
use crate::slug::SchemaName;
use crate::sql::{SCHEMA_LOCK_CLASS, read_all, stmt};

/// Spares looked at per claim before giving up (others hold them).
const TRIES: u64 = 8;

/// What spare schemas will be named once taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpareNames {
    /// After the tenant's slug, `t_<slug>`, as every other tenant's
    /// schema; taking one grows with the number of tenants.
    #[default]
    Slug,
    /// Their own, `tenant_<hex>`; taking one costs the same at any size.
    Own,
}

/// Schemas that are spares: renamed ones, and those keeping their name
/// that no tenant's registry row names.
const UNTAKEN: &str = "(nspname LIKE 'spare\\_%' OR (nspname LIKE 'tenant\\_%' \
     AND NOT EXISTS (SELECT 1 FROM public.tenants t WHERE t.schema_name = nspname)))";

/// The names of the spare schemas, oldest first.
async fn names(db: &impl ConnectionTrait, limit: u64) -> Result<Vec<SchemaName>, Error> {
    let rows = db
        .query_all_raw(stmt(
            &format!(
                "SELECT nspname::text FROM pg_namespace WHERE {UNTAKEN} ORDER BY oid LIMIT $1"
            ),
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
                &format!("SELECT count(*) AS n FROM pg_namespace WHERE {UNTAKEN}"),
                [],
            ),
        )
        .await?;
        Ok(rows.first().map_or(0, |c| c.n as usize))
    }

    /// Makes spare schemas with `migrations`, to be named as `names` says
    /// once taken, until `target` are ready; how many it made.
    pub async fn fill_spares(
        &self,
        target: usize,
        migrations: &[Box<dyn MigrationTrait>],
        names: SpareNames,
    ) -> Result<usize, Error> {
        let mut made = 0;
        while self.spare_count().await? < target {
            let schema = SchemaName::new_spare(names == SpareNames::Own);
            let txn = self.ddl().begin().await?;
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
            crate::migrate::forget(&txn, &spare).await?;
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
        // A new statement, a new snapshot: taken (or dropped) and
        // committed by another transaction between the listing and the lock?
        let exists = txn
            .query_one_raw(stmt(
                &format!("SELECT 1 FROM pg_namespace WHERE nspname = $1 AND {UNTAKEN}"),
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

/// Takes a spare inside `txn`, if one is ready whose migrations are all in
/// `migrations` (see [`lock_one`]); the lock holds until `txn` ends. The
/// caller names the tenant's schema with [`schema_of`] and then calls
/// [`settle`].
pub(crate) async fn take(
    txn: &DatabaseTransaction,
    migrations: &[Box<dyn MigrationTrait>],
) -> Result<Option<SchemaName>, Error> {
    lock_one(txn, Some(migrations)).await
}

/// The schema a tenant made from `spare` has: the spare's own name, or
/// `slug_schema`.
pub(crate) fn schema_of(spare: &SchemaName, slug_schema: &SchemaName) -> SchemaName {
    if spare.keeps_name() {
        spare.clone()
    } else {
        slug_schema.clone()
    }
}

/// Makes taken `spare` into `schema`: nothing for a spare that keeps its
/// name (registering it was enough); else a rename, and its functions'
/// `search_path` moved with it.
pub(crate) async fn settle(
    txn: &DatabaseTransaction,
    spare: &SchemaName,
    schema: &SchemaName,
) -> Result<(), Error> {
    if spare == schema {
        return Ok(());
    }
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
    crate::migrate::renamed(txn, spare, schema).await?;
    Ok(())
}
