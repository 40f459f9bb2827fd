//! Creating tenants: registry row, schema, every tenant migration and custom
//! domains, in one transaction.

use sea_orm::{ConnectionTrait, FromQueryResult, TransactionTrait};
use sea_orm_migration::MigrationTrait;
use uuid::Uuid;

use crate::error::{Error, is_duplicate};
use crate::host::normalize;
use crate::migrate::apply_pending;
use crate::registry::{Registry, Tenant, TenantStatus};
use crate::slug::{SchemaName, Slug};
use crate::sql::stmt;

/// A tenant to create, checked field by field before anything is written.
#[derive(Debug, Clone)]
pub struct NewTenant {
    slug: Slug,
    display_name: String,
    domains: Vec<String>,
    admin: Option<FirstAdmin>,
    verification: Option<Verification>,
    template: Option<String>,
}

/// A tenant that waits, `unverified`, until a token is presented: its hash,
/// how long it is valid, and the message carrying it, queued in
/// `public.mail_outbox` with the tenant.
#[derive(Debug, Clone)]
pub struct Verification {
    pub token_hash: Vec<u8>,
    pub ttl_secs: u64,
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

/// The first administrator, created with the tenant in the same transaction.
/// The caller validates the e-mail address and hashes the password.
#[derive(Clone)]
pub struct FirstAdmin {
    pub email: String,
    pub full_name: String,
    pub password_hash: String,
}

impl std::fmt::Debug for FirstAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstAdmin")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl NewTenant {
    /// `display_name` is trimmed; it must be 1 to 200 characters with no
    /// control characters. Each domain must be a host name outside the base
    /// domain (hosts under it are subdomains, served by slug); the first is
    /// the primary one.
    pub fn new(
        slug: Slug,
        display_name: &str,
        domains: &[String],
        base_domain: &str,
    ) -> Result<Self, Error> {
        let display_name = display_name.trim();
        if display_name.is_empty() || display_name.chars().count() > 200 {
            return Err(Error::InvalidDisplayName("must be 1 to 200 characters"));
        }
        if display_name.chars().any(char::is_control) {
            return Err(Error::InvalidDisplayName(
                "must not contain control characters",
            ));
        }
        let mut hosts = Vec::with_capacity(domains.len());
        for raw in domains {
            let host = normalize(raw)
                .ok()
                .filter(|h| h == raw.trim_end_matches('.').to_ascii_lowercase().as_str())
                .ok_or_else(|| Error::InvalidDomain(raw.clone(), "not a host name"))?;
            if host == base_domain || host.ends_with(&format!(".{base_domain}")) {
                return Err(Error::InvalidDomain(
                    raw.clone(),
                    "hosts under the base domain are served by slug already",
                ));
            }
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        Ok(Self {
            slug,
            display_name: display_name.to_owned(),
            domains: hosts,
            admin: None,
            verification: None,
            template: None,
        })
    }

    /// Creates `admin` in the tenant's `Administrators` role as well.
    /// Provisions from template `name` (its configuration, and records if
    /// it has them), in the same transaction.
    pub fn from_template(mut self, name: impl Into<String>) -> Self {
        self.template = Some(name.into());
        self
    }

    pub fn with_admin(mut self, admin: FirstAdmin) -> Self {
        self.admin = Some(admin);
        self
    }

    /// The tenant stays `unverified` (not served) until `verification`'s
    /// token is presented to [`Registry::verify`].
    pub fn awaiting(mut self, verification: Verification) -> Self {
        self.verification = Some(verification);
        self
    }

    pub fn slug(&self) -> &Slug {
        &self.slug
    }
}

impl Registry {
    /// Makes the `unverified` tenant whose verification token hashes to
    /// `token_hash` active; the token is spent. `None` if no unexpired
    /// verification has that token.
    pub async fn verify(&self, token_hash: &[u8]) -> Result<Option<Tenant>, Error> {
        let txn = self.db().begin().await?;
        let sql = format!(
            "WITH v AS (DELETE FROM public.signup_verifications \
               WHERE token_hash = $1 AND expires_at > now() RETURNING tenant_id) \
             UPDATE public.tenants t SET status = 'active', updated_at = now() \
             FROM v WHERE t.id = v.tenant_id AND t.status = 'unverified' RETURNING {}",
            crate::registry::TENANT_COLUMNS
        );
        let row =
            crate::registry::TenantRow::find_by_statement(stmt(&sql, [token_hash.to_vec().into()]))
                .one(&txn)
                .await?;
        txn.commit().await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let tenant = Tenant::try_from(row)?;
        self.events().tenant_changed(tenant.id()).await;
        Ok(Some(tenant))
    }

