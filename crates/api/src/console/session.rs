//! Console sessions: a refresh-token session of the tenant (the same rows
//! the API's sign-in makes, so revoking one ends both) carried in an
//! HttpOnly, Secure, SameSite=Strict cookie, and the CSRF token every form
//! and state-changing request must carry.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use hmac::{Hmac, Mac};
use sea_orm::ConnectionTrait;
use sha2::Sha256;
use tenancy::{TenantTx, stmt};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::auth::sessions::digest;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::state::AppState;

/// The session cookie.
pub const COOKIE: &str = "strata_console";
/// The sign-in form's own token (double-submitted: cookie and field).
pub const SIGN_IN_COOKIE: &str = "strata_console_signin";
/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";

/// A cookie of the console: HttpOnly, Secure, SameSite=Strict, on
/// `/console` only.
pub fn cookie(name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/console")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .finish()
}

/// The cookie `name` removed.
pub fn removal(name: &'static str) -> Cookie<'static> {
    let mut c = cookie(name, String::new());
    c.make_removal();
    c
}

/// A signed-in console user.
pub struct Session {
    pub user: AuthUser,
    /// The token forms carry.
    pub csrf: String,
}

/// The CSRF token of session `id` of kind `purpose` (tenant users' and
/// operators' sessions differ): an HMAC of it, so it needs no storage and
/// means nothing in another session.
pub fn csrf_for(state: &AppState, purpose: &[u8], id: Uuid) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&state.console_key).expect("HMAC takes any key");
    mac.update(purpose);
    mac.update(id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `given` is `expected` (compared in constant time).
pub fn tokens_match(expected: &str, given: Option<&str>) -> bool {
    let Some(given) = given else { return false };
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a sign-in form carries the token its cookie holds (the form is
/// double-submitted: its token in a cookie of this origin and in the form).
pub fn sign_in_token_ok(req: &HttpRequest, given: Option<&str>) -> bool {
    req.cookie(SIGN_IN_COOKIE)
        .is_some_and(|c| tokens_match(c.value(), given))
}

/// The session of the request's cookie, if it is live: its token
/// unrevoked and unexpired, its account active and its family not ended.
pub async fn current(
    state: &AppState,
    tenant: &CurrentTenant,
    req: &HttpRequest,
) -> Result<Option<Session>, ApiError> {
    let Some(cookie) = req.cookie(COOKIE) else {
        return Ok(None);
    };
    if cookie.value().len() > 200 {
        return Ok(None);
    }
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let row = tx
        .conn()
        .query_one_raw(stmt(
            "SELECT user_id, family_id FROM refresh_tokens \
              WHERE token_hash = $1 AND revoked_at IS NULL AND used_at IS NULL \
                AND expires_at > now()",
            [digest(cookie.value()).into()],
        ))
        .await?;
    tx.commit().await?;
    let Some(row) = row else { return Ok(None) };
    let (user, family): (Uuid, Uuid) = (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
    let Some(standing) = state.standings.user(&state.db, &tenant.0, user).await? else {
        return Ok(None);
    };
    if standing.admits(family, standing.credentials_epoch).is_err() || !standing.is_active {
        return Ok(None);
    }
    tenancy::writer::set_actor(tenancy::writer::Actor::User(user));
    Ok(Some(Session {
        csrf: csrf_for(state, b"console-csrf", family),
        user: AuthUser {
            id: user,
            family,
            roles: standing.roles.clone(),
        },
    }))
}
