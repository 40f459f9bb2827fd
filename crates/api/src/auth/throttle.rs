//! Login throttling in Redis: failures are counted per account and per
//! client address within a window; past the limit, attempts get 429 with
//! `Retry-After` until the window ends. Shared by every server instance.

use redis::AsyncCommands;
use uuid::Uuid;

use crate::error::ApiError;
use crate::kv::Kv;

pub struct Throttle<'a> {
    kv: &'a Kv,
    account_key: String,
    address_key: String,
    max_account: u64,
    max_address: u64,
    window_secs: u64,
}

impl<'a> Throttle<'a> {
    pub fn new(
        kv: &'a Kv,
        tenant: Uuid,
        email: &str,
        address: &str,
        settings: &crate::configuration::AuthSettings,
    ) -> Self {
        Self {
            kv,
            account_key: kv.key(&format!("login-failures:account:{tenant}:{email}")),
            address_key: kv.key(&format!("login-failures:address:{address}")),
            max_account: settings.max_failures_per_account,
            max_address: settings.max_failures_per_address,
            window_secs: settings.failure_window_secs,
        }
    }

    /// Refuses with 429 if either counter is at its limit.
    pub async fn check(&self) -> Result<(), ApiError> {
        let mut conn = self.kv.conn().await?;
        let (account, address): (Option<u64>, Option<u64>) = redis::pipe()
            .get(&self.account_key)
            .get(&self.address_key)
            .query_async(&mut conn)
            .await?;
        for (count, max, key) in [
            (account, self.max_account, &self.account_key),
            (address, self.max_address, &self.address_key),
        ] {
            if count.unwrap_or(0) >= max {
                let ttl: i64 = conn.ttl(key).await?;
                return Err(ApiError::TooManyRequests {
                    retry_after: ttl.max(1) as u64,
                });
            }
        }
        Ok(())
    }

    /// Counts a failed attempt against the account and the address.
    pub async fn failed(&self) -> Result<(), ApiError> {
        let mut conn = self.kv.conn().await?;
        let window = self.window_secs as i64;
        redis::pipe()
            .incr(&self.account_key, 1)
            .cmd("EXPIRE")
            .arg(&self.account_key)
            .arg(window)
            .arg("NX")
            .incr(&self.address_key, 1)
            .cmd("EXPIRE")
            .arg(&self.address_key)
            .arg(window)
            .arg("NX")
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Clears the account's failures after a successful login.
    pub async fn succeeded(&self) -> Result<(), ApiError> {
        let mut conn = self.kv.conn().await?;
        conn.del::<_, ()>(&self.account_key).await?;
        Ok(())
    }
}