    /// Deletes tenants whose sign-up was never verified in time, freeing
    /// their names; how many.
    pub async fn purge_unverified(&self) -> Result<usize, Error> {
        let expired: Vec<crate::registry::TenantRow> = crate::sql::read_all(
            self.db(),
            stmt(
                &format!(
                    "SELECT {} FROM public.tenants t \
                     WHERE t.status = 'unverified' AND NOT EXISTS ( \
                       SELECT 1 FROM public.signup_verifications v \
                       WHERE v.tenant_id = t.id AND v.expires_at > now())",
                    crate::registry::TENANT_COLUMNS
                ),
                [],
            ),
        )
        .await?;
        let mut purged = 0;
        for row in expired {
            let tenant = Tenant::try_from(row)?;
            // Verified meanwhile: kept.
            match self
                .delete_if(tenant.slug(), Some(TenantStatus::Unverified))
                .await
            {
                Ok(_) => purged += 1,
                Err(Error::TenantNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(purged)
    }

    /// Creates a tenant with the shipped tenant migrations.
    pub async fn create(&self, new: &NewTenant) -> Result<Tenant, Error> {
        self.create_with(new, &crate::migrate::tenant_migrations())
            .await
    }

    /// Creates a tenant, applying `migrations` to its new schema. Either the
    /// tenant is registered, its schema fully migrated and its domains
    /// recorded, or nothing at all is left behind.
    pub async fn create_with(
        &self,
        new: &NewTenant,
        migrations: &[Box<dyn MigrationTrait>],
    ) -> Result<Tenant, Error> {
        // A spare is taken on a pooled connection; a schema migrated on the
        // spot is made on a connection closed afterwards (`Registry::ddl`).
        let txn = self.db().begin().await?;
        let (txn, row) = match provision_with(&txn, new, migrations, Fresh::No).await? {
            Some((row, _)) => (txn, row),
            None => {
                txn.rollback().await?;
                let txn = self.ddl().begin().await?;
                let (row, _) = provision(&txn, new, migrations).await?;
                (txn, row)
            }
        };
        let status = match &new.verification {
            Some(v) => {
                txn.execute_raw(stmt(
                    "WITH v AS (INSERT INTO public.signup_verifications \
                       (tenant_id, token_hash, expires_at) \
                       VALUES ($1, $2, now() + make_interval(secs => $3))) \
                     INSERT INTO public.mail_outbox (id, recipient, subject, body) \
                     VALUES ($4, $5, $6, $7)",
                    [
                        row.id.into(),
                        v.token_hash.clone().into(),
                        (v.ttl_secs as f64).into(),
                        Uuid::now_v7().into(),
                        v.recipient.as_str().into(),
                        v.subject.as_str().into(),
                        v.body.as_str().into(),
                    ],
                ))
                .await?;
                TenantStatus::Unverified
            }
            None => TenantStatus::Active,
        };
        let sql = format!(
            "UPDATE public.tenants t SET status = $2, updated_at = now() \
             WHERE t.id = $1 RETURNING {}",
            crate::registry::TENANT_COLUMNS
        );
        let row = crate::registry::TenantRow::find_by_statement_one(
            &txn,
            stmt(&sql, [row.id.into(), status.as_str().into()]),
        )
        .await?;
        txn.commit().await?;
        let tenant = Tenant::try_from(row)?;
        self.events().tenant_changed(tenant.id()).await;
        Ok(tenant)
    }
}

/// Whether provisioning may make a schema when no spare is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    /// Yes: create it and run every migration.
    Make,
    /// No: provision nothing (`None`).
    No,
}

/// Registers `new` as `provisioning`, creates its schema with
/// `migrations`, its first administrator and its domains, inside `txn`;
/// its registry row and schema.
pub(crate) async fn provision(
    txn: &sea_orm::DatabaseTransaction,
    new: &NewTenant,
    migrations: &[Box<dyn MigrationTrait>],
) -> Result<(crate::registry::TenantRow, SchemaName), Error> {
    provision_with(txn, new, migrations, Fresh::Make)
        .await?
        .ok_or_else(|| Error::Database(sea_orm::DbErr::Custom("no schema was made".into())))
}

/// [`provision`]; `None` (nothing done) when no spare is ready and `fresh`
/// is [`Fresh::No`].
async fn provision_with(
    txn: &sea_orm::DatabaseTransaction,
    new: &NewTenant,
    migrations: &[Box<dyn MigrationTrait>],
    fresh: Fresh,
) -> Result<Option<(crate::registry::TenantRow, SchemaName)>, Error> {
    // A spare schema if one is ready (see `spares`), else a new one named
    // after the slug.
    let slug_schema = new.slug.schema_name();
    let spare = crate::spares::take(txn, migrations).await?;
    let schema = match &spare {
        Some(s) => crate::spares::schema_of(s, &slug_schema),
        None if fresh == Fresh::Make => slug_schema,
        None => return Ok(None),
    };
    let sql = format!(
        "INSERT INTO public.tenants AS t (id, slug, schema_name, display_name, status) \
         VALUES ($1, $2, $3, $4, 'provisioning') RETURNING {}",
        crate::registry::TENANT_COLUMNS
    );
    let inserted = crate::registry::TenantRow::find_by_statement_one(
        txn,
        stmt(
            &sql,
            [
                Uuid::now_v7().into(),
                new.slug.as_str().into(),
                schema.as_str().into(),
                new.display_name.as_str().into(),
            ],
        ),
    )
    .await;
    let row = match inserted {
        Ok(row) => row,
        Err(e) if is_duplicate(&e) => return Err(Error::TenantExists(new.slug.clone())),
        Err(e) => return Err(e.into()),
    };
    if spare.as_ref() != Some(&schema) {
        let orphan = txn
            .query_one_raw(stmt(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1",
                [schema.as_str().into()],
            ))
            .await?
            .is_some();
        if orphan {
            return Err(Error::OrphanSchema(schema));
        }
    }
    match &spare {
        Some(s) => crate::spares::settle(txn, s, &schema).await?,
        None => match txn
            .execute_unprepared(&format!("CREATE SCHEMA {}", schema.quoted()))
            .await
        {
            Ok(_) => {}
            Err(e) if is_duplicate(&e) => return Err(Error::OrphanSchema(schema)),
            Err(e) => return Err(e.into()),
        },
    }
    apply_pending(txn, &schema, migrations).await?;
    if let Some(template) = &new.template {
        crate::templates::apply(txn, &schema, template).await?;
    }
    if let Some(admin) = &new.admin {
        let q = schema.quoted();
        txn.execute_raw(stmt(
            &format!(
                "WITH u AS (INSERT INTO {q}.users (id, email, full_name, password_hash) \
                 VALUES ($1, $2, $3, $4) RETURNING id) \
                 INSERT INTO {q}.user_roles (user_id, role_id) \
                 SELECT u.id, r.id FROM u, {q}.roles r WHERE r.name = 'Administrators'"
            ),
            [
                Uuid::now_v7().into(),
                admin.email.as_str().into(),
                admin.full_name.as_str().into(),
                admin.password_hash.as_str().into(),
            ],
        ))
        .await?;
    }
    for (i, host) in new.domains.iter().enumerate() {
        let res = txn
            .execute_raw(stmt(
                "INSERT INTO public.tenant_domains (host, tenant_id, is_primary) \
                 VALUES ($1, $2, $3)",
                [host.as_str().into(), row.id.into(), (i == 0).into()],
            ))
            .await;
        match res {
            Ok(_) => {}
            Err(e) if is_duplicate(&e) => return Err(Error::DomainTaken(host.clone())),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some((row, schema)))
}
