//! The platform operator of a request on the bare base domain.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use uuid::Uuid;

use crate::auth::Claims;
use crate::auth::user::verified_claims;
use crate::error::ApiError;
use crate::middleware::tenant::PlatformHost;
use crate::state::AppState;

/// The role claim of operator tokens. Their tenant claim is the nil UUID,
/// which no tenant has, so they are refused on every tenant host.
pub const OPERATOR_ROLE: &str = "platform-operator";

/// A signed-in platform operator.
#[derive(Debug, Clone)]
pub struct Operator {
    pub id: Uuid,
    /// The session the token was issued in.
    pub session: Uuid,
}

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            PlatformHost::extract(&req).await?;
            let (state, claims) = verified_claims(&req)?;
            Operator::of_claims(&state, &claims).await
        })
    }
}

impl Operator {
    /// The operator `claims` speak for, if they are an operator's and the
    /// account and session still stand (the API's bearer tokens and the
    /// console's cookie are both checked here).
    pub async fn of_claims(state: &AppState, claims: &Claims) -> Result<Self, ApiError> {
        if !claims.tid.is_nil() || claims.roles != [OPERATOR_ROLE] {
            return Err(ApiError::Unauthorized("an operator token is required"));
        }
        let standing = state
            .standings
            .operator(&state.db, claims.sub)
            .await?
            .ok_or(ApiError::Unauthorized("the account no longer exists"))?;
        standing.admits(claims.fam, claims.epc)?;
        tenancy::writer::set_actor(tenancy::writer::Actor::Operator);
        Ok(Self {
            id: claims.sub,
            session: claims.fam,
        })
    }
}
