//! Layered configuration: the checked-in `config/default.toml`, then an
//! optional file named by `STRATA_CONFIG`, then `STRATA__SECTION__KEY`
//! environment variables.
//!
//! Each binary deserialises the sections it needs; the sections shared by the
//! server and the migrator are defined here.

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The checked-in defaults, compiled in so binaries run from any directory.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/default.toml");

/// A configuration value that is missing or unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// Reads the layered configuration into `T`.
pub fn load<T: DeserializeOwned>() -> Result<T, ConfigError> {
    let mut builder = config::Config::builder().add_source(config::File::from_str(
        DEFAULT_CONFIG,
        config::FileFormat::Toml,
    ));
    if let Ok(path) = std::env::var("STRATA_CONFIG") {
        builder = builder.add_source(config::File::with_name(&path).required(true));
    }
    let settings = builder
        .add_source(
            config::Environment::with_prefix("STRATA")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                // Lists in one variable, comma-separated.
                .list_separator(",")
                .with_list_parse_key("server.trusted_proxies")
                .with_list_parse_key("events.allow_targets"),
        )
        .build()?;
    Ok(settings.try_deserialize()?)
}

fn read_plan_cache_mode() -> String {
    "force_generic_plan".into()
}

fn read_pools() -> u32 {
    8
}

fn read_pool_size() -> u32 {
    4
}

fn read_connection_max_mib() -> u64 {
    256
}

fn read_connection_check_ms() -> u64 {
    10_000
}

fn read_pool_spill() -> bool {
    false
}

fn statistics_refresh_ms() -> u64 {
    1000
}

fn statement_cache() -> usize {
    4000
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub pool_size: u32,
    pub acquire_timeout_ms: u64,
    /// Cache prepared statements per connection. Off behind a
    /// transaction-pooling PgBouncer older than 1.21.
    #[serde(default = "yes")]
    pub prepared_statements: bool,
    /// Prepared statements each connection keeps.
    #[serde(default = "statement_cache")]
    pub statement_cache: usize,
    /// Pools for reads that name a tenant's schema; each tenant's reads go
    /// to one of them (see [`crate::db::ReadPools`]).
    #[serde(default = "read_pools")]
    pub read_pools: u32,
    /// Connections in each read pool.
    #[serde(default = "read_pool_size")]
    pub read_pool_size: u32,
    /// `plan_cache_mode` of the read pools' connections.
    #[serde(default = "read_plan_cache_mode")]
    pub read_plan_cache_mode: String,
    /// Whether a tenant's read goes to another read pool when its own has
    /// no idle connection left while another has; `false` keeps each
    /// tenant on its own pool. See [`crate::db::ReadPools`].
    #[serde(default = "read_pool_spill")]
    pub read_pool_spill: bool,
    /// Backend memory (MiB) past which a read connection is closed when it
    /// is released instead of going back to its pool; 0 keeps it however
    /// big. See [`crate::db::ReadPools`].
    #[serde(default = "read_connection_max_mib")]
    pub read_connection_max_mib: u64,
    /// A read pool looks at the backend memory of one connection it gets
    /// back once in this many milliseconds (0: every one).
    #[serde(default = "read_connection_check_ms")]
    pub read_connection_check_ms: u64,
    /// How often the server refreshes the planner statistics of tenant
    /// tables it wrote that have outgrown them (ms; 0 leaves them to
    /// autovacuum). See [`crate::statistics`].
    #[serde(default = "statistics_refresh_ms")]
    pub statistics_refresh_ms: u64,
    /// PostgreSQL itself, for `LISTEN` (which a transaction-pooling
    /// PgBouncer cannot carry); `url` when unset.
    #[serde(default)]
    pub listen_url: Option<String>,
}

fn yes() -> bool {
    true
}

impl DatabaseSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            return Err(invalid(
                "database.url",
                "must be a postgres:// or postgresql:// URL",
            ));
        }
        if let Some(url) = &self.listen_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.listen_url",
                "must be a postgres:// or postgresql:// URL",
            ));
        }
        if !(1..=1000).contains(&self.pool_size) {
            return Err(invalid("database.pool_size", "must be between 1 and 1000"));
        }
        if !(1..=64).contains(&self.read_pools) {
            return Err(invalid("database.read_pools", "must be between 1 and 64"));
        }
        if !(1..=1000).contains(&self.read_pool_size) {
            return Err(invalid(
                "database.read_pool_size",
                "must be between 1 and 1000",
            ));
        }
        if !["auto", "force_generic_plan", "force_custom_plan"]
            .contains(&self.read_plan_cache_mode.as_str())
        {
            return Err(invalid(
                "database.read_plan_cache_mode",
                "must be auto, force_generic_plan or force_custom_plan",
            ));
        }
        if self.acquire_timeout_ms == 0 {
            return Err(invalid("database.acquire_timeout_ms", "must be above 0"));
        }
        Ok(())
    }

    /// Where to `LISTEN`: `listen_url`, or `url`.
    pub fn listen_url(&self) -> &str {
        self.listen_url.as_deref().unwrap_or(&self.url)
    }

    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

/// `[redis]`
#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: String,
    pub prefix: String,
}

impl RedisSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        redis::Client::open(self.url.as_str()).map_err(|e| invalid("redis.url", e.to_string()))?;
        if self.prefix.is_empty() || self.prefix.contains(char::is_whitespace) {
            return Err(invalid(
                "redis.prefix",
                "must be non-empty and without white space",
            ));
        }
        Ok(())
    }
}

/// `[tenancy]`
#[derive(Debug, Clone, Deserialize)]
pub struct TenancySettings {
    pub base_domain: String,
    pub allow_tenant_header: bool,
    pub cache_ttl_secs: u64,
    /// Spare schemas each server keeps ready (see [`crate::spares`]).
    #[serde(default)]
    pub spare_schemas: u32,
    /// What the spares it makes are named once taken.
    #[serde(default)]
    pub spare_names: crate::spares::SpareNames,
}

impl TenancySettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        match crate::host::normalize(&self.base_domain) {
            Ok(h) if h == self.base_domain => Ok(()),
            _ => Err(invalid(
                "tenancy.base_domain",
                "must be a lower-case host name without port, such as example.com",
            )),
        }?;
        if self.cache_ttl_secs == 0 {
            return Err(invalid("tenancy.cache_ttl_secs", "must be above 0"));
        }
        Ok(())
    }
}

/// `[archive]`: tenant export archives.
#[derive(Debug, Clone, Deserialize)]
pub struct ArchiveSettings {
    /// Signs each archive's manifest (HMAC-SHA256): an import refuses an
    /// archive whose manifest or rows were changed, or that another
    /// installation (another secret) made. At least 32 bytes.
    pub secret: String,
    /// Largest archive the operator API takes in an import, in MiB.
    #[serde(default = "default_upload_mib")]
    pub max_upload_mib: u64,
}

fn default_upload_mib() -> u64 {
    1024
}

impl ArchiveSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.secret.len() < 32 {
            return Err(invalid("archive.secret", "must be at least 32 bytes"));
        }
        Ok(())
    }

    /// Whether the secret is the checked-in development one.
    pub fn is_development(&self) -> bool {
        self.secret.contains("development-only")
    }
}
