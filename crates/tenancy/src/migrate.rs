//! Per-tenant schema migrations: applying, locking and reporting.
//!
//! Each tenant schema keeps its own `tenant_migrations` table, and the
//! shared `public.tenant_schema_migrations` holds the same versions for
//! every schema, written in the same transaction. A tenant's pending
//! migrations are applied in one transaction that holds an advisory lock on
//! that schema, so two migrators never work on one schema at once and a
//! failure leaves the schema as it was. Applying reads the schema's own
//! table and brings the shared record in line with it; status over many
//! tenants reads the shared record ([`Source::Shared`]), one indexed read
//! at any number of tenants, or every schema's own table
//! ([`Source::Schemas`], which opens one table per tenant).

use std::collections::{BTreeSet, HashMap};

use futures::StreamExt;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, FromQueryResult, TransactionTrait,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait, SchemaManager};
use serde::Serialize;

use crate::error::Error;
use crate::registry::{Registry, Tenant};
use crate::slug::SchemaName;
use crate::sql::{Then, enter_schema, lock_schema, stmt};

/// The ordered migrations every tenant schema receives.
pub type MigrationSet = Vec<Box<dyn MigrationTrait>>;

/// The tenant migrations shipped in `migrations/tenant`.
pub fn tenant_migrations() -> MigrationSet {
    migration_tenant::Migrator::migrations()
}

/// Applies the migrations of `set` that `schema` lacks, inside `txn`, and
/// returns the versions applied. The caller commits.
pub(crate) async fn apply_pending(
    txn: &DatabaseTransaction,
    schema: &SchemaName,
    set: &[Box<dyn MigrationTrait>],
) -> Result<Vec<String>, Error> {
    lock_schema(txn, schema).await?;
    enter_schema(txn, schema, Then::Nothing).await?;
    let q = schema.quoted();
    txn.execute_unprepared(&format!(
        "CREATE TABLE IF NOT EXISTS {q}.tenant_migrations (\
           version text PRIMARY KEY, \
           applied_at timestamptz NOT NULL DEFAULT now())"
    ))
    .await?;
    let applied: BTreeSet<String> = txn
        .query_all_raw(stmt(
            &format!("SELECT version FROM {q}.tenant_migrations"),
            [],
        ))
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect::<Result<_, _>>()?;

    let mut done: Vec<String> = Vec::new();
    for migration in set {
        let version = migration.name();
        if applied.contains(version) {
            continue;
        }
        migration
            .up(&SchemaManager::new(txn))
            .await
            .map_err(|source| Error::Migration {
                schema: schema.clone(),
                version: version.to_owned(),
                source,
            })?;
        done.push(version.to_owned());
    }
    if !done.is_empty() {
        txn.execute_raw(stmt(
            &format!("INSERT INTO {q}.tenant_migrations (version) SELECT unnest($1::text[])"),
            [done.clone().into()],
        ))
        .await?;
    }
    let now: Vec<String> = applied.iter().chain(&done).cloned().collect();
    record(txn, schema, &now).await?;
    Ok(done)
}

/// Makes the shared record say that `schema` has `versions` applied, no
/// more and no fewer.
async fn record(
    txn: &DatabaseTransaction,
    schema: &SchemaName,
    versions: &[String],
) -> Result<(), Error> {
    txn.execute_raw(stmt(
        "DELETE FROM public.tenant_schema_migrations \
         WHERE schema_name = $1 AND NOT (version = ANY($2::text[]))",
        [schema.as_str().into(), versions.to_vec().into()],
    ))
    .await?;
    txn.execute_raw(stmt(
        "INSERT INTO public.tenant_schema_migrations (schema_name, version) \
         SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
        [schema.as_str().into(), versions.to_vec().into()],
    ))
    .await?;
    Ok(())
}

/// Removes `schema` from the shared record, as it is dropped (inside the
/// dropping transaction).
pub(crate) async fn forget(txn: &DatabaseTransaction, schema: &SchemaName) -> Result<(), Error> {
    txn.execute_raw(stmt(
        "DELETE FROM public.tenant_schema_migrations WHERE schema_name = $1",
        [schema.as_str().into()],
    ))
    .await?;
    Ok(())
}

/// Moves `from`'s shared record to `to`, as the schema is renamed (inside
/// the renaming transaction).
pub(crate) async fn renamed(
    txn: &DatabaseTransaction,
    from: &SchemaName,
    to: &SchemaName,
) -> Result<(), Error> {
    forget(txn, to).await?;
    txn.execute_raw(stmt(
        "UPDATE public.tenant_schema_migrations SET schema_name = $2 WHERE schema_name = $1",
        [from.as_str().into(), to.as_str().into()],
    ))
    .await?;
    Ok(())
}

