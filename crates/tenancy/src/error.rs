//! Errors of the tenancy crate.

use sea_orm::DbErr;

use crate::slug::{SchemaName, Slug, SlugError};

/// Everything that can go wrong creating, finding, migrating or entering a
/// tenant.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid slug `{input}`: {reason}")]
    InvalidSlug { input: String, reason: SlugError },
    #[error("invalid display name: {0}")]
    InvalidDisplayName(&'static str),
    #[error("invalid domain `{0}`: {1}")]
    InvalidDomain(String, &'static str),
    #[error("a tenant with slug `{0}` already exists")]
    TenantExists(Slug),
    #[error(
        "schema {0} already exists without a registered tenant; remove it or pick another slug"
    )]
    OrphanSchema(SchemaName),
    #[error("domain `{0}` already belongs to a tenant")]
    DomainTaken(String),
    #[error("an operator with e-mail `{0}` already exists")]
    OperatorExists(String),
    #[error("no tenant `{0}`")]
    TenantNotFound(String),
    #[error("tenant schema {0} does not exist")]
    SchemaMissing(SchemaName),
    #[error("migration {version} failed in schema {schema}: {source}")]
    Migration {
        schema: SchemaName,
        version: String,
        source: DbErr,
    },
    #[error(
        "tenant `{0}` is not at the current migration version: run `migrator tenants up` first"
    )]
    NotCurrent(crate::slug::Slug),
    #[error("the archive is refused: {0}")]
    Archive(String),
    #[error(
        "the archive comes from a newer schema (migrations {0:?} are unknown here): upgrade \
         Strata first"
    )]
    ArchiveNewer(Vec<String>),
    #[error("no template `{0}`")]
    TemplateNotFound(String),
    #[error("a template named `{0}` exists")]
    TemplateExists(String),
    #[error("invalid template: {0}")]
    InvalidTemplate(String),
    #[error("no job {0}")]
    JobNotFound(uuid::Uuid),
    #[error("invalid job: {0}")]
    InvalidJob(String),
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl Error {
    /// The slug was refused by [`Slug::parse`].
    pub fn invalid_slug(input: &str, reason: SlugError) -> Self {
        Self::InvalidSlug {
            input: input.chars().take(64).collect(),
            reason,
        }
    }
}

/// Parses a slug, turning a refusal into an [`Error`].
pub fn parse_slug(input: &str) -> Result<Slug, Error> {
    Slug::parse(input).map_err(|reason| Error::invalid_slug(input, reason))
}

/// The SQLSTATE of a database error, if the server sent one.
pub fn sqlstate(err: &DbErr) -> Option<String> {
    match err {
        DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e))
        | DbErr::Query(sea_orm::RuntimeErr::SqlxError(e))
        | DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e)) => sqlx_sqlstate(e),
        _ => None,
    }
}

/// The SQLSTATE of an sqlx error, if the server sent one.
pub fn sqlx_sqlstate(err: &sea_orm::sqlx::Error) -> Option<String> {
    err.as_database_error()
        .and_then(|db| db.code())
        .map(|c| c.into_owned())
}

/// True if `err` is PostgreSQL's unique_violation (23505) or
/// duplicate_schema (42P06).
pub(crate) fn is_duplicate(err: &DbErr) -> bool {
    matches!(sqlstate(err).as_deref(), Some("23505" | "42P06"))
}
