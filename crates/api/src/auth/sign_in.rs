//! Signing a tenant user in: credentials checked against the throttle,
//! a new session, and its tokens. Every sign-in route calls this.

use actix_web::HttpRequest;
use sea_orm::{ConnectionTrait, FromQueryResult};
use serde::Serialize;
use tenancy::{TenantTx, stmt};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::throttle::Throttle;
use crate::auth::{hashing, sessions, standing};
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
}

#[derive(FromQueryResult)]
struct Credentials {
    id: Uuid,
    password_hash: Option<String>,
    is_active: bool,
}

/// Issues an access token and the next refresh token of session `family`.
pub async fn tokens_for(
    state: &AppState,
    tx: &TenantTx,
    tenant: Uuid,
    user: Uuid,
    family: Uuid,
) -> Result<TokenResponse, ApiError> {
    let standing = standing::of_user(tx.conn(), user, 0)
        .await?
        .ok_or(ApiError::Unauthorized("the account no longer exists"))?;
    if !standing.is_active {
        return Err(ApiError::Unauthorized("the account is disabled"));
    }
    let refresh_token = sessions::issue(tx, user, family, state.tokens.refresh_ttl_secs).await?;
    let access_token = state.tokens.issue(
        user,
        tenant,
        family,
        standing.credentials_epoch,
        standing.roles,
    )?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.tokens.access_ttl_secs,
        refresh_token,
    })
}

/// Checks a tenant user's credentials (throttled) and starts a session;
/// the tokens and the user's id.
pub async fn sign_in(
    state: &AppState,
    tenant: &CurrentTenant,
    req: &HttpRequest,
    email: &str,
    password: String,
) -> Result<(TokenResponse, Uuid), ApiError> {
    let (email, throttle) = attempt(state, req, tenant.0.id(), email).await?;
    // The account is read, and the connection let go, before the password
    // check: that waits for a hashing turn and takes tens of milliseconds,
    // and a burst of sign-ins would otherwise hold every pooled connection.
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let found = Credentials::find_by_statement(stmt(
        "SELECT id, password_hash, is_active FROM users WHERE lower(email) = $1",
        [email.clone().into()],
    ))
    .one(tx.conn())
    .await?;
    tx.rollback().await?;
    let matches = hashing::verify(
        password,
        found.as_ref().and_then(|c| c.password_hash.clone()),
    )
    .await?;
    let (user, hash) = match found {
        Some(Credentials {
            id,
            password_hash: Some(hash),
            is_active: true,
        }) if matches => (id, hash),
        _ => return Err(WRONG_CREDENTIALS),
    };
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    // Still the password just checked (not changed meanwhile); whether the
    // account is still active, `tokens_for` reads.
    let same = tx
        .conn()
        .query_one_raw(stmt(
            "UPDATE users SET last_login_at = now() \
             WHERE id = $1 AND password_hash = $2 RETURNING id",
            [user.into(), hash.into()],
        ))
        .await?;
    if same.is_none() {
        tx.rollback().await?;
        return Err(WRONG_CREDENTIALS);
    }
    let response = tokens_for(state, &tx, tenant.0.id(), user, Uuid::now_v7()).await?;
    tx.commit().await?;
    // After the commit: Redis is not waited on while a connection is held.
    throttle.succeeded().await?;
    Ok((response, user))
}

/// What a refused sign-in says, whatever was wrong.
pub const WRONG_CREDENTIALS: ApiError = ApiError::Unauthorized("wrong e-mail address or password");

/// Starts a sign-in attempt of `email` in `scope` (a tenant, or nil for
/// platform operators): the address normalised and checked, the attempt
/// counted by the throttle (429 past its limits).
pub async fn attempt<'a>(
    state: &'a AppState,
    req: &HttpRequest,
    scope: Uuid,
    email: &str,
) -> Result<(String, Throttle<'a>), ApiError> {
    let email = email.trim().to_lowercase();
    if domain::check::parameter(&email, 254).is_err() {
        // Not an address anyone signed up with (and PostgreSQL refuses NUL).
        return Err(WRONG_CREDENTIALS);
    }
    let address = state.proxies.client(req);
    let throttle = Throttle::new(&state.kv, scope, &email, address, &state.auth);
    throttle.admit().await?;
    Ok((email, throttle))
}
