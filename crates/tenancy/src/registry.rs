//! The tenant registry in the `public` schema: tenants, their status and
//! their custom domains.

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, FromQueryResult, Statement, TransactionTrait, Value,
};
use serde::Serialize;
use uuid::Uuid;

use crate::error::{Error, parse_slug};
use crate::events::TenantEvents;
use crate::slug::{SchemaName, Slug};
use crate::sql::{lock_schema, read_all, read_one, stmt};

/// Where a tenant is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    /// Being created; never visible outside the creating transaction today,
    /// kept for provisioning that runs as a background job.
    Provisioning,
    /// Signed up, waiting for its first administrator to verify the
    /// e-mail address; not served (404) until then.
    Unverified,
    /// Serving requests.
    Active,
    /// Registered and migrated, but refused at the door (403).
    Suspended,
    /// Being removed.
    Deleting,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Unverified => "unverified",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleting => "deleting",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "provisioning" => Self::Provisioning,
            "unverified" => Self::Unverified,
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            "deleting" => Self::Deleting,
            _ => return None,
        })
    }
}

/// A registered tenant. Only the registry makes one, so holding a `Tenant`
/// means its slug was valid and its row existed when it was read.
#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    id: Uuid,
    slug: Slug,
    #[serde(skip)]
    schema: SchemaName,
    display_name: String,
    status: TenantStatus,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Tenant {
    pub fn id(&self) -> Uuid {
        self.id
    }
    pub fn slug(&self) -> &Slug {
        &self.slug
    }
    pub fn schema(&self) -> &SchemaName {
        &self.schema
    }
    pub fn display_name(&self) -> &str {
        &self.display_name
    }
    pub fn status(&self) -> TenantStatus {
        self.status
    }
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

/// A custom domain of a tenant.
#[derive(Debug, Clone, Serialize, FromQueryResult)]
pub struct TenantDomain {
    pub host: String,
    pub is_primary: bool,
}

#[derive(FromQueryResult)]
pub(crate) struct TenantRow {
    pub(crate) id: Uuid,
    slug: String,
    schema_name: String,
    display_name: String,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TenantRow {
    /// Runs `statement`, which must return exactly one tenant row.
    pub(crate) async fn find_by_statement_one(
        db: &impl ConnectionTrait,
        statement: Statement,
    ) -> Result<Self, sea_orm::DbErr> {
        Self::find_by_statement(statement)
            .one(db)
            .await?
            .ok_or_else(|| sea_orm::DbErr::RecordNotFound("tenant row".into()))
    }
}

impl TryFrom<TenantRow> for Tenant {
    type Error = Error;

    fn try_from(row: TenantRow) -> Result<Self, Error> {
        let slug = parse_slug(&row.slug)?;
        // The slug's schema, or the spare schema the tenant was made from.
        let schema = Some(slug.schema_name())
            .filter(|s| s.as_str() == row.schema_name)
            .or_else(|| SchemaName::kept_spare(&row.schema_name))
            .ok_or_else(|| {
                Error::Database(sea_orm::DbErr::Custom(format!(
                    "registry row of `{}` names schema {}, expected {} or a spare's",
                    row.slug,
                    row.schema_name,
                    slug.schema_name()
                )))
            })?;
        let status = TenantStatus::parse(&row.status).ok_or_else(|| {
            Error::Database(sea_orm::DbErr::Custom(format!(
                "unknown tenant status `{}`",
                row.status
            )))
        })?;
        Ok(Self {
            id: row.id,
            slug,
            schema,
            display_name: row.display_name,
            status,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub(crate) const TENANT_COLUMNS: &str =
    "t.id, t.slug, t.schema_name, t.display_name, t.status, t.created_at, t.updated_at";

async fn fetch_one(
    db: &impl ConnectionTrait,
    sql: &str,
    values: impl IntoIterator<Item = Value>,
) -> Result<Option<Tenant>, Error> {
    TenantRow::find_by_statement(stmt(sql, values))
        .one(db)
        .await?
        .map(Tenant::try_from)
        .transpose()
}

/// Reads and changes the tenant registry. Every change is announced on
/// [`TenantEvents`] after it commits, so every server drops its cached view.
#[derive(Clone)]
pub struct Registry {
    db: DatabaseConnection,
    ddl: DatabaseConnection,
    events: TenantEvents,
}

impl Registry {
    pub fn new(db: DatabaseConnection, events: TenantEvents) -> Self {
        let ddl = crate::db::one_use(&db);
        Self { db, ddl, events }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Connections for making and migrating schemas, each closed after one
    /// transaction (see [`crate::db::one_use`]).
    pub fn ddl(&self) -> &DatabaseConnection {
        &self.ddl
    }

    pub fn events(&self) -> &TenantEvents {
        &self.events
    }

    pub async fn find_by_slug(&self, slug: &Slug) -> Result<Option<Tenant>, Error> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM public.tenants t WHERE t.slug = $1");
        read_one::<TenantRow>(&self.db, stmt(&sql, [slug.as_str().into()]))
            .await?
            .map(Tenant::try_from)
            .transpose()
    }

    /// The tenant whose schema is `schema`.
    pub async fn find_by_schema(&self, schema: &str) -> Result<Option<Tenant>, Error> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM public.tenants t WHERE t.schema_name = $1");
        read_one::<TenantRow>(&self.db, stmt(&sql, [schema.into()]))
            .await?
            .map(Tenant::try_from)
            .transpose()
    }

    /// The tenant owning custom domain `host` (already normalised).
    pub async fn find_by_domain(&self, host: &str) -> Result<Option<Tenant>, Error> {
        let sql = format!(
            "SELECT {TENANT_COLUMNS} FROM public.tenant_domains d \
             JOIN public.tenants t ON t.id = d.tenant_id WHERE d.host = $1"
        );
        read_one::<TenantRow>(&self.db, stmt(&sql, [host.into()]))
            .await?
            .map(Tenant::try_from)
            .transpose()
    }

    /// The tenant with `slug`, or [`Error::TenantNotFound`].
    pub async fn get(&self, slug: &Slug) -> Result<Tenant, Error> {
        self.find_by_slug(slug)
            .await?
            .ok_or_else(|| Error::TenantNotFound(slug.to_string()))
    }

    /// Every tenant, ordered by slug.
    pub async fn list(&self) -> Result<Vec<Tenant>, Error> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM public.tenants t ORDER BY t.slug");
        read_all::<TenantRow>(&self.db, stmt(&sql, []))
            .await?
            .into_iter()
            .map(Tenant::try_from)
            .collect()
    }

    pub async fn domains(&self, tenant: &Tenant) -> Result<Vec<TenantDomain>, Error> {
        Ok(read_all(
            &self.db,
            stmt(
                "SELECT host, is_primary FROM public.tenant_domains \
                 WHERE tenant_id = $1 ORDER BY is_primary DESC, host",
                [tenant.id.into()],
            ),
        )
        .await?)
    }

    /// Refuses the tenant's requests with 403 until [`Registry::resume`].
    pub async fn suspend(&self, slug: &Slug) -> Result<Tenant, Error> {
        self.set_status(slug, TenantStatus::Suspended).await
    }

    pub async fn resume(&self, slug: &Slug) -> Result<Tenant, Error> {
        self.set_status(slug, TenantStatus::Active).await
    }

    async fn set_status(&self, slug: &Slug, status: TenantStatus) -> Result<Tenant, Error> {
        let sql = format!(
            "UPDATE public.tenants t SET status = $2, updated_at = now() \
             WHERE t.slug = $1 RETURNING {TENANT_COLUMNS}"
        );
        let tenant = read_one::<TenantRow>(
            &self.db,
            stmt(&sql, [slug.as_str().into(), status.as_str().into()]),
        )
        .await?
        .map(Tenant::try_from)
        .transpose()?
        .ok_or_else(|| Error::TenantNotFound(slug.to_string()))?;
        self.events.tenant_changed(tenant.id).await;
        Ok(tenant)
    }

    /// Drops the tenant's schema and removes its registry rows, in one
    /// transaction: either all of it is gone or none of it.
    pub async fn delete(&self, slug: &Slug) -> Result<Tenant, Error> {
        self.delete_if(slug, None).await
    }

    /// [`Registry::delete`], only if the tenant is (still) in `status`.
    pub(crate) async fn delete_if(
        &self,
        slug: &Slug,
        status: Option<TenantStatus>,
    ) -> Result<Tenant, Error> {
        let txn = self.db.begin().await?;
        let sql = format!(
            "UPDATE public.tenants t SET status = 'deleting', updated_at = now() \
             WHERE t.slug = $1 AND ($2::text IS NULL OR t.status = $2) \
             RETURNING {TENANT_COLUMNS}"
        );
        let tenant = fetch_one(
            &txn,
            &sql,
            [
                slug.as_str().into(),
                status.map(TenantStatus::as_str).into(),
            ],
        )
        .await?
        .ok_or_else(|| Error::TenantNotFound(slug.to_string()))?;
        lock_schema(&txn, &tenant.schema).await?;
        txn.execute_unprepared(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            tenant.schema.quoted()
        ))
        .await?;
        crate::migrate::forget(&txn, &tenant.schema).await?;
        txn.execute_raw(stmt(
            "DELETE FROM public.tenants WHERE id = $1",
            [tenant.id.into()],
        ))
        .await?;
        txn.commit().await?;
        self.events.tenant_changed(tenant.id).await;
        Ok(tenant)
    }
}
