//! The platform operator of a request on the bare base domain.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use uuid::Uuid;

use crate::auth::user::verified_claims;
use crate::error::ApiError;
use crate::middleware::tenant::PlatformHost;

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
            let claims = verified_claims(&req).await?;
            if !claims.tid.is_nil() || claims.roles != [OPERATOR_ROLE] {
                return Err(ApiError::Unauthorized("an operator token is required"));
            }
            Ok(Self { id: claims.sub })
        })
    }
}
