//! What every handler shares.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tenancy::Resolver;

use crate::auth::TokenKeys;
use crate::auth::standing::Standings;
use crate::configuration::AuthSettings;
use crate::kv::Kv;

/// The application state handlers reach through `web::Data`.
pub struct AppState {
    pub db: DatabaseConnection,
    /// `database.prepared_statements`: reads may run outside transactions.
    pub prepared_statements: bool,
    /// Where reads that name a tenant's schema run.
    pub reads: tenancy::db::ReadPools,
    pub kv: Kv,
    pub resolver: Arc<Resolver>,
    pub tokens: TokenKeys,
    pub standings: Arc<Standings>,
    /// Each tenant's custom field definitions and role permissions.
    pub rules: Arc<crate::rules::Rules>,
    /// Drops what this server cached of a change its own request committed
    /// (see `tenancy::scope::on_commit`).
    pub on_commit: tenancy::scope::OnCommit,
    pub auth: AuthSettings,
    pub limits: crate::limits::LimitSettings,
    pub signup: crate::configuration::SignupSettings,
    pub audit: crate::configuration::AuditSettings,
    /// `events.allow_targets`: internal addresses webhooks may reach.
    pub allowed_targets: Vec<crate::client_ip::Cidr>,
    /// Wakes live streams when their tenant has news.
    pub wakeups: Arc<crate::stream::Wakeups>,
    pub concurrency: crate::limits::Concurrency,
    pub leases: crate::limits::Leases,
    /// Who is the client behind a trusted proxy.
    pub proxies: crate::client_ip::TrustedProxies,
    pub base_domain: String,
    pub cursors: sync_engine::CursorKey,
    /// Keys the console's CSRF tokens (derived from `auth.jwt_secret`).
    pub console_key: Vec<u8>,
    /// Signs and checks tenant archives.
    pub archive: tenancy::archive::ArchiveKey,
    /// Largest archive an import over HTTP takes, in bytes.
    pub archive_max_bytes: usize,
}
