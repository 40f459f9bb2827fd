//! The caller's notifications (made by the tenant when a client's manager
//! or a task's assignee changes to them): list, and mark read.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult};
use serde::{Deserialize, Serialize};
use tenancy::{TenantTx, stmt};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::state::AppState;

/// Registers the module's routes, each with its OpenAPI entry.
pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list)
        .service(read_all)
        .service(read_one)
        .service(stream);
}

#[derive(Serialize, FromQueryResult, ToSchema)]
pub struct Notification {
    pub id: i64,
    /// `client.assigned` or `task.assigned`.
    #[serde(rename = "type")]
    pub kind: String,
    pub model: String,
    pub record_id: Uuid,
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, IntoParams)]
pub struct ListParams {
    /// Only unread ones.
    #[serde(default)]
    pub unread: bool,
    /// The previous page's `next_cursor`.
    pub cursor: Option<i64>,
    /// 1 to 200 (default 50).
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    pub next_cursor: Option<i64>,
    pub unread: i64,
}

/// The caller's notifications, newest first, with the unread count.
#[utoipa::path(tag = "notifications", params(ListParams),
    responses((status = 200, body = NotificationPage)), security(("bearer" = [])))]
#[get("/notifications")]
pub async fn list(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = page_of(&state, &tenant, &user, &params).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// A page of `user`'s notifications, newest first, with the unread count
/// (the API and the console read them here).
pub async fn page_of(
    state: &AppState,
    tenant: &CurrentTenant,
    user: &AuthUser,
    params: &ListParams,
) -> Result<NotificationPage, ApiError> {
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 200"));
    }
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let items = Notification::find_by_statement(stmt(
        "SELECT id, type AS kind, model, record_id, body, created_at, read_at \
         FROM notifications WHERE user_id = $1 AND ($2 = false OR read_at IS NULL) \
           AND ($3::bigint IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4",
        [
            user.id.into(),
            params.unread.into(),
            params.cursor.into(),
            limit.into(),
        ],
    ))
    .all(tx.conn())
    .await?;
    let unread = tx
        .conn()
        .query_one_raw(stmt(
            "SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL",
            [user.id.into()],
        ))
        .await?
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0);
    tx.commit().await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|n| n.id))
        .flatten();
    Ok(NotificationPage {
        items,
        next_cursor,
        unread,
    })
}

/// Marks one of the caller's notifications read.
#[utoipa::path(tag = "notifications", params(("id" = i64, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
#[post("/notifications/{id}/read")]
pub async fn read_one(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let done = tx
        .conn()
        .execute_raw(stmt(
            "UPDATE notifications SET read_at = coalesce(read_at, now()) \
             WHERE id = $1 AND user_id = $2",
            [id.into_inner().into(), user.id.into()],
        ))
        .await?;
    tx.commit().await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::NotFound("no such notification"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Marks every notification of the caller read.
#[utoipa::path(tag = "notifications", responses((status = 204)), security(("bearer" = [])))]
#[post("/notifications/read")]
pub async fn read_all(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    tx.conn()
        .execute_raw(stmt(
            "UPDATE notifications SET read_at = now() WHERE user_id = $1 AND read_at IS NULL",
            [user.id.into()],
        ))
        .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The live stream (Server-Sent Events): the caller's notifications
/// (`event: notification`) and the tenant's changes their roles may read,
/// as typed events (`event: change`, see docs/events.md); heartbeats every
/// 15 s. Each message's id is `<notification id>-<journal position>`: a client
/// that reconnects with `Last-Event-ID` gets what it missed; a new one gets
/// what comes from now on.
#[utoipa::path(tag = "notifications",
    responses((status = 200, content_type = "text/event-stream")), security(("bearer" = [])))]
#[get("/events/stream")]
pub async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let resume = match req.headers().get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| {
                    let (note, change) = s.trim().split_once('-')?;
                    Some((
                        note.parse::<i64>().ok()?,
                        crate::stream::Position::parse(change)?,
                    ))
                })
                .ok_or_else(|| {
                    ApiError::field("Last-Event-ID", "must be an id this stream sent")
                })?,
        ),
        None => None,
    };
    open_stream(&state, &tenant, &user, resume).await
}

/// The live stream of `user` from `resume` (or from now): the API's
/// `/events/stream` and the console's notifications page open it here.
pub async fn open_stream(
    state: &AppState,
    tenant: &CurrentTenant,
    user: &AuthUser,
    resume: Option<(i64, crate::stream::Position)>,
) -> Result<HttpResponse, ApiError> {
    let tx = TenantTx::begin(&state.db, &tenant.0).await?;
    let perms = state.rules.permissions(&tx, &user.roles).await?;
    let (note, change, seen) = match resume {
        Some((note, change)) => (note, change, None),
        None => {
            let row = tx
                .conn()
                .query_one_raw(stmt(
                    "SELECT (SELECT coalesce(max(id), 0) FROM notifications WHERE user_id = $1), \
                            (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint, \
                            pg_current_snapshot()::text",
                    [user.id.into()],
                ))
                .await?
                .ok_or(ApiError::NotFound("no position"))?;
            // From now: every transaction below the horizon is over, and
            // those committed above it are skipped as seen.
            let position = crate::stream::Position {
                txid: row.try_get_by_index(1)?,
                id: 0,
            };
            (
                row.try_get_by_index(0)?,
                position,
                Some(row.try_get_by_index::<String>(2)?),
            )
        }
    };
    tx.commit().await?;
    let changes = crate::stream::Changes::new(&perms, user.id, change, seen);
    let wake = state.wakeups.subscribe();
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        // Not compressed: a compressor holds events back until it has
        // enough to write.
        .insert_header(("content-encoding", "identity"))
        .streaming(crate::stream::events(
            state.db.clone(),
            (*tenant.0).clone(),
            user.id,
            note,
            changes,
            wake,
        )))
}
