//! Middleware of every request: its id and span, and its tenant.

pub mod request_span;
pub mod tenant;
