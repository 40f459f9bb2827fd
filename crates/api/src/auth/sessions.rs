//! Refresh-token sessions, stored hashed in the tenant's `refresh_tokens`.
//!
//! A login starts a family; each refresh marks the presented token used and
//! issues the next one in the same family. Presenting a token that was
//! already used means it was stolen or replayed: the whole family is
//! revoked. Revoking a family ends its access tokens too, on every server
//! at once: see [`crate::auth::standing`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sea_orm::{ConnectionTrait, FromQueryResult};
use sha2::{Digest, Sha256};
use tenancy::{TenantTx, stmt};
use uuid::Uuid;

use crate::error::ApiError;

/// How a secret token is stored: its SHA-256.
pub fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A new random secret token (32 bytes, base64url).
pub fn new_token() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// Starts or continues session `family` for `user` with a new refresh token.
pub async fn issue(
    tx: &TenantTx,
    user: Uuid,
    family: Uuid,
    ttl_secs: u64,
) -> Result<String, ApiError> {
    let token = new_token();
    tx.conn()
        .execute_raw(stmt(
            "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at) \
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
            [
                Uuid::now_v7().into(),
                family.into(),
                user.into(),
                digest(&token).into(),
                (ttl_secs as f64).into(),
            ],
        ))
        .await?;
    Ok(token)
}

#[derive(FromQueryResult)]
struct TokenRow {
    family_id: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// What presenting a refresh token found.
pub enum Presented {
    /// A live token, now marked used.
    Valid { user: Uuid, family: Uuid },
    /// A token used before: its family has been revoked.
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

/// Consumes `token` (marks it used) if it is live.
pub async fn consume(tx: &TenantTx, token: &str) -> Result<Presented, ApiError> {
    let row = TokenRow::find_by_statement(stmt(
        "SELECT family_id, user_id, expires_at, used_at, revoked_at \
         FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
        [digest(token).into()],
    ))
    .one(tx.conn())
    .await?;
    let Some(row) = row else {
        return Ok(Presented::Invalid);
    };
    if row.revoked_at.is_some() || row.expires_at <= Utc::now() {
        return Ok(Presented::Invalid);
    }
    if row.used_at.is_some() {
        revoke_family(tx, row.family_id).await?;
        return Ok(Presented::Reused);
    }
    tx.conn()
        .execute_raw(stmt(
            "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1",
            [digest(token).into()],
        ))
        .await?;
    Ok(Presented::Valid {
        user: row.user_id,
        family: row.family_id,
    })
}

/// The family of `token`, if the token exists.
pub async fn family_of(tx: &TenantTx, token: &str) -> Result<Option<Uuid>, ApiError> {
    let row = tx
        .conn()
        .query_one_raw(stmt(
            "SELECT family_id FROM refresh_tokens WHERE token_hash = $1",
            [digest(token).into()],
        ))
        .await?;
    Ok(row.map(|r| r.try_get_by_index::<Uuid>(0)).transpose()?)
}

/// Revokes every token of `family` in the database.
pub async fn revoke_family(tx: &TenantTx, family: Uuid) -> Result<(), ApiError> {
    tx.conn()
        .execute_raw(stmt(
            "UPDATE refresh_tokens SET revoked_at = now() \
             WHERE family_id = $1 AND revoked_at IS NULL",
            [family.into()],
        ))
        .await?;
    Ok(())
}
