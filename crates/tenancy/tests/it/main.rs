//! Integration tests of the tenancy crate against real PostgreSQL and Redis.

mod provisioning;
mod scope;
mod spares;
mod status;
