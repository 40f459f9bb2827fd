//! sea-orm entities of the tenant tables. Table names are unqualified: they
//! resolve through the tenant transaction's `search_path`, so an entity can
//! only ever reach the schema of the tenant the transaction is bound to.

pub mod branches;
pub mod clients;
pub mod contacts;
pub mod notes;
pub mod roles;
pub mod tasks;
pub mod users;
