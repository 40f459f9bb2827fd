//! Middleware of every request: its id and span, its tenant, security
//! headers and body limits.

pub mod protect;
pub mod request_span;
pub mod tenant;
