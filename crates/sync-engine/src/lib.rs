//! The sync engine: change tracking and PUSH/PULL of tenant data for
//! offline-first and integration clients.
//!
//! The CRM models of [`domain::record`] are tracked by triggers (see the
//! tenant migration `create_sync_tracking`): every write bumps the row's
//! version and records the writing transaction in `sync_changes`, deletes
//! leave tombstones. [`pull`] delivers changes between a cursor and the
//! transaction horizon, never skipping one; [`push`] applies a client's
//! mutations exactly once, settling conflicts per model. Both work on a
//! connection the caller has scoped to one tenant.

pub mod checkpoints;
pub mod cursor;
pub mod error;
pub mod log;
pub mod models;
pub mod pull;
pub mod push;
pub mod retention;
pub mod settings;

pub use cursor::{Cursor, CursorKey};
pub use domain::access::Permissions;
pub use error::SyncError;
pub use models::{Model, Strategy};
