//! Announcements of tenant changes over Redis pub/sub, so every server
//! process drops its cached view of a tenant at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;
use uuid::Uuid;

/// Publishes "tenant changed" on the deployment's Redis channel.
///
/// Clones share a count of the changes made through them, so a cache in the
/// same process sees its own process's change before the message comes back
/// from Redis.
#[derive(Clone)]
pub struct TenantEvents {
    client: redis::Client,
    channel: String,
    conn: Arc<OnceCell<ConnectionManager>>,
    local_changes: Arc<AtomicU64>,
}

impl TenantEvents {
    /// Events on channel `<prefix>:tenant-changed` of the Redis at `client`.
    pub fn new(client: redis::Client, prefix: &str) -> Self {
        Self {
            client,
            channel: Self::channel_name(prefix),
            conn: Default::default(),
            local_changes: Default::default(),
        }
    }

    /// Events on the Redis and prefix of `settings`.
    pub fn from_settings(
        settings: &crate::config::RedisSettings,
    ) -> Result<Self, redis::RedisError> {
        Ok(Self::new(
            redis::Client::open(settings.url.as_str())?,
            &settings.prefix,
        ))
    }

    pub fn channel_name(prefix: &str) -> String {
        format!("{prefix}:tenant-changed")
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// How many tenant changes were announced through this value or its
    /// clones, in this process.
    pub fn local_changes(&self) -> u64 {
        self.local_changes.load(Ordering::Acquire)
    }

    /// Announces that tenant `id` changed: at once to this process's
    /// caches ([`TenantEvents::local_changes`]), then to every process over
    /// Redis. The change is already committed, so a failure here cannot undo
    /// it: it is logged, and servers fall back to their cache lifetime (they
    /// stop caching while Redis is away).
    pub async fn tenant_changed(&self, id: Uuid) {
        self.local_changes.fetch_add(1, Ordering::AcqRel);
        let message = id.to_string();
        let publish = self.publish(&message);
        match tokio::time::timeout(std::time::Duration::from_secs(2), publish).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(%id, error = %err, "could not announce tenant change over redis");
            }
            Err(_) => tracing::warn!(%id, "redis did not take the tenant change within 2 s"),
        }
    }

    async fn publish(&self, message: &str) -> Result<(), redis::RedisError> {
        let conn = self
            .conn
            .get_or_try_init(|| self.client.get_connection_manager())
            .await?;
        let mut conn = conn.clone();
        redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(message)
            .query_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }
}
