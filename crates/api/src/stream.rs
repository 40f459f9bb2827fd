//! The live stream (`GET /api/v1/events/stream`, Server-Sent Events): the
//! caller's notifications as they are made, on whichever server made them,
//! and the tenant's changes (as typed events) the caller's roles may read.
//!
//! Fan-out: the tenant trigger that makes notifications sends
//! `NOTIFY strata_stream, '<schema>'`; every server listens on a connection
//! of its own and wakes the streams of that tenant, which read what is new
//! from PostgreSQL. Changes are read from the journal every second (a
//! notice per write would serialise every commit of the database). A
//! stream also looks every few seconds (a missed notice delays, never
//! loses) and sends a heartbeat comment every 15 s. Each message's id is
//! `<notification id>-<journal position>`, the position in both, so
//! `Last-Event-ID` resumes both.

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
/// How often a stream that carries changes reads the journal.
const CHANGES_EVERY: Duration = Duration::from_secs(1);

/// A position in the journal: entries are read in (transaction, id)
/// order, and only those of transactions below the oldest still running,
/// so an entry committed late by a long transaction is never skipped
/// (ids alone are taken in one order and committed in another).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub txid: i64,
    pub id: i64,
}

impl Position {
    /// `<txid>.<id>`, as in the stream's message ids.
    pub fn parse(s: &str) -> Option<Self> {
        let (txid, id) = s.split_once('.')?;
        Some(Self {
            txid: txid.parse().ok().filter(|t| *t >= 0)?,
            id: id.parse().ok()?,
        })
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.txid, self.id)
    }
}

/// The journal entries a caller may read, as typed events: a statement
/// whose `$1` and `$2` are the position after which to read.
pub struct Changes {
    sql: String,
    values: Vec<sea_orm::Value>,
    pub last: Position,
}

impl Changes {
    /// The changes `perms` may read, after journal entry `last`; `None`
    /// when they may read no model. A model with row filters yields only
    /// changes of records that pass them now (so not their deletions).
    ///
    /// `seen`: a snapshot (`pg_snapshot` as text) whose committed changes
    /// the caller has no need of (a new stream starts from now).
    pub fn new(
        perms: &domain::access::Permissions,
        caller: Uuid,
        last: Position,
        seen: Option<String>,
    ) -> Option<Self> {
        let mut values: Vec<sea_orm::Value> = vec![last.txid.into(), last.id.into(), seen.into()];
        let mut visible = Vec::new();
        for spec in domain::record::models() {
            match perms.read(spec) {
                Err(_) => {}
                Ok(domain::access::Scope::All) => {
                    visible.push(format!("j.model = '{}'", spec.table));
                }
                Ok(scope) => {
                    let cond = scope.sql(spec, caller, &mut values);
                    visible.push(format!(
                        "(j.model = '{table}' AND EXISTS (SELECT 1 FROM {table} t \
                          WHERE t.id = j.record_id AND {cond}))",
                        table = spec.table
                    ));
                }
            }
        }
        if visible.is_empty() {
            return None;
        }
        // The entries after `$1` (a page of them), each with the event
        // types it makes, or none when the caller may not read it or it
        // makes no enabled type (the position moves past it either way).
        let sql = format!(
            "WITH scanned AS ( \
                SELECT *, (txid::text)::bigint AS tx FROM journal \
                 WHERE (txid::text)::bigint >= $1 AND ((txid::text)::bigint, id) > ($1, $2) \
                   AND txid < pg_snapshot_xmin(pg_current_snapshot()) \
                   AND ($3::text IS NULL OR NOT pg_visible_in_snapshot(txid, $3::text::pg_snapshot)) \
                 ORDER BY txid, id LIMIT 500), \
             typed AS ( \
                SELECT j.id, array_agg(t.name ORDER BY t.name) AS types FROM scanned j \
                  JOIN event_types t ON t.enabled AND t.model = j.model AND t.action = j.action \
                                    AND (t.field IS NULL OR j.changes ? t.field) \
                 WHERE {} GROUP BY j.id) \
             SELECT s.tx, s.id, CASE WHEN y.id IS NOT NULL THEN json_build_object( \
                    'types', y.types, 'model', s.model, 'record_id', s.record_id, \
                    'action', s.action, 'version', s.version, 'changes', s.changes, \
                    'actor', s.actor, 'user_id', s.user_id, 'channel', s.channel, \
                    'request_id', s.request_id, 'at', s.at, 'journal_id', s.id)::text END \
               FROM scanned s LEFT JOIN typed y ON y.id = s.id ORDER BY s.tx, s.id",
            visible.join(" OR ")
        );
        Some(Self { sql, values, last })
    }

