//! Resolves the tenant from the `Host` header (or `X-Tenant`, when enabled)
//! and puts it on the request; refuses unknown (404) and suspended (403)
//! tenants before any handler runs.

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, web};
use tenancy::{Resolution, Tenant};

use crate::error::ApiError;
use crate::middleware::request_span::RequestSpan;
use crate::state::AppState;

/// The tenant a request is addressed to. Extracting it on the platform
/// domain fails with 404.
#[derive(Clone)]
pub struct CurrentTenant(pub Arc<Tenant>);

/// Marks a request addressed to the bare base domain.
#[derive(Clone, Copy)]
pub struct PlatformHost;

pub async fn resolve_tenant(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        let err = ApiError::Internal("application state missing".into());
        return Ok(req.error_response(err).map_into_right_body());
    };
    // The Host header itself (HTTP/2 puts it in the URI): never
    // X-Forwarded-Host, which any client can set.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default()
        .to_owned();
    let tenant_header = req
        .headers()
        .get("x-tenant")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    match state
        .resolver
        .resolve(&host, tenant_header.as_deref())
        .await
    {
        Ok(Resolution::Tenant(tenant)) => {
            if let Some(span) = req.extensions().get::<RequestSpan>() {
                span.0.record("tenant", tenant.slug().as_str());
            }
            req.extensions_mut().insert(CurrentTenant(tenant));
        }
        Ok(Resolution::Platform) => {
            req.extensions_mut().insert(PlatformHost);
        }
        Err(err) => {
            return Ok(req
                .error_response(ApiError::from(err))
                .map_into_right_body());
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

impl FromRequest for PlatformHost {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<PlatformHost>()
                .copied()
                .ok_or(ApiError::NotPlatformHost),
        )
    }
}

impl FromRequest for CurrentTenant {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<CurrentTenant>()
                .cloned()
                .ok_or(ApiError::NotTenantHost),
        )
    }
}
