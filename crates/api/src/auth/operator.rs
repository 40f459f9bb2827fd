//! The platform operator of a request on the bare base domain.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures::future::LocalBoxFuture;
use uuid::Uuid;

use crate::auth::sessions;
use crate::auth::user::bearer;
use crate::error::ApiError;
use crate::middleware::tenant::PlatformHost;
use crate::startup::AppState;

/// The role claim of operator tokens. Their tenant claim is the nil UUID,
/// which no tenant has, so they are refused on every tenant host.
pub const OPERATOR_ROLE: &str = "platform-operator";

/// A signed-in platform operator.
#[derive(Debug, Clone)]
pub struct Operator {
    pub id: Uuid,
}

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            PlatformHost::extract(&req).await?;
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
            let token = bearer(&req).ok_or(ApiError::Unauthorized("a bearer token is required"))?;
            let claims = state
                .tokens
                .verify(token)
                .ok_or(ApiError::Unauthorized("the token is invalid or expired"))?;
            if !claims.tid.is_nil() || claims.roles != [OPERATOR_ROLE] {
                return Err(ApiError::Unauthorized("an operator token is required"));
            }
            if sessions::is_revoked(&state.kv, claims.fam).await? {
                return Err(ApiError::Unauthorized("the session was revoked"));
            }
            Ok(Self { id: claims.sub })
        })
    }
}
