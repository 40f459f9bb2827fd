//! Pausing and resuming event deliveries, on the whole platform and per
//! tenant, and the state of their queues: shared by the API and the
//! migrator. (The dispatcher itself is the server's.)

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult};
use serde::Serialize;

use crate::sql::{read_one, stmt, write};

/// The platform's deliveries: paused or not, and tenant signals waiting.
#[derive(Debug, Serialize, FromQueryResult)]
pub struct PlatformQueue {
    pub paused: bool,
    /// Due signals, each naming a tenant with deliveries to make.
    pub signals: i64,
    pub oldest_signal_secs: Option<f64>,
}

/// A tenant's queue: paused or not, deliveries waiting, the age of the
/// oldest waiting, dead letters.
#[derive(Debug, Serialize, FromQueryResult)]
pub struct TenantQueue {
    pub paused: bool,
    pub pending: i64,
    pub oldest_pending_secs: Option<f64>,
    pub failed: i64,
}

pub async fn platform(db: &DatabaseConnection) -> Result<Option<PlatformQueue>, DbErr> {
    read_one::<PlatformQueue>(
        db,
        stmt(
            "SELECT c.paused, count(s.id) AS signals, \
                    extract(epoch FROM now() - min(s.due_at))::float8 AS oldest_signal_secs \
             FROM public.event_control c LEFT JOIN public.event_signals s ON s.due_at <= now() \
             GROUP BY c.paused",
            [],
        ),
    )
    .await
}

/// Pauses or resumes deliveries on the whole platform; on resume every
/// dispatcher takes the signals that accumulated.
pub async fn set_platform_paused(db: &DatabaseConnection, paused: bool) -> Result<(), DbErr> {
    write(
        db,
        stmt(
            "UPDATE public.event_control SET paused = $1, changed_at = now()",
            [paused.into()],
        ),
    )
    .await?;
    Ok(())
}

/// Pauses or resumes a tenant's deliveries (in its transaction); on
/// resume the tenant is signalled, so what accumulated goes out.
pub async fn set_tenant_paused(
    conn: &impl ConnectionTrait,
    schema: &str,
    paused: bool,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "UPDATE event_state SET paused = $1, changed_at = now()",
        [paused.into()],
    ))
    .await?;
    if !paused {
        conn.execute_raw(stmt(
            "SELECT public.signal_events($1, now())",
            [schema.into()],
        ))
        .await?;
    }
    Ok(())
}

/// The queue of the tenant whose transaction `conn` is.
pub async fn tenant(conn: &impl ConnectionTrait) -> Result<TenantQueue, DbErr> {
    Ok(TenantQueue::find_by_statement(stmt(
        "SELECT s.paused, \
                count(d.id) FILTER (WHERE d.status IN ('PENDING', 'PROCESSING')) AS pending, \
                extract(epoch FROM now() - min(d.created_at) \
                    FILTER (WHERE d.status IN ('PENDING', 'PROCESSING')))::float8 AS oldest_pending_secs, \
                count(d.id) FILTER (WHERE d.status = 'FAILED') AS failed \
         FROM event_state s LEFT JOIN webhook_deliveries d ON true GROUP BY s.paused",
        [],
    ))
    .one(conn)
    .await?
    .unwrap_or(TenantQueue {
        paused: false,
        pending: 0,
        oldest_pending_secs: None,
        failed: 0,
    }))
}
