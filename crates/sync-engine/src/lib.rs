//! The sync engine: change tracking and PUSH/PULL of tenant data for
//! offline-first and integration clients.
//!
//! Not built yet. docs/architecture.md describes the design it will follow:
//! versioned rows with tombstones, pull cursors gated by the transaction
//! horizon, idempotent pushes keyed by client mutation ids.
