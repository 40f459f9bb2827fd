//! Sign-in throttling in Redis, shared by every server instance, built so
//! that guessing is slow but nobody can lock another person out:
//!
//! - failures per account *from one client address* (`max_failures_per_account`):
//!   an attacker's guesses block the attacker's address for that account,
//!   not the account;
//! - failures per client address over every account and tenant
//!   (`max_failures_per_address`): one address cannot spray many accounts;
//! - failures per account from all addresses (`max_failures_per_account_total`),
//!   against distributed guessing. It does not apply to addresses the
//!   account has signed in from before (kept 30 days), so its owner still
//!   gets in from a known place while the account is under attack.
//!
//! Each attempt is counted atomically before the password is checked, so
//! parallel guesses cannot slip past a limit; a successful sign-in takes
//! its attempt back. Past a limit, attempts get 429 with `Retry-After`.

use std::net::IpAddr;

use redis::AsyncCommands;
use uuid::Uuid;

use crate::configuration::AuthSettings;
use crate::error::ApiError;
use crate::kv::Kv;

/// How long an address stays known to an account after a sign-in from it.
const KNOWN_FOR_SECS: i64 = 30 * 86_400;

pub struct Throttle<'a> {
    kv: &'a Kv,
    address: String,
    pair_key: String,
    address_key: String,
    account_key: String,
    known_key: String,
    settings: &'a AuthSettings,
}

impl<'a> Throttle<'a> {
    /// A sign-in to account `email` of `scope` (a tenant, or nil for
    /// operators) from `address` (unknown: all such attempts share a count).
    pub fn new(
        kv: &'a Kv,
        scope: Uuid,
        email: &str,
        address: Option<IpAddr>,
        settings: &'a AuthSettings,
    ) -> Self {
        let address = address.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
        Self {
            kv,
            pair_key: kv.key(&format!("sign-in:pair:{scope}:{address}/{email}")),
            address_key: kv.key(&format!("sign-in:address:{address}")),
            account_key: kv.key(&format!("sign-in:account:{scope}:{email}")),
            known_key: kv.key(&format!("sign-in:known:{scope}:{email}")),
            address,
            settings,
        }
    }

    /// Counts this attempt and refuses it with 429 if a limit is passed.
    pub async fn admit(&self) -> Result<(), ApiError> {
        let mut conn = self.kv.conn().await?;
        let window = self.settings.failure_window_secs as i64;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for key in [&self.pair_key, &self.address_key, &self.account_key] {
            pipe.incr(key, 1)
                .cmd("EXPIRE")
                .arg(key)
                .arg(window)
                .arg("NX")
                .ignore();
        }
        pipe.sismember(&self.known_key, &self.address);
        let (pair, address, account, known): (u64, u64, u64, bool) =
            pipe.query_async(&mut conn).await?;
        let s = self.settings;
        let over = [
            (pair > s.max_failures_per_account, &self.pair_key),
            (address > s.max_failures_per_address, &self.address_key),
            (
                account > s.max_failures_per_account_total && !known,
                &self.account_key,
            ),
        ];
        if let Some((_, key)) = over.iter().find(|(over, _)| *over) {
            let ttl: i64 = conn.ttl(*key).await?;
            return Err(ApiError::TooManyRequests {
                retry_after: ttl.max(1) as u64,
            });
        }
        Ok(())
    }

    /// After a successful sign-in: clears the count of this account from
    /// this address, takes the attempt back from the others, and remembers
    /// the address as known to the account.
    pub async fn succeeded(&self) -> Result<(), ApiError> {
        let mut conn = self.kv.conn().await?;
        redis::pipe()
            .del(&self.pair_key)
            .decr(&self.address_key, 1)
            .decr(&self.account_key, 1)
            .sadd(&self.known_key, &self.address)
            .expire(&self.known_key, KNOWN_FOR_SECS)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }
}
