//! Response headers every answer carries, and small body limits on the
//! routes anyone may call without a token.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next};

use crate::error::ApiError;

/// Largest body of a sign-in, refresh, logout or sign-up request.
pub const SMALL_BODY: u64 = 16 * 1024;

/// Routes that need no token and take a small JSON body.
const OPEN_ROUTES: &[&str] = &[
    "/api/v1/auth/token",
    "/api/v1/auth/refresh",
    "/api/v1/auth/logout",
    "/api/v1/platform/signup",
    "/api/v1/platform/signup/verify",
    "/api/v1/platform/auth/token",
    "/api/sync/auth/token/",
];

/// Security headers, unless a handler set its own: no MIME sniffing, no
/// framing, no referrer, HTTPS only (honoured behind TLS), and no caching
/// (answers hold tenant data and tokens).
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ))
        .add((header::CACHE_CONTROL, "no-store"))
}

/// Refuses (413) a body declared larger than [`SMALL_BODY`] on the open
/// routes before it is read.
pub async fn small_bodies(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if OPEN_ROUTES.contains(&req.path()) {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > SMALL_BODY) {
            return Err(ApiError::TooLarge(format!(
                "this route takes bodies of at most {SMALL_BODY} bytes"
            ))
            .into());
        }
    }
    next.call(req).await
}
