//! Pausing and resuming event deliveries, on the whole platform and per
//! tenant, and the state of their queues: shared by the API and the
//! migrator. (The dispatcher itself is the server's.)

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult};
use serde::Serialize;

use crate::sql::{read_one, rows, stmt, write};

/// The platform's deliveries: paused or not, tenant signals waiting, and
/// the queues of the tenants with webhook endpoints, each and in total.
#[derive(Debug, Serialize)]
pub struct PlatformQueue {
    pub paused: bool,
    /// Due signals, each naming a tenant with deliveries to make.
    pub signals: i64,
    pub oldest_signal_secs: Option<f64>,
    /// Deliveries waiting on the whole platform.
    pub pending: i64,
    pub oldest_pending_secs: Option<f64>,
    /// Dead letters on the whole platform.
    pub failed: i64,
    /// Each tenant with webhook endpoints, the longest queue first.
    pub tenants: Vec<TenantQueueOf>,
}

#[derive(Debug, FromQueryResult)]
struct Control {
    paused: bool,
    signals: i64,
    oldest_signal_secs: Option<f64>,
}

/// One tenant's queue, named by its slug.
#[derive(Debug, Serialize, FromQueryResult)]
pub struct TenantQueueOf {
    pub tenant: String,
    #[serde(flatten)]
    #[sea_orm(nested)]
    pub queue: TenantQueue,
}

/// A tenant's queue, from the tables `prefix` names (`""` for the
/// tenant of the transaction, `"t_acme".` for another); `$1` is the slug.
fn queue_sql(prefix: &str) -> String {
    format!(
        "SELECT $1::text AS tenant, s.paused, p.pending, p.oldest_pending_secs, f.failed \
         FROM {prefix}event_state s, \
              (SELECT count(*) AS pending, \
                      extract(epoch FROM now() - min(created_at))::float8 AS oldest_pending_secs \
                 FROM {prefix}webhook_deliveries WHERE status IN ('PENDING', 'PROCESSING')) p, \
              (SELECT count(*) AS failed FROM {prefix}webhook_deliveries \
                WHERE status = 'FAILED') f"
    )
}

/// How many tenants' queues one statement reads.
const QUEUES_PER_STATEMENT: usize = 200;

/// A tenant's queue: paused or not, deliveries waiting, the age of the
/// oldest waiting, dead letters.
#[derive(Debug, Serialize, FromQueryResult)]
pub struct TenantQueue {
    pub paused: bool,
    pub pending: i64,
    pub oldest_pending_secs: Option<f64>,
    pub failed: i64,
}

/// The platform's deliveries; `None` before `migrator shared up`. Reads
/// the queues of the tenants in `public.event_tenants` only (those with
/// webhook endpoints), a few hundred schemas per statement.
pub async fn platform(db: &DatabaseConnection) -> Result<Option<PlatformQueue>, DbErr> {
    let Some(control) = read_one::<Control>(
        db,
        stmt(
            "SELECT c.paused, count(s.id) AS signals, \
                    extract(epoch FROM now() - min(s.due_at))::float8 AS oldest_signal_secs \
             FROM public.event_control c LEFT JOIN public.event_signals s ON s.due_at <= now() \
             GROUP BY c.paused",
            [],
        ),
    )
    .await?
    else {
        return Ok(None);
    };
    let listed = rows(
        db,
        stmt(
            "SELECT t.slug, e.schema_name FROM public.event_tenants e \
               JOIN public.tenants t USING (schema_name) \
               JOIN pg_namespace n ON n.nspname = e.schema_name \
              ORDER BY t.slug",
            [],
        ),
    )
    .await?;
    let mut tenants = Vec::new();
    for chunk in listed.chunks(QUEUES_PER_STATEMENT) {
        let mut parts = Vec::new();
        let mut values = Vec::new();
        for (i, r) in chunk.iter().enumerate() {
            let slug: String = r.try_get_by_index(0)?;
            let schema: String = r.try_get_by_index(1)?;
            // Schema names are `t_[a-z0-9_]+` (a CHECK of public.tenants).
            let sql = queue_sql(&format!("\"{schema}\"."));
            parts.push(sql.replacen("$1", &format!("${}", i + 1), 1));
            values.push(slug.into());
        }
        let txn = sea_orm::TransactionTrait::begin(db).await?;
        tenants.extend(
            TenantQueueOf::find_by_statement(stmt(&parts.join(" UNION ALL "), values))
                .all(&txn)
                .await?,
        );
        txn.commit().await?;
    }
    tenants.sort_by(|a, b| {
        (b.queue.pending, b.queue.failed)
            .cmp(&(a.queue.pending, a.queue.failed))
            .then_with(|| a.tenant.cmp(&b.tenant))
    });
    Ok(Some(PlatformQueue {
        paused: control.paused,
        signals: control.signals,
        oldest_signal_secs: control.oldest_signal_secs,
        pending: tenants.iter().map(|t| t.queue.pending).sum(),
        oldest_pending_secs: tenants
            .iter()
            .filter_map(|t| t.queue.oldest_pending_secs)
            .max_by(f64::total_cmp),
        failed: tenants.iter().map(|t| t.queue.failed).sum(),
        tenants,
    }))
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
    Ok(
        TenantQueue::find_by_statement(stmt(&queue_sql(""), ["".into()]))
            .one(conn)
            .await?
            .unwrap_or(TenantQueue {
                paused: false,
                pending: 0,
                oldest_pending_secs: None,
                failed: 0,
            }),
    )
}
