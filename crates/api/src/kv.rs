//! The server's Redis connection, made on first use and shared; keys are
//! namespaced by `redis.prefix`.

use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

use crate::error::ApiError;

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

    /// A multiplexed connection that reconnects by itself.
    pub async fn conn(&self) -> Result<ConnectionManager, ApiError> {
        let conn = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            self.conn
                .get_or_try_init(|| self.client.get_connection_manager()),
        )
        .await
        .map_err(|_| ApiError::Unavailable("redis"))?
        .map_err(|_| ApiError::Unavailable("redis"))?;
        Ok(conn.clone())
    }
}
