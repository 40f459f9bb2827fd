//! Integration tests of the tenancy crate against real PostgreSQL and Redis.

mod provisioning;
mod read_pools;
mod resolution;
mod scope;
mod spares;
mod statistics;
mod status;
