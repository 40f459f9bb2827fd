//! Health, readiness, request ids and unknown routes.

use tenancy::testing::TestDb;

use crate::helpers::{problem, settings, spawn_app, spawn_with};

#[tokio::test]
async fn health_ready_and_request_ids() {
    let db = TestDb::new(2).await;
    let app = spawn_app(&db, 2).await;

    let res = app.get("localhost", "/health").await;
    assert_eq!(res.status(), 200);
    let id = res.headers()["x-request-id"].to_str().expect("ascii");
    assert_eq!(id.len(), 36, "a uuid: {id}");

    let res = app.get("anything.example.net", "/ready").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["checks"]["postgres"], true);
    assert_eq!(body["checks"]["redis"], true);

    // A caller's own request id is kept.
    let res = app
        .client
        .get(format!("{}/health", app.address))
        .header("x-request-id", "lb-1234")
        .send()
        .await
        .expect("request");
    assert_eq!(res.headers()["x-request-id"], "lb-1234");

    let res = app.get("localhost", "/no/such/route").await;
    assert_eq!(res.status(), 404);
    problem(res).await;
}

#[tokio::test]
async fn ready_is_503_without_redis() {
    let db = TestDb::new(2).await;
    let mut s = settings(&db, 2);
    // Nothing listens on port 1.
    s.redis.url = "redis://127.0.0.1:1".into();
    let app = spawn_with(&s, false).await;
    let res = app.get("localhost", "/ready").await;
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["checks"]["redis"], false);
    assert_eq!(body["checks"]["postgres"], true);
    // The process itself is alive.
    assert_eq!(app.get("localhost", "/health").await.status(), 200);
}

/// The server's connections say whose they are in `pg_stat_activity`:
/// writes and reads apart, so an operator (and the tenancy benchmark's
/// memory figure) can tell them from everyone else's.
#[tokio::test]
async fn connections_name_the_server_and_their_pool() {
    use sea_orm::ConnectionTrait;

    let db = TestDb::new(2).await;
    crate::helpers::tenant_with_admin(&db, "acme", "correct horse battery").await;
    let app = spawn_app(&db, 2).await;
    let (token, _) = app
        .tokens("acme", "admin@acme.test", "correct horse battery")
        .await;
    let list = app
        .on("acme", reqwest::Method::GET, "/api/v1/clients")
        .bearer_auth(&token)
        .send()
        .await
        .expect("list");
    assert_eq!(list.status(), 200);
    let names: Vec<String> = db
        .db
        .query_all_raw(tenancy::stmt(
            "SELECT DISTINCT application_name FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name LIKE 'strata%' \
             ORDER BY 1",
            [],
        ))
        .await
        .expect("activity")
        .iter()
        .map(|r| r.try_get_by_index(0).expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            tenancy::db::WRITE_CONNECTIONS,
            tenancy::db::READ_CONNECTIONS
        ]
    );
}
