//! The API's errors and their problem+json (RFC 9457) responses.
//!
//! Client errors say what was wrong; server errors say only that something
//! failed and carry the request id to find the log line.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use tenancy::ResolveError;
use tenancy::host::HostError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the Host header is missing or is not a valid host name")]
    BadHost,
    #[error("no tenant is served at this host")]
    NoTenant,
    #[error("tenant `{0}` is suspended; contact your administrator")]
    Suspended(String),
    #[error("this route is served on a tenant's host, not on the platform domain")]
    NotTenantHost,
    #[error("this route is served on the platform domain only")]
    NotPlatformHost,
    #[error("no such route")]
    RouteNotFound,
    #[error("malformed request: {0}")]
    BadBody(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    ForbiddenText(String),
    #[error("{1}")]
    Gone(&'static str, String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("the record changed since version {given}; it is now at version {current}")]
    StaleVersion { given: i64, current: i64 },
    #[error("invalid fields: {0}")]
    Validation(domain::FieldErrors),
    /// Fields a body may not carry, or values of the wrong JSON type.
    #[error("malformed fields: {0}")]
    Malformed(domain::FieldErrors),
    #[error("too many requests; retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("a dependency is unavailable: {0}")]
    Unavailable(&'static str),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 422 naming one invalid field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut errors = domain::FieldErrors::new();
        errors.add(field, message);
        Self::Validation(errors)
    }

    /// A 400 naming one malformed field.
    pub fn malformed(field: &str, message: impl Into<String>) -> Self {
        let mut errors = domain::FieldErrors::new();
        errors.add(field, message);
        Self::Malformed(errors)
    }

    fn title(&self) -> &'static str {
        match self {
            Self::BadHost => "Bad host",
            Self::NoTenant | Self::NotTenantHost => "Tenant not found",
            Self::NotPlatformHost => "Not found",
            Self::Suspended(_) => "Tenant suspended",
            Self::RouteNotFound => "Not found",
            Self::BadBody(_) => "Malformed request",
            Self::Unauthorized(_) => "Unauthorized",
            Self::Forbidden(_) | Self::ForbiddenText(_) => "Forbidden",
            Self::Gone(..) => "Gone",
            Self::TooLarge(_) => "Payload too large",
            Self::NotFound(_) => "Not found",
            Self::Conflict(_) => "Conflict",
            Self::StaleVersion { .. } => "Precondition failed",
            Self::Validation(_) => "Invalid fields",
            Self::Malformed(_) => "Malformed fields",
            Self::TooManyRequests { .. } => "Too many requests",
            Self::Unavailable(_) => "Service unavailable",
            Self::Internal(_) => "Internal server error",
        }
    }
}

