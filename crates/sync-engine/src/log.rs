//! The sync log (every push and pull: who, which client, which models, how
//! many records, how it ended) and each user's per-model sync state.

use std::collections::BTreeMap;
use std::time::Instant;

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use domain::store::stmt;

/// Which way records went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Push,
    Pull,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::Pull => "pull",
        }
    }
}

/// How a push or pull ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// Everything sent was applied or delivered.
    Ok,
    /// Some records conflicted or failed; the rest were applied.
    Partial,
    /// Refused as a whole.
    Failed,
}

impl Ending {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Partial => "partial",
            Self::Failed => "failed",
        }
    }
}

/// One push or pull, for the log.
pub struct Entry<'a> {
    pub user: Uuid,
    pub client: Option<&'a str>,
    pub kind: Kind,
    /// Records per model.
    pub counts: BTreeMap<String, u64>,
    pub started: Instant,
}

impl Entry<'_> {
    pub fn new(user: Uuid, client: Option<&str>, kind: Kind) -> Entry<'_> {
        Entry {
            user,
            client,
            kind,
            counts: BTreeMap::new(),
            started: Instant::now(),
        }
    }

    /// Milliseconds since the entry started.
    pub fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    /// Records the entry in the log and, unless it failed, the user's
    /// per-model state. `error` is what the client was told.
    pub async fn record(
        &self,
        conn: &impl ConnectionTrait,
        ending: Ending,
        error: Option<&str>,
    ) -> Result<(), DbErr> {
        let models: Vec<String> = self.counts.keys().cloned().collect();
        let counts = serde_json::to_value(&self.counts).expect("counts are plain data");
        conn.execute_raw(stmt(
            "INSERT INTO sync_log (id, user_id, client_id, kind, models, counts, status, duration_ms, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            [
                Uuid::now_v7().into(),
                self.user.into(),
                self.client.map(str::to_owned).into(),
                self.kind.as_str().into(),
                models.clone().into(),
                counts.into(),
                ending.as_str().into(),
                self.elapsed_ms().into(),
                error.map(str::to_owned).into(),
            ],
        ))
        .await?;
        if ending == Ending::Failed {
            return Ok(());
        }
        let column = self.kind.as_str();
        let amounts: Vec<i64> = self
            .counts
            .values()
            .map(|&v| i64::try_from(v).unwrap_or(i64::MAX))
            .collect();
        conn.execute_raw(stmt(
            &format!(
                "INSERT INTO sync_user_state (user_id, model, last_{column}_at, {column}ed) \
                 SELECT $1, m, now(), n FROM unnest($2::text[], $3::bigint[]) AS x(m, n) \
                 ON CONFLICT (user_id, model) DO UPDATE \
                 SET last_{column}_at = now(), {column}ed = sync_user_state.{column}ed + EXCLUDED.{column}ed"
            ),
            [self.user.into(), models.into(), amounts.into()],
        ))
        .await?;
        Ok(())
    }
}

/// One line of the log.
#[derive(Debug, Serialize, FromQueryResult)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Line {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub client_id: Option<String>,
    /// push or pull.
    pub kind: String,
    pub models: Vec<String>,
    /// Records per model.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub counts: serde_json::Value,
    /// ok, partial or failed.
    pub status: String,
    pub duration_ms: f64,
    pub error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The newest `limit` lines, of one user and one kind when given.
pub async fn lines(
    conn: &impl ConnectionTrait,
    user: Option<Uuid>,
    kind: Option<Kind>,
    limit: i64,
) -> Result<Vec<Line>, DbErr> {
    Line::find_by_statement(stmt(
        "SELECT id, user_id, client_id, kind, models, counts, status, duration_ms, error, created_at \
         FROM sync_log WHERE ($1::uuid IS NULL OR user_id = $1) AND ($2::text IS NULL OR kind = $2) \
         ORDER BY created_at DESC LIMIT $3",
        [
            user.into(),
            kind.map(|k| k.as_str().to_owned()).into(),
            limit.into(),
        ],
    ))
    .all(conn)
    .await
}

/// A user's last push and pull of one model, and counts.
#[derive(Debug, Serialize, FromQueryResult)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelState {
    pub model: String,
    pub last_pull_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_push_at: Option<chrono::DateTime<chrono::Utc>>,
    pub pulled: i64,
    pub pushed: i64,
}

/// `user`'s sync state per model.
pub async fn state_of(conn: &impl ConnectionTrait, user: Uuid) -> Result<Vec<ModelState>, DbErr> {
    ModelState::find_by_statement(stmt(
        "SELECT model, last_pull_at, last_push_at, pulled, pushed FROM sync_user_state \
         WHERE user_id = $1 ORDER BY model",
        [user.into()],
    ))
    .all(conn)
    .await
}

/// Which lines of the log to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub user: Option<Uuid>,
    pub kind: Option<Kind>,
    /// `ok`, `partial` or `failed`.
    pub status: Option<String>,
    /// Lines older than this one (`created_at`, `id`): the previous page's
    /// last.
    pub before: Option<(chrono::DateTime<chrono::Utc>, Uuid)>,
    pub limit: i64,
}

/// One page of the log, newest first, keyset-paginated (no page costs
/// more than its own rows, however deep).
pub async fn page(conn: &impl ConnectionTrait, q: &LogQuery) -> Result<Vec<Line>, DbErr> {
    let (at, id) = q.before.unzip();
    Line::find_by_statement(stmt(
        "SELECT id, user_id, client_id, kind, models, counts, status, duration_ms, error, created_at \
         FROM sync_log WHERE ($1::uuid IS NULL OR user_id = $1) AND ($2::text IS NULL OR kind = $2) \
           AND ($3::text IS NULL OR status = $3) \
           AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::uuid)) \
         ORDER BY created_at DESC, id DESC LIMIT $6",
        [
            q.user.into(),
            q.kind.map(|k| k.as_str().to_owned()).into(),
            q.status.clone().into(),
            at.into(),
            id.into(),
            q.limit.into(),
        ],
    ))
    .all(conn)
    .await
}

/// Sync activity of one day.
#[derive(Debug, Serialize, FromQueryResult)]
pub struct Day {
    pub day: chrono::NaiveDate,
    pub pushes: i64,
    pub pulls: i64,
    /// Pushes and pulls that failed, or partly.
    pub errors: i64,
    /// Distinct devices (client ids) seen.
    pub devices: i64,
}

/// Activity per day over the last `days` days, newest first.
pub async fn activity(conn: &impl ConnectionTrait, days: i32) -> Result<Vec<Day>, DbErr> {
    Day::find_by_statement(stmt(
        "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, \
                count(*) FILTER (WHERE kind = 'push') AS pushes, \
                count(*) FILTER (WHERE kind = 'pull') AS pulls, \
                count(*) FILTER (WHERE status <> 'ok') AS errors, \
                count(DISTINCT client_id) AS devices \
           FROM sync_log WHERE created_at > now() - make_interval(days => $1) \
          GROUP BY 1 ORDER BY 1 DESC",
        [days.into()],
    ))
    .all(conn)
    .await
}