/// Applies `tenant`'s pending migrations in one transaction.
pub async fn migrate_tenant(
    db: &DatabaseConnection,
    tenant: &Tenant,
    set: &[Box<dyn MigrationTrait>],
) -> Result<Vec<String>, Error> {
    let txn = db.begin().await?;
    let applied = apply_pending(&txn, tenant.schema(), set).await?;
    txn.commit().await?;
    Ok(applied)
}

/// Reverts the newest `steps` applied migrations of `tenant`, newest first,
/// in one transaction.
pub async fn rollback_tenant(
    db: &DatabaseConnection,
    tenant: &Tenant,
    set: &[Box<dyn MigrationTrait>],
    steps: usize,
) -> Result<Vec<String>, Error> {
    let schema = tenant.schema();
    let txn = db.begin().await?;
    lock_schema(&txn, schema).await?;
    enter_schema(&txn, schema, Then::Nothing).await?;
    let q = schema.quoted();
    let rows = txn
        .query_all_raw(stmt(
            &format!("SELECT version FROM {q}.tenant_migrations ORDER BY version DESC LIMIT $1"),
            [(steps as i64).into()],
        ))
        .await?;
    let mut reverted = Vec::new();
    for row in rows {
        let version: String = row.try_get_by_index(0)?;
        let Some(migration) = set.iter().find(|m| m.name() == version) else {
            return Err(Error::Migration {
                schema: schema.clone(),
                version,
                source: sea_orm::DbErr::Custom("unknown to this migrator".into()),
            });
        };
        migration
            .down(&SchemaManager::new(&txn))
            .await
            .map_err(|source| Error::Migration {
                schema: schema.clone(),
                version: version.clone(),
                source,
            })?;
        txn.execute_raw(stmt(
            &format!("DELETE FROM {q}.tenant_migrations WHERE version = $1"),
            [version.clone().into()],
        ))
        .await?;
        txn.execute_raw(stmt(
            "DELETE FROM public.tenant_schema_migrations \
             WHERE schema_name = $1 AND version = $2",
            [schema.as_str().into(), version.clone().into()],
        ))
        .await?;
        reverted.push(version);
    }
    txn.commit().await?;
    Ok(reverted)
}

/// Where one tenant's schema stands against a migration set.
#[derive(Debug, Clone, Serialize)]
pub struct TenantMigrationStatus {
    pub slug: String,
    pub schema: String,
    pub applied: Vec<String>,
    pub pending: Vec<String>,
    /// Set when the schema cannot be migrated as it is (for example missing).
    pub problem: Option<String>,
}

impl TenantMigrationStatus {
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.problem.is_none()
    }
}

#[derive(FromQueryResult)]
struct SchemaInfo {
    nspname: String,
    has_table: bool,
}

#[derive(FromQueryResult)]
struct AppliedRow {
    schema: String,
    version: String,
}

/// How many schemas one `UNION ALL` status query reads.
const STATUS_CHUNK: usize = 500;

/// Where [`status`] reads which migrations each schema has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Source {
    /// The shared record: one indexed read at any number of tenants.
    #[default]
    Shared,
    /// Each schema's own `tenant_migrations` table, in `UNION ALL` queries
    /// of 500 schemas; opens one table per tenant. For checking the shared
    /// record against the schemas (after restoring a schema by hand, say).
    Schemas,
}