impl From<tenancy::Error> for ApiError {
    fn from(err: tenancy::Error) -> Self {
        match err {
            tenancy::Error::Database(e) if domain::store::is_connection_loss(&e) => {
                Self::Unavailable("database")
            }
            tenancy::Error::TenantNotFound(_) => Self::NotFound("tenant"),
            tenancy::Error::JobNotFound(_) => Self::NotFound("job"),
            tenancy::Error::TemplateNotFound(_) => Self::NotFound("template"),
            e @ tenancy::Error::TemplateExists(_) => Self::Conflict(e.to_string()),
            tenancy::Error::InvalidTemplate(why) => Self::field("template", why),
            e @ (tenancy::Error::Archive(_) | tenancy::Error::ArchiveNewer(_)) => {
                Self::field("archive", e.to_string())
            }
            tenancy::Error::InvalidJob(why) => Self::field("job", why),
            e @ (tenancy::Error::TenantExists(_)
            | tenancy::Error::DomainTaken(_)
            | tenancy::Error::NotCurrent(_)) => Self::Conflict(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<domain::FieldErrors> for ApiError {
    fn from(errors: domain::FieldErrors) -> Self {
        Self::Validation(errors)
    }
}

impl From<domain::access::Denied> for ApiError {
    fn from(err: domain::access::Denied) -> Self {
        Self::ForbiddenText(err.to_string())
    }
}

impl From<domain::store::StoreError> for ApiError {
    fn from(err: domain::store::StoreError) -> Self {
        use domain::store::StoreError;
        match err {
            StoreError::NotFound(noun) => Self::NotFound(noun),
            StoreError::Stale { given, current } => Self::StaleVersion { given, current },
            StoreError::Invalid(errors) => Self::Validation(errors),
            StoreError::Conflict(why) => Self::Conflict(why),
            StoreError::Database(e) => e.into(),
        }
    }
}

impl From<domain::service::ServiceError> for ApiError {
    fn from(err: domain::service::ServiceError) -> Self {
        use domain::service::ServiceError;
        match err {
            ServiceError::Denied(d) => d.into(),
            ServiceError::Refused(r) if r.malformed => Self::Malformed(r.errors),
            ServiceError::Refused(r) => Self::Validation(r.errors),
            ServiceError::UnknownParameter(p) => {
                Self::BadBody(format!("unknown query parameter `{p}`"))
            }
            ServiceError::Store(e) => e.into(),
        }
    }
}

impl From<sync_engine::SyncError> for ApiError {
    fn from(err: sync_engine::SyncError) -> Self {
        match err {
            sync_engine::SyncError::UnknownModel(m) => {
                ApiError::field("models", format!("unknown model `{m}`"))
            }
            sync_engine::SyncError::BadCursor(why) => ApiError::field("cursor", why),
            sync_engine::SyncError::ResetRequired => {
                ApiError::Gone("reset_required", err.to_string())
            }
            sync_engine::SyncError::Forbidden(_) | sync_engine::SyncError::ForeignClient(_) => {
                ApiError::ForbiddenText(err.to_string())
            }
            sync_engine::SyncError::BadRequest(why) => ApiError::BadBody(why),
            sync_engine::SyncError::Invalid { field, message } => ApiError::field(field, message),
            sync_engine::SyncError::TooLarge { .. } => ApiError::TooLarge(err.to_string()),
            sync_engine::SyncError::Database(e) => e.into(),
        }
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(_: redis::RedisError) -> Self {
        Self::Unavailable("redis")
    }
}

impl From<jsonwebtoken::errors::Error> for ApiError {
    fn from(err: jsonwebtoken::errors::Error) -> Self {
        Self::Internal(format!("token signing: {err}"))
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        tenancy::Error::from(err).into()
    }
}

impl From<ResolveError> for ApiError {
    fn from(err: ResolveError) -> Self {
        match err {
            ResolveError::Host(HostError::Malformed) => Self::BadHost,
            ResolveError::Host(HostError::NoTenant) => Self::NoTenant,
            ResolveError::Suspended(slug) => Self::Suspended(slug),
            ResolveError::Registry(e) => e.into(),
        }
    }
}

/// The problem+json body.
#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [domain::FieldError]>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadHost | Self::BadBody(_) | Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::ForbiddenText(_) => StatusCode::FORBIDDEN,
            Self::Gone(..) => StatusCode::GONE,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::StaleVersion { .. } => StatusCode::PRECONDITION_FAILED,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NoTenant | Self::NotTenantHost | Self::NotPlatformHost | Self::RouteNotFound => {
                StatusCode::NOT_FOUND
            }
            Self::Suspended(_) => StatusCode::FORBIDDEN,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let detail = if status.is_server_error() {
            match self {
                // An outage of a dependency, not a fault of this server.
                Self::Unavailable(what) => {
                    tracing::warn!(dependency = what, "request failed: dependency unavailable")
                }
                _ => tracing::error!(error = %self, "request failed"),
            }
            match self {
                Self::Unavailable(_) => "The service is briefly unavailable; retry shortly.",
                _ => "The server failed to handle this request; quote the x-request-id header when reporting it.",
            }
            .to_owned()
        } else {
            self.to_string()
        };
        let code = match self {
            Self::Suspended(_) => Some("tenant_suspended"),
            Self::NoTenant => Some("tenant_not_found"),
            Self::StaleVersion { .. } => Some("stale_version"),
            Self::Validation(_) => Some("invalid_fields"),
            Self::Malformed(_) => Some("malformed_fields"),
            Self::Gone(code, _) => Some(*code),
            _ => None,
        };
        let mut res = HttpResponse::build(status);
        res.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        match self {
            Self::Unavailable(_) => {
                res.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            Self::TooManyRequests { retry_after } => {
                res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            Self::Unauthorized(_) => {
                res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            _ => {}
        }
        let errors = match self {
            Self::Validation(e) | Self::Malformed(e) => Some(e.errors.as_slice()),
            _ => None,
        };
        res.json(Problem {
            kind: "about:blank",
            title: self.title(),
            status: status.as_u16(),
            detail,
            code,
            errors,
        })
    }
}
