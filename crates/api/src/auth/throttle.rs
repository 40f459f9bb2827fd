//! Login throttling in Redis: attempts are counted per account and per
//! client address within a window, atomically and before the password is
//! checked, so parallel guesses cannot slip past the limit; a successful
//! sign-in takes its attempt back. Past the limit, attempts get 429 with
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

    /// Counts this attempt against the account and the address, and
    /// refuses it with 429 if either is then over its limit.
    pub async fn admit(&self) -> Result<(), ApiError> {
        let mut conn = self.kv.conn().await?;
        let window = self.window_secs as i64;
        let (account, _, address, _): (u64, i64, u64, i64) = redis::pipe()
            .atomic()
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
            .query_async(&mut conn)
            .await?;
        for (count, max, key) in [
            (account, self.max_account, &self.account_key),
            (address, self.max_address, &self.address_key),
        ] {
            if count > max {
                let ttl: i64 = conn.ttl(key).await?;
                return Err(ApiError::TooManyRequests {
                    retry_after: ttl.max(1) as u64,
                });
            }
        }
        Ok(())
    }

    /// Clears the account's count after a successful sign-in and takes
    /// the attempt back from the address's.
    pub async fn succeeded(&self) -> Result<(), ApiError> {
        let mut conn = self.kv.conn().await?;
        redis::pipe()
            .del(&self.account_key)
            .decr(&self.address_key, 1)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }
}
