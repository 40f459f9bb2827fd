//! Platform operators sign in on the bare base domain only, and their
//! tokens are worthless on tenant hosts (and the other way round).

use reqwest::Method;
use serde_json::json;
use tenancy::testing::TestDb;

use crate::helpers::{spawn_app, tenant_with_admin};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn operators_and_tenant_users_stay_apart() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let hash = domain::password::Password::parse(PASSWORD)
        .expect("password")
        .hash();
    tenancy::operators::create(&db.db, "ops@strata.test", &hash)
        .await
        .expect("operator");
    let app = spawn_app(&db, 2).await;
    let login = |host: &'static str, email: &'static str| {
        app.client
            .post(format!("{}/api/v1/platform/auth/token", app.address))
            .header(reqwest::header::HOST, host)
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
    };

    let res = login("localhost", "ops@strata.test")
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    let op_token = body["access_token"].as_str().expect("token").to_owned();
    assert!(body.get("refresh_token").is_none());

    let list = |host: &'static str, token: String| {
        app.client
            .get(format!("{}/api/v1/platform/tenants", app.address))
            .header(reqwest::header::HOST, host)
            .bearer_auth(token)
            .send()
    };
    let res = list("localhost", op_token.clone()).await.expect("request");
    assert_eq!(res.status(), 200);
    let tenants: serde_json::Value = res.json().await.expect("json");
    assert_eq!(tenants[0]["slug"], "acme");

    // Operators cannot sign in on a tenant host, nor use their token there.
    assert_eq!(
        login("acme.localhost", "ops@strata.test")
            .await
            .expect("request")
            .status(),
        404
    );
    let res = app
        .on("acme", Method::GET, "/api/v1/auth/me")
        .bearer_auth(&op_token)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 401);
    // A tenant user is not an operator.
    let (user_token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    assert_eq!(
        list("localhost", user_token)
            .await
            .expect("request")
            .status(),
        401
    );
    // A tenant user's credentials do not sign in on the platform.
    assert_eq!(
        login("localhost", "admin@acme.test")
            .await
            .expect("request")
            .status(),
        401
    );
}

/// An operator clones a tenant through the API; the copy serves its own
/// host with the source's users and records, and the source is untouched.
#[tokio::test]
async fn operators_clone_a_tenant_that_then_serves_its_own_host() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let (admin, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    for name in ["Initech", "Globex"] {
        let res = app
            .on("acme", Method::POST, "/api/v1/clients")
            .bearer_auth(&admin)
            .json(&json!({ "name": name }))
            .send()
            .await
            .expect("create");
        assert_eq!(res.status(), 201);
    }
    let ops = crate::helpers::operator_token(&db, &app).await;
    let clone = |source: &str, body: serde_json::Value| {
        app.client
            .post(format!(
                "{}/api/v1/platform/tenants/{source}/clone",
                app.address
            ))
            .header(reqwest::header::HOST, "localhost")
            .bearer_auth(&ops)
            .json(&body)
            .send()
    };
    let res = clone("acme", json!({ "slug": "acme-copy" }))
        .await
        .expect("clone");
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["tables"]["clients"], 2, "{body}");
    for (source, body, status) in [
        ("acme", json!({ "slug": "acme-copy" }), 409),
        ("nobody", json!({ "slug": "other" }), 404),
        ("acme", json!({ "slug": "Bad Slug" }), 422),
    ] {
        let res = clone(source, body.clone()).await.expect("clone");
        assert_eq!(res.status(), status, "{source} {body}");
    }
    // Tenant users cannot clone.
    let res = app
        .client
        .post(format!(
            "{}/api/v1/platform/tenants/acme/clone",
            app.address
        ))
        .header(reqwest::header::HOST, "localhost")
        .bearer_auth(&admin)
        .json(&json!({ "slug": "mine" }))
        .send()
        .await
        .expect("clone");
    assert_eq!(res.status(), 401);
    // The copy's administrator signs in on the copy's host and sees the records.
    let (copy_admin, _) = app.tokens("acme-copy", "admin@acme.test", PASSWORD).await;
    let res = app
        .on("acme-copy", Method::GET, "/api/v1/clients")
        .bearer_auth(&copy_admin)
        .send()
        .await
        .expect("list");
    assert_eq!(res.status(), 200);
    let list: serde_json::Value = res.json().await.expect("json");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2), "{list}");
    // Writes to the copy stay in the copy.
    let res = app
        .on("acme-copy", Method::POST, "/api/v1/clients")
        .bearer_auth(&copy_admin)
        .json(&json!({ "name": "Only in the copy" }))
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), 201);
    let res = app
        .on("acme", Method::GET, "/api/v1/clients")
        .bearer_auth(&admin)
        .send()
        .await
        .expect("list");
    let list: serde_json::Value = res.json().await.expect("json");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2), "{list}");
}

