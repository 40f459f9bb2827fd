//! Gives every request an id and a tracing span carrying it (and, once
//! resolved, the tenant), returns the id as `x-request-id`, scopes the
//! request's writer for the change journal (the channel from the path; the
//! actor named once authenticated), and has the server's caches follow
//! what the request's transactions commit.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tenancy::writer::{self, Actor, Channel, Writer};
use tracing::Instrument;
use uuid::Uuid;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The span of the current request; middleware further in records fields.
#[derive(Clone)]
pub struct RequestSpan(pub tracing::Span);

/// An incoming id is kept if it is short and printable (a proxy's own id),
/// otherwise a new one is made.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned)
}

pub async fn request_span(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = request_id(&req);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        tenant = tracing::field::Empty,
        method = %req.method(),
        path = %req.path(),
    );
    req.extensions_mut().insert(RequestSpan(span.clone()));
    let started = Instant::now();
    let path = req.path();
    let channel = if path.starts_with("/api/v1/sync/") || path.starts_with("/api/sync/") {
        Channel::Sync
    } else {
        Channel::Rest
    };
    let writer = Writer {
        actor: Actor::System,
        channel,
        request_id: Some(id.clone()),
    };
    let own_commits = req
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .map(|state| std::sync::Arc::clone(&state.on_commit));
    let call = writer::scope(writer, next.call(req).instrument(span.clone()));
    let mut res = match own_commits {
        Some(hook) => tenancy::scope::on_commit(hook, call).await?,
        None => call.await?,
    };
    let status = res.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, elapsed_ms, "request finished");
        } else {
            tracing::debug!(status, elapsed_ms, "request finished");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(res)
}
