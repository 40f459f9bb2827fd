//! The authenticated user of a request.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use domain::roles::{Action, Area, allows};
use futures::future::LocalBoxFuture;
use uuid::Uuid;

use crate::auth::Claims;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::state::AppState;

/// A caller with a valid access token for the tenant the request is
/// addressed to.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: Uuid,
    pub family: Uuid,
    /// The user's roles now (not when the token was issued).
    pub roles: Vec<String>,
}

impl AuthUser {
    /// 403 unless the caller's roles allow `action` in `area`.
    pub fn require(&self, area: Area, action: Action) -> Result<(), ApiError> {
        if allows(&self.roles, area, action) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("your roles do not allow this action"))
        }
    }
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The application state and the claims of the request's bearer token,
/// checked for signature, expiry, issuer and algorithm. Whether the account
/// still stands behind them is the caller's to check.
pub fn verified_claims(req: &HttpRequest) -> Result<(web::Data<AppState>, Claims), ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
    if let Some(claims) = req.extensions().get::<Claims>().cloned() {
        // Already checked by the request-limit middleware.
        return Ok((state, claims));
    }
    let token = bearer(req).ok_or(ApiError::Unauthorized("a bearer token is required"))?;
    let claims = state
        .tokens
        .verify(token)
        .ok_or(ApiError::Unauthorized("the token is invalid or expired"))?;
    Ok((state, claims))
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let tenant = CurrentTenant::extract(&req).await?;
            let (state, claims) = verified_claims(&req)?;
            if claims.tid != tenant.0.id() {
                return Err(ApiError::Unauthorized(
                    "the token was not issued for this tenant",
                ));
            }
            let standing = state
                .standings
                .user(&state.db, &tenant.0, claims.sub)
                .await?
                .ok_or(ApiError::Unauthorized("the account no longer exists"))?;
            standing.admits(claims.fam, claims.epc)?;
            tenancy::writer::set_actor(tenancy::writer::Actor::User(claims.sub));
            Ok(Self {
                id: claims.sub,
                family: claims.fam,
                roles: standing.roles.clone(),
            })
        })
    }
}
