//! Keeps the planner statistics of the tenant tables this server writes up
//! with their growth, so the read pools' generic plans follow a tenant from
//! small to big (see `tenancy::statistics`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::DatabaseConnection;
use tenancy::SchemaName;

/// The tables the read pools plan reads of (`routes::records` lists and
/// single records read some of them, `routes::tenant::record_counts` all).
pub const READ_TABLES: &[&str] = &crate::routes::tenant::COUNTED;

/// How long after a schema was last looked at it is looked at again while
/// it is being written, and how long after its last write it is looked at
/// one last time: PostgreSQL's activity counts lag a backend's writes by up
/// to ten seconds.
const RECHECK: Duration = Duration::from_secs(11);

/// Statements name at most this many schemas.
const BATCH: usize = 500;

struct Entry {
    written: Instant,
    checked: Option<Instant>,
}

/// Tenant schemas written lately, and when the keeper last looked at each.
#[derive(Default)]
pub struct Written {
    schemas: Mutex<HashMap<SchemaName, Entry>>,
}

impl Written {
    /// Notes that a transaction on `schema` wrote and committed.
    pub fn note(&self, schema: &SchemaName) {
        let now = Instant::now();
        if let Ok(mut schemas) = self.schemas.lock() {
            match schemas.get_mut(schema) {
                Some(entry) => entry.written = now,
                None => {
                    schemas.insert(
                        schema.clone(),
                        Entry {
                            written: now,
                            checked: None,
                        },
                    );
                }
            }
        }
    }

    /// The schemas to look at now: those not looked at since they were
    /// noted, or not for [`RECHECK`]. Each is marked looked at, and
    /// forgotten once it has not been written for [`RECHECK`] either.
    fn due(&self, now: Instant) -> Vec<SchemaName> {
        let Ok(mut schemas) = self.schemas.lock() else {
            return Vec::new();
        };
        let mut due = Vec::new();
        schemas.retain(|schema, entry| {
            if entry
                .checked
                .is_some_and(|c| now.duration_since(c) < RECHECK)
            {
                return true;
            }
            due.push(schema.clone());
            entry.checked = Some(now);
            now.duration_since(entry.written) < RECHECK
        });
        due
    }
}

/// Every `interval`, refreshes the statistics of the read tables of the
/// schemas [`Written::due`] names that have grown.
pub fn spawn_keeper(
    db: DatabaseConnection,
    written: Arc<Written>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tenancy::periodic::every(interval, move || {
        let (db, due) = (db.clone(), written.due(Instant::now()));
        async move {
            for schemas in due.chunks(BATCH) {
                match tenancy::statistics::refresh_grown(&db, schemas, READ_TABLES).await {
                    Ok(tables) if tables.is_empty() => {}
                    Ok(tables) => tracing::debug!(?tables, "statistics refreshed"),
                    Err(err) => tracing::warn!(error = %err, "refreshing statistics failed"),
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_is_looked_at_at_once_then_every_recheck_then_once_after_its_last_write() {
        let written = Written::default();
        let schema = tenancy::Slug::parse("acme").expect("slug").schema_name();
        let t0 = Instant::now();
        written.note(&schema);
        assert_eq!(written.due(t0), std::slice::from_ref(&schema));
        assert!(written.due(t0 + Duration::from_secs(5)).is_empty());
        // Written again meanwhile: looked at again, and kept.
        written.note(&schema);
        assert_eq!(written.due(t0 + RECHECK), std::slice::from_ref(&schema));
        // Quiet since: looked at one last time, then forgotten.
        let last = t0 + RECHECK * 2;
        assert_eq!(written.due(last), std::slice::from_ref(&schema));
        assert!(written.due(last + RECHECK * 2).is_empty());
    }
}