/// Sends `method path` on the platform host as the bearer of `token`.
async fn platform(
    app: &crate::helpers::TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = app
        .client
        .request(method, format!("{}/api/v1/platform{path}", app.address))
        .header(reqwest::header::HOST, "localhost")
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn operators_distribute_a_field_set_that_the_servers_workers_apply() {
    let db = TestDb::new(4).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    for i in 0..5 {
        db.create_tenant(&format!("org-{i}")).await;
    }
    let app = spawn_app(&db, 8).await;
    let ops = crate::helpers::operator_token(&db, &app).await;
    let (s, set) = platform(
        &app,
        &ops,
        Method::POST,
        "/field-sets",
        Some(
            json!({"model": "clients", "name": "esg", "label": "ESG", "fields": [
                {"key": "sector", "label": "Sector", "type": "single_choice",
                 "options": ["energy", "retail"]}
            ]}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{set}");
    let id = set["id"].as_str().expect("id").to_owned();
    // Bad input: no strategy, unknown tenants, both a list and all.
    for (body, field) in [
        (json!({"targets": {"all": true}}), "strategy"),
        (
            json!({"targets": {"tenants": ["nobody"]}, "strategy": "skip"}),
            "tenants[0]",
        ),
        (
            json!({"targets": {"all": true, "tenants": ["acme"]}, "strategy": "skip"}),
            "targets",
        ),
    ] {
        let (s, body) = platform(
            &app,
            &ops,
            Method::POST,
            &format!("/field-sets/{id}/distribute"),
            Some(body),
        )
        .await;
        assert_eq!(s, 422, "{body}");
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }
    // The dry run writes nothing and says each tenant would install it.
    let (s, dry) = platform(
        &app,
        &ops,
        Method::POST,
        &format!("/field-sets/{id}/distribute"),
        Some(json!({"targets": {"search": "org"}, "dry_run": true})),
    )
    .await;
    assert_eq!(s, 200, "{dry}");
    let tenants = dry["tenants"].as_array().expect("tenants");
    assert_eq!(tenants.len(), 5);
    assert_eq!(
        tenants[0]["strategies"]["merge"]["outcome"]["action"],
        "installed"
    );
    // The real run is a job the server's own workers carry out.
    let (s, job) = platform(
        &app,
        &ops,
        Method::POST,
        &format!("/field-sets/{id}/distribute"),
        Some(json!({"targets": {"all": true}, "strategy": "merge"})),
    )
    .await;
    assert_eq!(s, 202, "{job}");
    assert_eq!(job["total"], 6);
    assert_eq!(job["created_by"], "ops@strata.test");
    let job_id = job["id"].as_str().expect("id").to_owned();
    // The progress stream follows the job to its end, then closes.
    let res = app
        .client
        .get(format!(
            "{}/api/v1/platform/jobs/{job_id}/stream",
            app.address
        ))
        .header(reqwest::header::HOST, "localhost")
        .bearer_auth(&ops)
        .send()
        .await
        .expect("stream");
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let text = tokio::time::timeout(std::time::Duration::from_secs(30), res.text())
        .await
        .expect("the stream ends with the job")
        .expect("body");
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).expect("json"))
        .collect();
    let end = events.last().expect("an event");
    assert_eq!(
        (end["status"].clone(), end["done"].clone()),
        (json!("finished"), json!(6)),
        "{text}"
    );
    let mut last = serde_json::Value::Null;
    for _ in 0..100 {
        let (s, body) = platform(&app, &ops, Method::GET, &format!("/jobs/{job_id}"), None).await;
        assert_eq!(s, 200, "{body}");
        last = body;
        if last["status"] == "finished" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        (
            last["status"].clone(),
            last["done"].clone(),
            last["percent"].clone()
        ),
        (json!("finished"), json!(6), json!(100.0)),
        "{last}"
    );
    assert_eq!(last["items"][0]["result"]["action"], "installed");
    // The tenant sees the set and its field checks records.
    let (admin, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let res = app
        .on("acme", Method::POST, "/api/v1/clients")
        .bearer_auth(&admin)
        .json(&json!({"name": "Coal Co", "custom": {"sector": "coal"}}))
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), 422);
    // Jobs are listed; retry and cancel of a finished job change nothing;
    // tenant users cannot see jobs.
    let (s, list) = platform(&app, &ops, Method::GET, "/jobs", None).await;
    assert_eq!(s, 200);
    assert_eq!(list[0]["id"], json!(job_id));
    let (s, _) = platform(
        &app,
        &ops,
        Method::POST,
        &format!("/jobs/{job_id}/retry"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = platform(&app, &admin, Method::GET, "/jobs", None).await;
    assert_eq!(s, 401);
    let (s, m) = platform(&app, &ops, Method::GET, "/metrics", None).await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(
        (m["tenants"].clone(), m["jobs_last_day"].clone()),
        (json!(6), json!(1)),
        "{m}"
    );
    let (s, _) = platform(
        &app,
        &ops,
        Method::GET,
        &format!("/jobs/{}", uuid::Uuid::nil()),
        None,
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn an_exported_tenant_imported_over_http_serves_the_api_and_sync() {
    let db = TestDb::new(4).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 8).await;
    let (admin, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    for name in ["Initech", "Globex"] {
        let res = app
            .on("acme", Method::POST, "/api/v1/clients")
            .bearer_auth(&admin)
            .json(&json!({ "name": name }))
            .send()
            .await
            .expect("create");
        assert_eq!(res.status(), 201);
    }
    let ops = crate::helpers::operator_token(&db, &app).await;
    let res = app
        .client
        .get(format!(
            "{}/api/v1/platform/tenants/acme/export",
            app.address
        ))
        .header(reqwest::header::HOST, "localhost")
        .bearer_auth(&ops)
        .send()
        .await
        .expect("export");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-tar");
    let archive = res.bytes().await.expect("body").to_vec();
    let import = |slug: &str, body: Vec<u8>| {
        app.client
            .post(format!(
                "{}/api/v1/platform/tenants/{slug}/import",
                app.address
            ))
            .header(reqwest::header::HOST, "localhost")
            .bearer_auth(&ops)
            .body(body)
            .send()
    };
    // A changed byte anywhere is refused, and nothing is made.
    let mut changed = archive.clone();
    let at = changed
        .windows(7)
        .position(|w| w == b"Initech")
        .expect("a row");
    changed[at] = b'X';
    let res = import("acme-moved", changed).await.expect("import");
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["errors"][0]["field"], "archive", "{body}");
    let res = import("acme-moved", archive).await.expect("import");
    let status = res.status();
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["tables"]["clients"], 2);
    // Its users sign in with their passwords; REST and sync serve its rows.
    let (token, _) = app.tokens("acme-moved", "admin@acme.test", PASSWORD).await;
    let res = app
        .on("acme-moved", Method::GET, "/api/v1/clients?order=name")
        .bearer_auth(&token)
        .send()
        .await
        .expect("list");
    let list: serde_json::Value = res.json().await.expect("json");
    assert_eq!(list["items"][0]["name"], "Globex");
    assert_eq!(list["items"][1]["name"], "Initech");
    let mut pulled = 0;
    for _ in 0..50 {
        let res = app
            .on("acme-moved", Method::POST, "/api/v1/sync/pull")
            .bearer_auth(&token)
            .json(&json!({ "cursor": null, "models": ["clients"], "limit": 100 }))
            .send()
            .await
            .expect("pull");
        let body: serde_json::Value = res.json().await.expect("json");
        pulled = body["changes"]["clients"]["created"]
            .as_array()
            .map_or(0, Vec::len);
        if pulled == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(pulled, 2);

    // A template of acme, and a tenant made from it with its own
    // administrator.
    let (s, body) = platform(
        &app,
        &ops,
        Method::POST,
        "/templates",
        Some(json!({"name": "starter", "tenant": "acme", "include_records": true})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["tables"]["clients"], 2);
    let (s, body) = platform(
        &app,
        &ops,
        Method::POST,
        "/tenants",
        Some(
            json!({"slug": "fresh", "display_name": "Fresh", "template": "starter",
                    "admin_email": "boss@fresh.test", "admin_password": PASSWORD}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let (token, _) = app.tokens("fresh", "boss@fresh.test", PASSWORD).await;
    let res = app
        .on("fresh", Method::GET, "/api/v1/clients")
        .bearer_auth(&token)
        .send()
        .await
        .expect("list");
    let list: serde_json::Value = res.json().await.expect("json");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    let (s, _) = platform(
        &app,
        &ops,
        Method::POST,
        "/tenants",
        Some(json!({"slug": "other", "display_name": "Other", "template": "nope"})),
    )
    .await;
    assert_eq!(s, 422);
    let (s, list) = platform(&app, &ops, Method::GET, "/templates", None).await;
    assert_eq!((s, list[0]["name"].clone()), (200, json!("starter")));
    let (s, _) = platform(&app, &ops, Method::DELETE, "/templates/starter", None).await;
    assert_eq!(s, 204);
}

/// With `tenancy.spare_schemas` set, a server makes that many spares in
/// the background, a new tenant takes one, and the server makes another.
#[tokio::test]
async fn the_server_keeps_its_spare_schemas_ready() {
    use sea_orm::ConnectionTrait;
    use std::time::{Duration, Instant};

    let db = TestDb::new(2).await;
    let mut settings = crate::helpers::settings(&db, 2);
    settings.tenancy.spare_schemas = 2;
    settings.tenancy.spare_names = tenancy::spares::SpareNames::Own;
    let _app = crate::helpers::spawn_with(&settings, true).await;
    let registry = db.registry();
    let two_ready = || async {
        let deadline = Instant::now() + Duration::from_secs(60);
        while registry.spare_count().await.expect("spares") < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        registry.spare_count().await.expect("spares")
    };
    let schemas = || async {
        db.db
            .query_all_raw(tenancy::stmt(
                "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'tenant%'",
                [],
            ))
            .await
            .expect("schemas")
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).expect("name"))
            .collect::<Vec<_>>()
    };
    assert_eq!(two_ready().await, 2);
    let spares = schemas().await;
    let tenant = tenant_with_admin(&db, "acme", "correct horse battery").await;
    assert!(
        spares.contains(&tenant.schema().as_str().to_owned()),
        "{} is not one of the spares {spares:?}",
        tenant.schema().as_str()
    );
    assert_eq!(two_ready().await, 2, "the server made another");
}