/// The migration status of every tenant in `tenants`, read from `source`.
pub async fn status(
    db: &DatabaseConnection,
    tenants: &[Tenant],
    set: &[Box<dyn MigrationTrait>],
    source: Source,
) -> Result<Vec<TenantMigrationStatus>, Error> {
    let names: Vec<String> = tenants
        .iter()
        .map(|t| t.schema().as_str().to_owned())
        .collect();
    // Joined with the names unnested: `= ANY(array)` compares each of
    // 10,000 catalog rows with each of 10,000 names. Whether each schema
    // has its own table only matters when reading those tables.
    let infos = SchemaInfo::find_by_statement(stmt(
        &format!(
            "SELECT n.nspname::text AS nspname, {} AS has_table \
             FROM unnest($1::text[]) s(name) JOIN pg_namespace n ON n.nspname = s.name",
            match source {
                Source::Shared => "true",
                Source::Schemas => {
                    "EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid \
                     AND c.relname = 'tenant_migrations' AND c.relkind = 'r')"
                }
            }
        ),
        [names.clone().into()],
    ))
    .all(db)
    .await?;
    let exists: HashMap<String, bool> = infos
        .into_iter()
        .map(|i| (i.nspname, i.has_table))
        .collect();

    let mut applied: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut add = |rows: Vec<AppliedRow>| {
        for row in rows {
            applied.entry(row.schema).or_default().insert(row.version);
        }
    };
    match source {
        Source::Shared => add(AppliedRow::find_by_statement(stmt(
            "SELECT m.schema_name AS schema, m.version \
             FROM unnest($1::text[]) s(name) \
             JOIN public.tenant_schema_migrations m ON m.schema_name = s.name",
            [names.into()],
        ))
        .all(db)
        .await?),
        Source::Schemas => {
            let with_table: Vec<&Tenant> = tenants
                .iter()
                .filter(|t| exists.get(t.schema().as_str()) == Some(&true))
                .collect();
            for chunk in with_table.chunks(STATUS_CHUNK) {
                let sql = chunk
                    .iter()
                    .map(|t| {
                        format!(
                            "SELECT '{}'::text AS schema, version FROM {}.tenant_migrations",
                            t.schema().as_str(),
                            t.schema().quoted()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" UNION ALL ");
                add(AppliedRow::find_by_statement(stmt(&sql, []))
                    .all(db)
                    .await?);
            }
        }
    }

    Ok(tenants
        .iter()
        .map(|t| {
            let schema = t.schema().as_str();
            let done = applied.remove(schema).unwrap_or_default();
            let (applied, pending): (Vec<_>, Vec<_>) = set
                .iter()
                .map(|m| m.name().to_owned())
                .partition(|v| done.contains(v));
            TenantMigrationStatus {
                slug: t.slug().to_string(),
                schema: schema.to_owned(),
                applied,
                pending,
                problem: (!exists.contains_key(schema))
                    .then(|| format!("schema {schema} does not exist")),
            }
        })
        .collect())
}

/// What happened to one tenant in a migration run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TenantOutcome {
    /// Nothing was pending.
    UpToDate { slug: String },
    /// These versions were applied.
    Migrated { slug: String, applied: Vec<String> },
    /// The tenant's transaction was rolled back; its schema is as it was.
    Failed { slug: String, error: String },
}

impl TenantOutcome {
    pub fn slug(&self) -> &str {
        match self {
            Self::UpToDate { slug } | Self::Migrated { slug, .. } | Self::Failed { slug, .. } => {
                slug
            }
        }
    }

    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failed { .. })
    }
}

/// Tenants one connection migrates before it is closed. A backend keeps
/// every tenant function it ran, with its plans, and walks them all on each
/// invalidation DDL sends, so one that migrated thousands of tenants grows
/// slow (see [`crate::db::one_use`]); a connection per tenant pays a
/// backend's start and cold caches each time instead (about 30 ms here).
const TENANTS_PER_CONNECTION: usize = 50;

/// Brings every tenant in `tenants` up to date, `concurrency` at a time.
///
/// Tenants already current (found with [`status`] from `source`, on the
/// registry's pool) are reported without opening a transaction. Each other
/// tenant is migrated in its own locked transaction; each worker's
/// connection serves at most [`TENANTS_PER_CONNECTION`] tenants and is then
/// closed. A failure is reported and the rest go on.
/// `on_outcome` is called as each tenant finishes (for progress display).
pub async fn migrate_all(
    registry: &Registry,
    tenants: &[Tenant],
    set: &[Box<dyn MigrationTrait>],
    source: Source,
    concurrency: usize,
    mut on_outcome: impl FnMut(&TenantOutcome),
) -> Result<Vec<TenantOutcome>, Error> {
    let statuses = status(registry.db(), tenants, set, source).await?;
    let mut outcomes = Vec::with_capacity(tenants.len());
    let mut todo = Vec::new();
    for (tenant, st) in tenants.iter().zip(&statuses) {
        if st.is_current() {
            let outcome = TenantOutcome::UpToDate {
                slug: st.slug.clone(),
            };
            on_outcome(&outcome);
            outcomes.push(outcome);
        } else {
            todo.push(tenant);
        }
    }
    // Each worker migrates a share of the tenants on one connection, at
    // most TENANTS_PER_CONNECTION, then closes it and opens another.
    let workers = concurrency.max(1);
    let per_connection = todo
        .len()
        .div_ceil(workers)
        .clamp(1, TENANTS_PER_CONNECTION);
    let (done, mut told) = futures::channel::mpsc::unbounded();
    let work = async move {
        futures::stream::iter(todo.chunks(per_connection))
            .for_each_concurrent(workers, |share| {
                let done = done.clone();
                async move {
                    let db = crate::db::one_for_a_while(registry.db());
                    for tenant in share {
                        let slug = tenant.slug().to_string();
                        let outcome = match migrate_tenant(&db, tenant, set).await {
                            Ok(applied) if applied.is_empty() => TenantOutcome::UpToDate { slug },
                            Ok(applied) => TenantOutcome::Migrated { slug, applied },
                            Err(err) => TenantOutcome::Failed {
                                slug,
                                error: err.to_string(),
                            },
                        };
                        // The receiver outlives the work.
                        let _ = done.unbounded_send(outcome);
                    }
                    let _ = db.close().await;
                }
            })
            .await;
    };
    let report = async {
        while let Some(outcome) = told.next().await {
            on_outcome(&outcome);
            outcomes.push(outcome);
        }
    };
    futures::join!(work, report);
    Ok(outcomes)
}
