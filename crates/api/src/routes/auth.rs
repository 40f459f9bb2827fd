//! Sign-in, token refresh, logout and the caller's own profile.

use actix_web::{HttpRequest, HttpResponse, web};
use domain::password;
use sea_orm::{ConnectionTrait, FromQueryResult};
use serde::{Deserialize, Serialize};
use tenancy::{TenantTx, stmt};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::auth::sessions::{self, Presented};
use crate::auth::throttle::Throttle;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::routes::users::User;
use crate::state::AppState;

crate::routes::routes! {
    post "/auth/token" => token;
    post "/auth/refresh" => refresh;
    post "/auth/logout" => logout;
    get "/auth/me" => me;
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub email: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

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
async fn tokens_for(
    state: &AppState,
    tx: &TenantTx,
    tenant: Uuid,
    user: Uuid,
    family: Uuid,
) -> Result<TokenResponse, ApiError> {
    let roles = domain::users::roles_of(tx.conn(), user).await?;
    let refresh_token = sessions::issue(tx, user, family, state.tokens.refresh_ttl_secs).await?;
    let access_token = state.tokens.issue(user, tenant, family, roles)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.tokens.access_ttl_secs,
        refresh_token,
    })
}

/// POST /api/v1/auth/token: e-mail and password for a new session.
#[utoipa::path(post, path = "/api/v1/auth/token", tag = "auth",
    request_body = TokenRequest,
    responses((status = 200, body = TokenResponse), (status = 401), (status = 429)))]
pub async fn token(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
    body: web::Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let TokenRequest { email, password } = body.into_inner();
    let (response, _) = sign_in(&state, &tenant, &req, &email, password).await?;
    Ok(HttpResponse::Ok().json(response))
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
    let email = email.trim().to_lowercase();
    let address = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let throttle = Throttle::new(&state.kv, tenant.0.id(), &email, &address, &state.auth);
    throttle.check().await?;

    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let found = Credentials::find_by_statement(stmt(
        "SELECT id, password_hash, is_active FROM users WHERE lower(email) = $1",
        [email.clone().into()],
    ))
    .one(tx.conn())
    .await?;
    let hash = found
        .as_ref()
        .and_then(|c| c.password_hash.clone())
        .unwrap_or_else(|| password::dummy_hash().to_owned());
    let matches = web::block(move || password::verify(&password, &hash))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let user = match found {
        Some(c) if matches && c.is_active && c.password_hash.is_some() => c.id,
        _ => {
            tx.rollback().await?;
            throttle.failed().await?;
            return Err(ApiError::Unauthorized("wrong e-mail address or password"));
        }
    };
    throttle.succeeded().await?;
    tx.conn()
        .execute_raw(stmt(
            "UPDATE users SET last_login_at = now() WHERE id = $1",
            [user.into()],
        ))
        .await?;
    let response = tokens_for(state, &tx, tenant.0.id(), user, Uuid::now_v7()).await?;
    tx.commit().await?;
    Ok((response, user))
}

/// POST /api/v1/auth/refresh: rotates a refresh token. A token presented a
/// second time revokes its whole session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401)))]
pub async fn refresh(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    match sessions::consume(&tx, &body.refresh_token).await? {
        Presented::Valid { user, family } => {
            let active = tx
                .conn()
                .query_one_raw(stmt(
                    "SELECT 1 FROM users WHERE id = $1 AND is_active",
                    [user.into()],
                ))
                .await?
                .is_some();
            if !active {
                tx.rollback().await?;
                return Err(ApiError::Unauthorized("the account is disabled"));
            }
            let response = tokens_for(&state, &tx, tenant.0.id(), user, family).await?;
            tx.commit().await?;
            Ok(HttpResponse::Ok().json(response))
        }
        Presented::Reused { family } => {
            tx.commit().await?;
            sessions::announce_revoked(&state.kv, family, state.tokens.access_ttl_secs).await?;
            Err(ApiError::Unauthorized(
                "this refresh token was already used; the session has been revoked",
            ))
        }
        Presented::Invalid => {
            tx.rollback().await?;
            Err(ApiError::Unauthorized(
                "the refresh token is invalid or expired",
            ))
        }
    }
}

/// POST /api/v1/auth/logout: revokes the refresh token's session on every
/// server, with the access tokens issued in it.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    request_body = RefreshRequest, responses((status = 204)))]
pub async fn logout(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    if let Some(family) = sessions::family_of(&tx, &body.refresh_token).await? {
        sessions::revoke_family(&tx, family).await?;
        tx.commit().await?;
        sessions::announce_revoked(&state.kv, family, state.tokens.access_ttl_secs).await?;
    } else {
        tx.rollback().await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// GET /api/v1/auth/me: the caller.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = User), (status = 401)),
    security(("bearer" = [])))]
pub async fn me(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let found = domain::users::find(tx.conn(), user.id).await?;
    tx.commit().await?;
    let found = found.ok_or(ApiError::Unauthorized("the account no longer exists"))?;
    Ok(crate::routes::records::json(HttpResponse::Ok(), found))
}
