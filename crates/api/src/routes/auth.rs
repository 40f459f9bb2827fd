//! Sign-in, token refresh, logout and the caller's own profile.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use tenancy::TenantTx;
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::auth::sessions::{self, Presented};
use crate::auth::sign_in::{TokenResponse, sign_in, tokens_for};
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::routes::users::User;
use crate::state::AppState;

/// Registers the module's routes, each with its OpenAPI entry.
pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(token)
        .service(refresh)
        .service(logout)
        .service(me);
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

/// POST /api/v1/auth/token: e-mail and password for a new session.
#[utoipa::path(tag = "auth",
    request_body = TokenRequest,
    responses((status = 200, body = TokenResponse), (status = 401), (status = 429)))]
#[post("/auth/token")]
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

/// POST /api/v1/auth/refresh: rotates a refresh token. A token presented a
/// second time revokes its whole session.
#[utoipa::path(tag = "auth",
    request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401)))]
#[post("/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    match sessions::consume(&tx, &body.refresh_token).await? {
        Presented::Valid { user, family } => {
            // Refused for a disabled or deleted account.
            let response = tokens_for(&state, &tx, tenant.0.id(), user, family).await?;
            tx.commit().await?;
            Ok(HttpResponse::Ok().json(response))
        }
        Presented::Reused => {
            tx.commit().await?;
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
#[utoipa::path(tag = "auth",
    request_body = RefreshRequest, responses((status = 204)))]
#[post("/auth/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    if let Some(family) = sessions::family_of(&tx, &body.refresh_token).await? {
        sessions::revoke_family(&tx, family).await?;
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// GET /api/v1/auth/me: the caller.
#[utoipa::path(tag = "auth",
    responses((status = 200, body = User), (status = 401)),
    security(("bearer" = [])))]
#[get("/auth/me")]
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
