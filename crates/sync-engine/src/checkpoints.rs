//! Timestamps handed to clients of the Django package's protocol, each
//! standing for the exact cursor it was issued with, so a client that only
//! knows "last sync time" never misses a change.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use domain::store::stmt;

/// How long issued checkpoints are kept.
const KEEP: &str = "30 days";

/// The cursor a checkpoint issued to `user` for `model` at `at` stands
/// for: the one issued at exactly `at`, or the newest complete one before.
pub async fn cursor_at(
    conn: &impl ConnectionTrait,
    user: Uuid,
    model: &str,
    at: DateTime<Utc>,
) -> Result<Option<String>, DbErr> {
    let row = conn
        .query_one_raw(stmt(
            "SELECT cursor FROM sync_checkpoints WHERE user_id = $1 AND model = $2 \
             AND (issued_at = $3 OR (complete AND issued_at <= $3)) \
             ORDER BY (issued_at = $3) DESC, issued_at DESC LIMIT 1",
            [user.into(), model.into(), at.into()],
        ))
        .await?;
    row.map(|r| r.try_get_by_index::<String>(0)).transpose()
}

/// The cursor of the newest complete checkpoint issued to `user` for `key`
/// at or before `at`.
pub async fn complete_before(
    conn: &impl ConnectionTrait,
    user: Uuid,
    key: &str,
    at: DateTime<Utc>,
) -> Result<Option<String>, DbErr> {
    let row = conn
        .query_one_raw(stmt(
            "SELECT cursor FROM sync_checkpoints WHERE user_id = $1 AND model = $2 \
             AND complete AND issued_at <= $3 ORDER BY issued_at DESC LIMIT 1",
            [user.into(), key.into(), at.into()],
        ))
        .await?;
    row.map(|r| r.try_get_by_index::<String>(0)).transpose()
}

/// Issues a checkpoint for `cursor` (`complete` when nothing is left to
/// pull); returns its timestamp. Drops the user's expired checkpoints.
pub async fn issue(
    conn: &impl ConnectionTrait,
    user: Uuid,
    model: &str,
    cursor: &str,
    complete: bool,
) -> Result<DateTime<Utc>, DbErr> {
    let issued = conn
        .query_one_raw(stmt(
            "INSERT INTO sync_checkpoints (user_id, model, issued_at, cursor, complete) \
             VALUES ($1, $2, clock_timestamp(), $3, $4) RETURNING issued_at",
            [user.into(), model.into(), cursor.into(), complete.into()],
        ))
        .await?
        .map(|r| r.try_get_by_index::<DateTime<Utc>>(0))
        .transpose()?
        .unwrap_or_else(Utc::now);
    conn.execute_raw(stmt(
        &format!(
            "DELETE FROM sync_checkpoints WHERE user_id = $1 AND model = $2 \
             AND issued_at < now() - interval '{KEEP}'"
        ),
        [user.into(), model.into()],
    ))
    .await?;
    Ok(issued)
}

/// Issues a checkpoint of a complete pull whose timestamp also carries
/// random microseconds, so two devices pulling in the same millisecond
/// hold different timestamps (clients that only keep a number key on it).
pub async fn issue_complete(
    conn: &impl ConnectionTrait,
    user: Uuid,
    key: &str,
    cursor: &str,
) -> Result<DateTime<Utc>, DbErr> {
    let issued = conn
        .query_one_raw(stmt(
            "INSERT INTO sync_checkpoints (user_id, model, issued_at, cursor, complete) \
             VALUES ($1, $2, date_trunc('milliseconds', clock_timestamp()) + \
                     (random() * 999)::int * interval '1 microsecond', $3, true) RETURNING issued_at",
            [user.into(), key.into(), cursor.into()],
        ))
        .await?
        .map(|r| r.try_get_by_index::<DateTime<Utc>>(0))
        .transpose()?
        .unwrap_or_else(Utc::now);
    Ok(issued)
}

/// The cursor of the checkpoint issued to `user` at exactly `at`, whatever
/// it was issued for.
pub async fn issued_at(
    conn: &impl ConnectionTrait,
    user: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<String>, DbErr> {
    let row = conn
        .query_one_raw(stmt(
            "SELECT cursor FROM sync_checkpoints WHERE user_id = $1 AND issued_at = $2 LIMIT 1",
            [user.into(), at.into()],
        ))
        .await?;
    row.map(|r| r.try_get_by_index::<String>(0)).transpose()
}
