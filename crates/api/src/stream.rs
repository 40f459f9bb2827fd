//! The live stream (`GET /api/v1/events/stream`, Server-Sent Events): the
//! caller's notifications as they are made, on whichever server made them.
//!
//! Fan-out: the tenant trigger that makes notifications sends
//! `NOTIFY strata_stream, '<schema>'`; every server listens on a connection
//! of its own and wakes the streams of that tenant, which read what is new
//! from PostgreSQL. A stream also looks every few seconds (a missed notice
//! delays, never loses) and sends a heartbeat comment every 15 s.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::error::ApiError;

const CHANNEL: &str = "strata_stream";
/// Sent by `public.signal_events` when a tenant has deliveries due.
const EVENTS: &str = "strata_events";
const HEARTBEAT: Duration = Duration::from_secs(15);
const RECHECK: Duration = Duration::from_secs(5);

/// Wakes streams when their tenant has something new, and dispatchers
/// when a tenant has deliveries due.
pub struct Wakeups {
    tx: broadcast::Sender<String>,
    events: broadcast::Sender<String>,
}

impl Wakeups {
    /// Listens on PostgreSQL's own address (`url`; LISTEN does not pass a
    /// transaction-pooling PgBouncer), reconnecting with backoff.
    pub fn spawn(url: String) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let (tx, _) = broadcast::channel(1024);
        let (events, _) = broadcast::channel(1024);
        let this = Arc::new(Self { tx, events });
        let me = Arc::clone(&this);
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                if let Ok(mut listener) = PgListener::connect(&url).await
                    && listener.listen_all([CHANNEL, EVENTS]).await.is_ok()
                {
                    backoff = Duration::from_millis(100);
                    while let Ok(Some(note)) = listener.try_recv().await {
                        let to = if note.channel() == EVENTS {
                            &me.events
                        } else {
                            &me.tx
                        };
                        let _ = to.send(note.payload().to_owned());
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
        (this, task)
    }

    /// Schemas with something new for their streams.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.tx.subscribe()
    }

    /// Schemas with deliveries due.
    pub fn deliveries(&self) -> broadcast::Receiver<String> {
        self.events.subscribe()
    }
}

struct State {
    db: DatabaseConnection,
    tenant: tenancy::Tenant,
    user: Uuid,
    last: i64,
    wake: broadcast::Receiver<String>,
    first: bool,
    sent: std::time::Instant,
}

/// The caller's notifications after `last` (none before it), as SSE.
pub fn notifications(
    db: DatabaseConnection,
    tenant: tenancy::Tenant,
    user: Uuid,
    last: i64,
    wake: broadcast::Receiver<String>,
) -> impl futures::Stream<Item = Result<Bytes, ApiError>> {
    let state = State {
        db,
        tenant,
        user,
        last,
        wake,
        first: true,
        sent: std::time::Instant::now(),
    };
    futures::stream::try_unfold(state, |mut s| async move {
        if s.first {
            s.first = false;
            // Tells the client how long to wait before reconnecting.
            return Ok(Some((Bytes::from_static(b"retry: 2000\n\n"), s)));
        }
        loop {
            let tx = tenancy::TenantTx::begin(&s.db, &s.tenant).await?;
            let rows = tx
                .conn()
                .query_all_raw(tenancy::stmt(
                    "SELECT id, body::text FROM notifications \
                     WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT 100",
                    [s.user.into(), s.last.into()],
                ))
                .await?;
            tx.commit().await?;
            if !rows.is_empty() {
                let mut out = String::new();
                for r in &rows {
                    let id: i64 = r.try_get_by_index(0)?;
                    let body: String = r.try_get_by_index(1)?;
                    out.push_str(&format!("id: {id}\nevent: notification\ndata: {body}\n\n"));
                    s.last = id;
                }
                s.sent = std::time::Instant::now();
                return Ok(Some((Bytes::from(out), s)));
            }
            if s.sent.elapsed() >= HEARTBEAT {
                s.sent = std::time::Instant::now();
                return Ok(Some((Bytes::from_static(b": heartbeat\n\n"), s)));
            }
            // Until this tenant is woken, a recheck is due, or a heartbeat.
            let schema = s.tenant.schema().as_str().to_owned();
            let wait = RECHECK.min(HEARTBEAT.saturating_sub(s.sent.elapsed()));
            let _ = tokio::time::timeout(wait, async {
                loop {
                    match s.wake.recv().await {
                        Ok(name) if name == schema => return,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => return,
                        Err(broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await;
                        }
                    }
                }
            })
            .await;
        }
    })
}
