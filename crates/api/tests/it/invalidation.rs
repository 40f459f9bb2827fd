//! A tenant change reaches every server instance within a second.

use std::time::{Duration, Instant};

use tenancy::Slug;
use tenancy::testing::TestDb;

use crate::helpers::{TestApp, spawn_app};

/// Polls `app` until `host` answers `want`; the time it took.
async fn until_status(app: &TestApp, host: &str, want: u16) -> Duration {
    let started = Instant::now();
    loop {
        let got = app.get(host, "/api/v1/tenant").await.status().as_u16();
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{host} still answers {got}, want {want}, after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn suspension_and_deletion_reach_every_instance_within_a_second() {
    let db = TestDb::new(2).await;
    db.create_tenant("acme").await;
    let one = spawn_app(&db, 2).await;
    let two = spawn_app(&db, 2).await;
    let host = "acme.localhost";
    // Warm both caches.
    for app in [&one, &two] {
        for _ in 0..3 {
            assert_eq!(app.get(host, "/api/v1/tenant").await.status(), 200);
        }
    }
    let registry = db.registry();
    let slug = Slug::parse("acme").expect("slug");

    registry.suspend(&slug).await.expect("suspend");
    for app in [&one, &two] {
        until_status(app, host, 403).await;
    }
    let res = one.get(host, "/api/v1/tenant").await;
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["code"], "tenant_suspended");

    registry.resume(&slug).await.expect("resume");
    for app in [&one, &two] {
        until_status(app, host, 200).await;
    }

    registry.delete(&slug).await.expect("delete");
    for app in [&one, &two] {
        until_status(app, host, 404).await;
    }

    // A newly created tenant is not hidden by a cached "unknown host".
    assert_eq!(
        one.get("fresh.localhost", "/api/v1/tenant").await.status(),
        404
    );
    db.create_tenant("fresh").await;
    until_status(&one, "fresh.localhost", 200).await;
}

/// Polls until `ask` answers `want`, for at most a second.
async fn until<F, Fut>(what: &str, want: u16, ask: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let started = Instant::now();
    loop {
        let got = ask().await;
        if got == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{what}: still {got}, want {want}, after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Servers keep each tenant's rules (role permissions, custom fields) in
/// memory: a change made on one server, or by SQL, reaches the others at
/// once.
#[tokio::test]
async fn rule_changes_reach_every_instance_within_a_second() {
    use reqwest::Method;
    use serde_json::json;

    let db = TestDb::new(2).await;
    let tenant = crate::helpers::tenant_with_admin(&db, "acme", "correct horse battery").await;
    let one = spawn_app(&db, 2).await;
    let two = spawn_app(&db, 2).await;
    let admin = crate::helpers::admin_token(&db, &tenant).await;
    // A user of a role without any grant.
    let field = uuid::Uuid::now_v7();
    crate::helpers::write_and_settle(
        &db,
        &tenant,
        &format!(
            "INSERT INTO roles (id, name) VALUES (gen_random_uuid(), 'Field'); \
             INSERT INTO users (id, email, full_name) VALUES ('{field}', 'f@acme.test', 'F'); \
             INSERT INTO user_roles (user_id, role_id) SELECT '{field}', id FROM roles WHERE name = 'Field';"
        ),
    )
    .await;
    let settings: api::configuration::Settings = tenancy::config::load().expect("configuration");
    let token = api::auth::TokenKeys::new(&settings.auth.jwt_secret, 3600, 3600)
        .issue(
            field,
            tenant.id(),
            uuid::Uuid::now_v7(),
            1,
            vec!["Field".into()],
        )
        .expect("token");
    let list = |app: &TestApp| {
        let req = app
            .on("acme", Method::GET, "/api/v1/clients")
            .bearer_auth(&token);
        async move { req.send().await.expect("list").status().as_u16() }
    };
    for app in [&one, &two] {
        for _ in 0..3 {
            assert_eq!(list(app).await, 403);
        }
    }
    // Granted by an operator's SQL: no server wrote it.
    crate::helpers::write_and_settle(
        &db,
        &tenant,
        "INSERT INTO sync_permissions (role_id, model, can_pull) \
         SELECT id, 'clients', true FROM roles WHERE name = 'Field'",
    )
    .await;
    for app in [&one, &two] {
        until("the grant", 200, || list(app)).await;
    }

    // A required custom field added through one server is required by the
    // other, whose rules were cached by a create just before.
    let create = |app: &TestApp, n: u32| {
        let req = app
            .on("acme", Method::POST, "/api/v1/clients")
            .bearer_auth(&admin)
            .json(&json!({"name": format!("Client {n}"), "status": "lead"}));
        async move { req.send().await.expect("create").status().as_u16() }
    };
    assert_eq!(create(&two, 0).await, 201);
    let (s, body) = crate::helpers::send(
        &one,
        &admin,
        Method::POST,
        "/api/v1/field-sets",
        Some(
            json!({"model": "clients", "name": "esg", "label": "ESG", "fields": [
                {"key": "industry", "label": "Industry", "type": "text", "required": true}
            ]}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let n = std::sync::atomic::AtomicU32::new(1);
    until("the required field", 422, || {
        create(&two, n.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    })
    .await;
}
