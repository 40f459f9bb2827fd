//! The server's settings: `config/default.toml`, then `STRATA_CONFIG`, then
//! `STRATA__SECTION__KEY` environment variables (see `tenancy::config`).

use std::net::SocketAddr;

use serde::Deserialize;
use tenancy::config::{ConfigError, DatabaseSettings, RedisSettings, TenancySettings};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub tenancy: TenancySettings,
    pub auth: AuthSettings,
    pub sync: SyncSettings,
    pub audit: AuditSettings,
    pub jobs: JobSettings,
    pub archive: tenancy::config::ArchiveSettings,
    pub events: crate::webhooks::EventSettings,
    pub limits: crate::limits::LimitSettings,
    pub signup: SignupSettings,
    pub log: LogSettings,
}

/// `[audit]`
#[derive(Debug, Clone, Deserialize)]
pub struct AuditSettings {
    /// Days journal entries are kept where a tenant has not set its own
    /// retention; older ones are purged by the maintenance loop.
    pub retention_days: u64,
}

/// `[jobs]`
#[derive(Debug, Clone, Deserialize)]
pub struct JobSettings {
    /// Job workers this server runs (0: none; another process runs them,
    /// e.g. `migrator jobs work`).
    pub workers: usize,
    /// How often an idle worker looks for ready items it was not woken
    /// for (retries whose wait is over).
    pub idle_poll_ms: u64,
}

/// `[signup]`
#[derive(Debug, Clone, Deserialize)]
pub struct SignupSettings {
    /// New tenants wait, unverified and not served, until the first
    /// administrator presents the token e-mailed to them.
    pub verify_email: bool,
    /// How long a verification token is valid; unverified tenants are
    /// removed after it.
    pub verification_ttl_secs: u64,
    /// The link in the message; `{token}` is replaced by the token.
    pub verify_link: String,
    /// The template every signed-up tenant is provisioned from (empty:
    /// none).
    #[serde(default)]
    pub template: String,
}

/// `[sync]`
#[derive(Debug, Clone, Deserialize)]
pub struct SyncSettings {
    pub tombstone_retention_days: u64,
    pub purge_interval_secs: u64,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub listen: String,
    pub workers: usize,
    /// Development mode: the checked-in development secret is accepted.
    #[serde(default)]
    pub development: bool,
    /// Proxies (addresses or blocks) whose `X-Forwarded-For` is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// `[auth]`
#[derive(Clone, Deserialize)]
pub struct AuthSettings {
    pub jwt_secret: String,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    pub max_failures_per_account: u64,
    pub max_failures_per_account_total: u64,
    pub max_failures_per_address: u64,
    pub failure_window_secs: u64,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("jwt_secret", &"<redacted>")
            .finish()
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Settings {
    /// Loads and checks the settings; an error names the offending key.
    pub fn load() -> Result<Self, ConfigError> {
        let settings: Self = tenancy::config::load()?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        crate::client_ip::TrustedProxies::parse(&self.server.trusted_proxies).map_err(
            |reason| ConfigError::Invalid {
                key: "server.trusted_proxies",
                reason,
            },
        )?;
        self.database.validate()?;
        self.redis.validate()?;
        self.tenancy.validate()?;
        if self.auth.jwt_secret.len() < 32 {
            return Err(ConfigError::Invalid {
                key: "auth.jwt_secret",
                reason: "must be at least 32 bytes".into(),
            });
        }
        if !self.server.development && is_placeholder(&self.auth.jwt_secret) {
            return Err(ConfigError::Invalid {
                key: "auth.jwt_secret",
                reason: "is the development secret or a placeholder: set a random secret of \
                         32 bytes or more (STRATA__AUTH__JWT_SECRET), or run in development \
                         mode (STRATA__SERVER__DEVELOPMENT=true)"
                    .into(),
            });
        }
        self.archive.validate()?;
        if !self.server.development && self.archive.is_development() {
            return Err(ConfigError::Invalid {
                key: "archive.secret",
                reason: "is the development secret: set your own of 32 bytes or more \
                         (STRATA__ARCHIVE__SECRET), or run in development mode"
                    .into(),
            });
        }
        for (key, value) in [
            ("auth.access_ttl_secs", self.auth.access_ttl_secs),
            ("auth.refresh_ttl_secs", self.auth.refresh_ttl_secs),
            (
                "auth.max_failures_per_account",
                self.auth.max_failures_per_account,
            ),
            (
                "auth.max_failures_per_account_total",
                self.auth.max_failures_per_account_total,
            ),
            (
                "auth.max_failures_per_address",
                self.auth.max_failures_per_address,
            ),
            ("auth.failure_window_secs", self.auth.failure_window_secs),
            (
                "sync.tombstone_retention_days",
                self.sync.tombstone_retention_days,
            ),
            ("sync.purge_interval_secs", self.sync.purge_interval_secs),
            ("audit.retention_days", self.audit.retention_days),
            (
                "signup.verification_ttl_secs",
                self.signup.verification_ttl_secs,
            ),
            (
                "limits.tenant_per_minute",
                self.limits.tenant_per_minute.into(),
            ),
            ("limits.tenant_burst", self.limits.tenant_burst.into()),
            ("limits.user_per_minute", self.limits.user_per_minute.into()),
            ("limits.user_burst", self.limits.user_burst.into()),
            ("limits.signup_per_hour", self.limits.signup_per_hour.into()),
            ("limits.signup_burst", self.limits.signup_burst.into()),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be above 0".into(),
                });
            }
        }
        crate::webhooks::allowed(&self.events).map_err(|reason| ConfigError::Invalid {
            key: "events.allow_targets",
            reason,
        })?;
        for (key, value) in [
            (
                "events.max_attempts",
                self.events.max_attempts.max(0) as u64,
            ),
            ("events.poll_interval_ms", self.events.poll_interval_ms),
            (
                "events.delivery_timeout_ms",
                self.events.delivery_timeout_ms,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be above 0".into(),
                });
            }
        }
        if self.audit.retention_days > 36_500 {
            return Err(ConfigError::Invalid {
                key: "audit.retention_days",
                reason: "must be at most 36500".into(),
            });
        }
        if self.log.level.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: "log.level",
                reason: "must name a level such as info".into(),
            });
        }
        Ok(())
    }

    /// The key that signs sync cursors: derived from the token secret but
    /// its own, so a signed cursor is never a valid token and back.
    pub fn cursor_secret(&self) -> Vec<u8> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"strata sync cursor key\0");
        h.update(self.auth.jwt_secret.as_bytes());
        h.finalize().to_vec()
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server
            .listen
            .parse()
            .map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
                key: "server.listen",
                reason: format!("`{}`: {e}", self.server.listen),
            })
    }
}

/// The checked-in development secret, or a placeholder of the deploy files
/// (`change-me…`, `CHANGE_ME…`) or a secret of one repeated character.
fn is_placeholder(secret: &str) -> bool {
    let lower = secret.to_ascii_lowercase();
    lower.contains("change-me")
        || lower.contains("change_me")
        || lower.contains("development-only")
        || secret.chars().all(|c| secret.starts_with(c))
}