    /// What is new, as SSE messages (ids after `note`), moving the position.
    async fn read(
        &mut self,
        conn: &impl ConnectionTrait,
        note: i64,
        out: &mut String,
    ) -> Result<(), ApiError> {
        self.values[0] = self.last.txid.into();
        self.values[1] = self.last.id.into();
        let rows = conn
            .query_all_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                &self.sql,
                self.values.clone(),
            ))
            .await?;
        for r in &rows {
            self.last = Position {
                txid: r.try_get_by_index(0)?,
                id: r.try_get_by_index(1)?,
            };
            if let Some(body) = r.try_get_by_index::<Option<String>>(2)? {
                out.push_str(&format!(
                    "id: {note}-{}\nevent: change\ndata: {body}\n\n",
                    self.last
                ));
            }
        }
        Ok(())
    }
}

/// Wakes streams when their tenant has something new, and dispatchers
/// when a tenant has deliveries due.
pub struct Wakeups {
    tx: broadcast::Sender<String>,
    events: broadcast::Sender<String>,
    jobs: broadcast::Sender<String>,
}

impl Wakeups {
    /// Listens on PostgreSQL's own address (`url`; LISTEN does not pass a
    /// transaction-pooling PgBouncer), reconnecting with backoff.
    pub fn spawn(url: String) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let (tx, _) = broadcast::channel(1024);
        let (events, _) = broadcast::channel(1024);
        let (jobs, _) = broadcast::channel(64);
        let this = Arc::new(Self { tx, events, jobs });
        let me = Arc::clone(&this);
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                if let Ok(mut listener) = PgListener::connect(&url).await
                    && listener
                        .listen_all([CHANNEL, EVENTS, tenancy::jobs::CHANNEL])
                        .await
                        .is_ok()
                {
                    backoff = Duration::from_millis(100);
                    while let Ok(Some(note)) = listener.try_recv().await {
                        let to = match note.channel() {
                            EVENTS => &me.events,
                            tenancy::jobs::CHANNEL => &me.jobs,
                            _ => &me.tx,
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

    /// New or retried platform job items.
    pub fn jobs(&self) -> &broadcast::Sender<String> {
        &self.jobs
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
    changes: Option<Changes>,
    read_changes: std::time::Instant,
    wake: broadcast::Receiver<String>,
    first: bool,
    sent: std::time::Instant,
}

/// The caller's notifications after `last` and the `changes` they may
/// read (none before them), as SSE.
pub fn events(
    db: DatabaseConnection,
    tenant: tenancy::Tenant,
    user: Uuid,
    last: i64,
    changes: Option<Changes>,
    wake: broadcast::Receiver<String>,
) -> impl futures::Stream<Item = Result<Bytes, ApiError>> {
    let state = State {
        db,
        tenant,
        user,
        last,
        changes,
        read_changes: std::time::Instant::now(),
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
            let mut out = String::new();
            let change = s.changes.as_ref().map(|c| c.last.to_string());
            let change = change.as_deref().unwrap_or("0.0");
            for r in &rows {
                let id: i64 = r.try_get_by_index(0)?;
                let body: String = r.try_get_by_index(1)?;
                out.push_str(&format!(
                    "id: {id}-{change}\nevent: notification\ndata: {body}\n\n"
                ));
                s.last = id;
            }
            if let Some(changes) = s.changes.as_mut()
                && s.read_changes.elapsed() >= CHANGES_EVERY
            {
                s.read_changes = std::time::Instant::now();
                changes.read(tx.conn(), s.last, &mut out).await?;
            }
            tx.commit().await?;
            if !out.is_empty() {
                s.sent = std::time::Instant::now();
                return Ok(Some((Bytes::from(out), s)));
            }
            if s.sent.elapsed() >= HEARTBEAT {
                s.sent = std::time::Instant::now();
                return Ok(Some((Bytes::from_static(b": heartbeat\n\n"), s)));
            }
            // Until this tenant is woken, a recheck is due, or a heartbeat.
            let schema = s.tenant.schema().as_str().to_owned();
            let mut wait = RECHECK.min(HEARTBEAT.saturating_sub(s.sent.elapsed()));
            if s.changes.is_some() {
                wait = wait.min(CHANGES_EVERY.saturating_sub(s.read_changes.elapsed()));
            }
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
