//! Liveness and readiness probes, answered on any host.

use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde_json::json;

use crate::state::AppState;

/// Registers the module's routes, each with its OpenAPI entry.
pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(health).service(ready);
}

/// The process is up and serving HTTP (any host).
#[utoipa::path(tag = "probes", responses((status = 200)))]
#[get("/health")]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// PostgreSQL and Redis both answer within a second; 503 otherwise (any host).
#[utoipa::path(tag = "probes", responses((status = 200), (status = 503)))]
#[get("/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let limit = Duration::from_secs(1);
    let postgres = matches!(
        tokio::time::timeout(limit, state.db.ping()).await,
        Ok(Ok(()))
    );
    let redis = matches!(
        tokio::time::timeout(limit, ping_redis(state.kv.client())).await,
        Ok(Ok(()))
    );
    let body = json!({
        "status": if postgres && redis { "ready" } else { "unavailable" },
        "checks": { "postgres": postgres, "redis": redis },
    });
    if postgres && redis {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn ping_redis(client: &redis::Client) -> redis::RedisResult<()> {
    let mut conn = client.get_multiplexed_async_connection().await?;
    redis::cmd("PING").query_async::<String>(&mut conn).await?;
    Ok(())
}
