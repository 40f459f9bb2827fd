//! Per-tenant schema migrations: applying, locking and reporting.
//!
//! Each tenant schema keeps its own `tenant_migrations` table. A tenant's
//! pending migrations are applied in one transaction that holds an advisory
//! lock on that schema, so two migrators never work on one schema at once and
//! a failure leaves the schema as it was. Status over many tenants is read
//! with a few catalog queries, not one session per tenant.

use std::collections::{BTreeSet, HashMap};

use futures::StreamExt;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, FromQueryResult, TransactionTrait,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait, SchemaManager};
use serde::Serialize;

use crate::error::Error;
use crate::registry::Tenant;
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

    let mut done = Vec::new();
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
    Ok(done)
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

/// The migration status of every tenant in `tenants`, read with one catalog
/// query plus one query per 500 tenants.
pub async fn status(
    db: &DatabaseConnection,
    tenants: &[Tenant],
    set: &[Box<dyn MigrationTrait>],
) -> Result<Vec<TenantMigrationStatus>, Error> {
    let names: Vec<String> = tenants
        .iter()
        .map(|t| t.schema().as_str().to_owned())
        .collect();
    let infos = SchemaInfo::find_by_statement(stmt(
        "SELECT n.nspname::text AS nspname, \
                EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid \
                        AND c.relname = 'tenant_migrations' AND c.relkind = 'r') AS has_table \
         FROM pg_namespace n WHERE n.nspname = ANY($1::text[])",
        [names.into()],
    ))
    .all(db)
    .await?;
    let exists: HashMap<String, bool> = infos
        .into_iter()
        .map(|i| (i.nspname, i.has_table))
        .collect();

    let with_table: Vec<&Tenant> = tenants
        .iter()
        .filter(|t| exists.get(t.schema().as_str()) == Some(&true))
        .collect();
    let mut applied: HashMap<String, BTreeSet<String>> = HashMap::new();
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
        for row in AppliedRow::find_by_statement(stmt(&sql, []))
            .all(db)
            .await?
        {
            applied.entry(row.schema).or_default().insert(row.version);
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

/// Brings every tenant in `tenants` up to date, `concurrency` at a time.
///
/// Tenants already current (found with [`status`]) are reported without
/// opening a transaction. Each other tenant is migrated in its own locked
/// transaction; a failure is reported and the rest go on. `on_outcome` is
/// called as each tenant finishes (for progress display).
pub async fn migrate_all(
    db: &DatabaseConnection,
    tenants: &[Tenant],
    set: &[Box<dyn MigrationTrait>],
    concurrency: usize,
    mut on_outcome: impl FnMut(&TenantOutcome),
) -> Result<Vec<TenantOutcome>, Error> {
    let statuses = status(db, tenants, set).await?;
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
    let mut runs = futures::stream::iter(todo)
        .map(|tenant| async move {
            let slug = tenant.slug().to_string();
            match migrate_tenant(db, tenant, set).await {
                Ok(applied) if applied.is_empty() => TenantOutcome::UpToDate { slug },
                Ok(applied) => TenantOutcome::Migrated { slug, applied },
                Err(err) => TenantOutcome::Failed {
                    slug,
                    error: err.to_string(),
                },
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(outcome) = runs.next().await {
        on_outcome(&outcome);
        outcomes.push(outcome);
    }
    Ok(outcomes)
}
