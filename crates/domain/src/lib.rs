//! The CRM domain: its entities, one description per model, the checks and
//! rules every writer goes through, the access policy every path answers
//! from, and the statements that read and write records. Knows nothing of
//! HTTP; the api and sync-engine crates are adapters over it.

pub mod access;
pub mod check;
pub mod custom;
pub mod entity;
pub mod events;
pub mod journal;
pub mod list;
pub mod password;
pub mod record;
pub mod render;
pub mod roles;
pub mod service;
pub mod status;
pub mod store;
pub mod users;
pub mod validation;

pub use record::{Spec, Strategy, model, models};
pub use status::{ClientStatus, TaskPriority, TaskStatus, UnknownValue};
pub use validation::{FieldError, FieldErrors};
