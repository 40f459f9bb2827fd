//! The server's Redis connection, made on first use and shared; keys are
//! namespaced by `redis.prefix`.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use crate::error::ApiError;

/// How long one Redis command or connection attempt may take.
const DEADLINE: Duration = Duration::from_millis(250);

pub struct Kv {
    client: redis::Client,
    prefix: String,
    conn: OnceCell<ConnectionManager>,
}

impl Kv {
    pub fn new(client: redis::Client, prefix: &str) -> Self {
        Self {
            client,
            prefix: prefix.to_owned(),
            conn: OnceCell::new(),
        }
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// `<prefix>:<name>`.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    /// A multiplexed connection that reconnects by itself. Every command
    /// has a short deadline and a lost connection is retried once, quickly:
    /// with Redis gone a request fails (503) in milliseconds instead of
    /// waiting through a long reconnect schedule.
    pub async fn conn(&self) -> Result<ConnectionManager, ApiError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEADLINE))
            .set_response_timeout(Some(DEADLINE))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(50));
        let conn = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            self.conn.get_or_try_init(|| {
                self.client
                    .get_connection_manager_with_config(config.clone())
            }),
        )
        .await
        .map_err(|_| ApiError::Unavailable("redis"))?
        .map_err(|_| ApiError::Unavailable("redis"))?;
        Ok(conn.clone())
    }
}
