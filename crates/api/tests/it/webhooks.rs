//! Events and signed webhooks: a receiver on 127.0.0.1 gets each event
//! once (retries keep their `webhook-id`), verifies the signature, sees
//! retries after failures and a dead letter it can retry; targets inside
//! the network are refused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::Method;
use serde_json::{Value, json};
use tenancy::testing::TestDb;

use crate::helpers::{
    TestApp, operator_token, send, settings, spawn_app, spawn_with, tenant_with_admin,
};

const PASSWORD: &str = "correct horse battery";

/// What a receiver saw: (webhook-id, timestamp, signature, body).
type Seen = Arc<Mutex<Vec<(String, String, String, String)>>>;

/// A receiver answering 500 to its first `fail_first` requests, then 200.
async fn receiver(fail_first: usize) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let server = HttpServer::new(move || {
        let log = Arc::clone(&log);
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let log = Arc::clone(&log);
            async move {
                let header = |n: &str| {
                    req.headers()
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let mut log = log.lock().expect("log");
                log.push((
                    header("webhook-id"),
                    header("webhook-timestamp"),
                    header("webhook-signature"),
                    String::from_utf8_lossy(&body).into_owned(),
                ));
                if log.len() <= fail_first {
                    HttpResponse::InternalServerError().finish()
                } else {
                    HttpResponse::Ok().finish()
                }
            }
        }))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .expect("bind");
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    (format!("http://127.0.0.1:{port}/hooks"), seen)
}

/// Waits until `done` holds of what the receiver saw.
async fn until(seen: &Seen, secs: u64, done: impl Fn(&[(String, String, String, String)]) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if done(&seen.lock().expect("log")) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "receiver saw {:#?}",
            seen.lock().expect("log")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn each_event_reaches_the_receiver_once_signed_and_failures_are_retried() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let (url, seen) = receiver(2).await;
    let (s, endpoint) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/webhooks",
        Some(json!({ "url": url, "event_types": ["client.created", "task.status.updated"] })),
    )
    .await;
    assert_eq!(s, 201, "{endpoint}");
    let secret = endpoint["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    for name in ["A", "B", "C"] {
        let (s, _) = send(
            &app,
            &token,
            Method::POST,
            "/api/v1/clients",
            Some(json!({ "name": name })),
        )
        .await;
        assert_eq!(s, 201);
    }
    let (s, task) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/tasks",
        Some(json!({ "title": "Call" })),
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = send(
        &app,
        &token,
        Method::PATCH,
        &format!("/api/v1/tasks/{}", task["id"].as_str().expect("id")),
        Some(json!({ "status": "done", "version": 1 })),
    )
    .await;
    assert_eq!(s, 200);
    // Not subscribed: a task's title, a contact.
    let (s, _) = send(
        &app,
        &token,
        Method::PATCH,
        &format!("/api/v1/tasks/{}", task["id"].as_str().expect("id")),
        Some(json!({ "title": "Called", "version": 2 })),
    )
    .await;
    assert_eq!(s, 200);

    // Four events; the first two attempts failed and were sent again.
    until(&seen, 30, |s| {
        let mut ids: Vec<&str> = s.iter().map(|r| r.0.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len() == 4 && s.len() == 6
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = seen.lock().expect("log").clone();
    assert_eq!(seen.len(), 6, "{seen:#?}");
    let mut types = Vec::new();
    for (id, ts, signature, body) in &seen {
        let ts: i64 = ts.parse().expect("timestamp");
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
        let expected = api::webhooks::sign(&secret, id, ts, body.as_bytes()).expect("sign");
        assert_eq!(signature, &expected, "signature of {id}");
        let event: Value = serde_json::from_str(body).expect("json");
        types.push(event["type"].as_str().expect("type").to_owned());
        assert_eq!(event["channel"], "rest");
        assert_eq!(event["actor"], "user");
    }
    // The two failed attempts were sent again under the same webhook-id.
    for failed in &seen[..2] {
        assert_eq!(
            seen.iter().filter(|r| r.0 == failed.0).count(),
            2,
            "{seen:#?}"
        );
    }
    types.sort();
    types.dedup();
    assert_eq!(types, ["client.created", "task.status.updated"]);
    // The deliveries, as the API shows them.
    let (s, list) = send(
        &app,
        &token,
        Method::GET,
        &format!(
            "/api/v1/webhooks/{}/deliveries",
            endpoint["id"].as_str().expect("id")
        ),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let list = list.as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 4, "{list:#?}");
    assert!(
        list.iter()
            .all(|d| d["status"] == "COMPLETED" && d["response_code"] == 200)
    );
    assert_eq!(
        list.iter().filter(|d| d["attempts"] == 2).count(),
        2,
        "{list:#?}"
    );
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_is_a_dead_letter_until_retried() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let mut s = settings(&db, 4);
    s.events.max_attempts = 2;
    let app = spawn_with(&s, true).await;
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let (url, seen) = receiver(2).await;
    let (_, endpoint) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/webhooks",
        Some(json!({ "url": url, "event_types": ["*"] })),
    )
    .await;
    let path = format!(
        "/api/v1/webhooks/{}/deliveries",
        endpoint["id"].as_str().expect("id")
    );
    send(
        &app,
        &token,
        Method::POST,
        "/api/v1/clients",
        Some(json!({ "name": "A" })),
    )
    .await;
    let failed = latest_delivery(&app, &token, &path, "FAILED").await;
    assert_eq!(failed["attempts"], 2);
    assert_eq!(failed["response_code"], 500);
    assert_eq!(seen.lock().expect("log").len(), 2);
    let (s, _) = send(
        &app,
        &token,
        Method::POST,
        &format!("/api/v1/webhooks/deliveries/{}/retry", failed["id"]),
        None,
    )
    .await;
    assert_eq!(s, 202);
    until(&seen, 20, |s| s.len() == 3).await;
    latest_delivery(&app, &token, &path, "COMPLETED").await;
    // A completed delivery is not discarded; a failed one is.
    let (s, _) = send(
        &app,
        &token,
        Method::DELETE,
        &format!("/api/v1/webhooks/deliveries/{}", failed["id"]),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (_, down) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/webhooks",
        Some(json!({ "url": "http://127.0.0.1:9/closed", "event_types": ["client.created"] })),
    )
    .await;
    let down = format!(
        "/api/v1/webhooks/{}/deliveries",
        down["id"].as_str().expect("id")
    );
    let (s, _) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/clients",
        Some(json!({ "name": "B" })),
    )
    .await;
    assert_eq!(s, 201);
    let dead = latest_delivery(&app, &token, &down, "FAILED").await;
    let (s, _) = send(
        &app,
        &token,
        Method::DELETE,
        &format!("/api/v1/webhooks/deliveries/{}", dead["id"]),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, list) = send(&app, &token, Method::GET, &down, None).await;
    assert_eq!(list, json!([]));
}

/// Waits until the latest delivery at `path` has `status`; that delivery.
async fn latest_delivery(app: &TestApp, token: &str, path: &str, status: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, list) = send(app, token, Method::GET, path, None).await;
        if list[0]["status"] == status {
            return list[0].clone();
        }
        assert!(std::time::Instant::now() < deadline, "{list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn targets_inside_the_network_are_refused() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/hook",
        "http://[::1]:8080/hook",
        "http://192.168.1.1/",
        "ftp://example.test/",
        "not a url",
    ] {
        let (s, body) = send(
            &app,
            &token,
            Method::POST,
            "/api/v1/webhooks",
            Some(json!({ "url": url, "event_types": ["*"] })),
        )
        .await;
        assert_eq!(s, 422, "{url}: {body}");
    }
    let (s, body) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/webhooks",
        Some(json!({ "url": "http://127.0.0.1:9/hook", "event_types": ["client.exploded"] })),
    )
    .await;
    assert_eq!(s, 422, "{body}");
}

#[tokio::test]
async fn paused_deliveries_accumulate_and_all_go_out_on_resume() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    tenant_with_admin(&db, "globex", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let ops = operator_token(&db, &app).await;
    let (url, seen) = receiver(0).await;
    let (s, _) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/webhooks",
        Some(json!({ "url": url, "event_types": ["client.created"] })),
    )
    .await;
    assert_eq!(s, 201);
    let platform = |path: &str| {
        app.client
            .post(format!("{}/api/v1/platform/events/{path}", app.address))
            .header(reqwest::header::HOST, "localhost")
            .bearer_auth(&ops)
            .send()
    };
    // Paused by the tenant, then by the platform too.
    let (s, state) = send(&app, &token, Method::POST, "/api/v1/events/pause", None).await;
    assert_eq!(s, 200, "{state}");
    assert_eq!(state["paused"], true);
    for i in 0..50 {
        let (s, _) = send(
            &app,
            &token,
            Method::POST,
            "/api/v1/clients",
            Some(json!({ "name": format!("c{i}") })),
        )
        .await;
        assert_eq!(s, 201);
    }
    let res = platform("pause").await.expect("pause");
    assert_eq!(res.status(), 200);
    for i in 50..100 {
        let (s, _) = send(
            &app,
            &token,
            Method::POST,
            "/api/v1/clients",
            Some(json!({ "name": format!("c{i}") })),
        )
        .await;
        assert_eq!(s, 201);
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(seen.lock().expect("log").is_empty());
    let (_, queue) = send(&app, &token, Method::GET, "/api/v1/events/queue", None).await;
    assert_eq!(queue["pending"], 100, "{queue}");
    // Operators see each tenant with endpoints and the total; a tenant
    // without endpoints is not read.
    let platform_queue = async || -> Value {
        app.client
            .get(format!("{}/api/v1/platform/events", app.address))
            .header(reqwest::header::HOST, "localhost")
            .bearer_auth(&ops)
            .send()
            .await
            .expect("queue")
            .json()
            .await
            .expect("json")
    };
    let all = platform_queue().await;
    assert_eq!(
        (all["paused"].clone(), all["pending"].clone()),
        (json!(true), json!(100)),
        "{all}"
    );
    assert_eq!(all["tenants"].as_array().map(Vec::len), Some(1), "{all}");
    assert_eq!(all["tenants"][0]["tenant"], "acme", "{all}");
    assert_eq!(all["tenants"][0]["pending"], 100, "{all}");
    assert_eq!(all["tenants"][0]["paused"], true, "{all}");
    assert!(
        all["oldest_pending_secs"].as_f64().is_some_and(|a| a > 0.0),
        "{all}"
    );
    // The tenant resumes; the platform is still paused.
    let (s, _) = send(&app, &token, Method::POST, "/api/v1/events/resume", None).await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(seen.lock().expect("log").is_empty());
    let res = platform("resume").await.expect("resume");
    assert_eq!(res.status(), 200);
    until(&seen, 30, |s| s.len() >= 100).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = seen.lock().expect("log").clone();
    let mut ids: Vec<&str> = seen.iter().map(|r| r.0.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((seen.len(), ids.len()), (100, 100), "each event once");
    let (_, queue) = send(&app, &token, Method::GET, "/api/v1/events/queue", None).await;
    assert_eq!(queue["pending"], 0, "{queue}");
    let all = platform_queue().await;
    assert_eq!(
        (all["pending"].clone(), all["failed"].clone()),
        (json!(0), json!(0)),
        "{all}"
    );
    // Without endpoints, the tenant is no longer read.
    let (_, endpoints) = send(&app, &token, Method::GET, "/api/v1/webhooks", None).await;
    let id = endpoints[0]["id"].as_str().expect("id");
    let (s, _) = send(
        &app,
        &token,
        Method::DELETE,
        &format!("/api/v1/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let all = platform_queue().await;
    assert_eq!(all["tenants"], json!([]), "{all}");
}

#[tokio::test]
async fn nothing_is_lost_when_the_server_is_killed_mid_delivery() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    // A receiver that takes its time, so deliveries are in flight.
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let slow = HttpServer::new(move || {
        let log = Arc::clone(&log);
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let log = Arc::clone(&log);
            async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let id = req
                    .headers()
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                log.lock().expect("log").push((
                    id,
                    String::new(),
                    String::new(),
                    String::from_utf8_lossy(&body).into_owned(),
                ));
                HttpResponse::Ok().finish()
            }
        }))
    })
    .workers(2)
    .bind(("127.0.0.1", 0))
    .expect("bind");
    let url = format!("http://127.0.0.1:{}/hooks", slow.addrs()[0].port());
    tokio::spawn(slow.run());
    let settings = [
        ("STRATA__EVENTS__ALLOW_TARGETS", "127.0.0.1"),
        ("STRATA__EVENTS__DELIVERY_TIMEOUT_MS", "1000"),
        ("STRATA__EVENTS__POLL_INTERVAL_MS", "50"),
    ];
    let bin = env!("CARGO_BIN_EXE_strata-server");
    let first = crate::bench_common::Server::start_with(bin, &db, 4, &settings).await;
    let client = reqwest::Client::new();
    let call = |address: &str, method: Method, path: &str, token: &str, body: Value| {
        client
            .request(method, format!("{address}{path}"))
            .header(reqwest::header::HOST, "acme.localhost")
            .bearer_auth(token.to_owned())
            .json(&body)
            .send()
    };
    let res = client
        .post(format!("{}/api/v1/auth/token", first.address))
        .header(reqwest::header::HOST, "acme.localhost")
        .json(&json!({ "email": "admin@acme.test", "password": PASSWORD }))
        .send()
        .await
        .expect("sign in");
    let token = res.json::<Value>().await.expect("json")["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let res = call(
        &first.address,
        Method::POST,
        "/api/v1/webhooks",
        &token,
        json!({ "url": url, "event_types": ["client.created"] }),
    )
    .await
    .expect("endpoint");
    assert_eq!(res.status(), 201);
    for i in 0..300 {
        let res = call(
            &first.address,
            Method::POST,
            "/api/v1/clients",
            &token,
            json!({ "name": format!("c{i}") }),
        )
        .await
        .expect("create");
        assert_eq!(res.status(), 201);
    }
    // Some delivered, the rest claimed or waiting: kill -9.
    until(&seen, 30, |s| s.len() >= 5).await;
    drop(first);
    let delivered_before = seen.lock().expect("log").len();
    assert!(delivered_before < 300, "all went out before the kill");
    // Another server takes over, including what the dead one held.
    let _second = crate::bench_common::Server::start_with(bin, &db, 4, &settings).await;
    until(&seen, 60, |s| {
        let mut ids: Vec<&str> = s.iter().map(|r| r.0.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len() == 300
    })
    .await;
    // Any repeat is a whole delivery sent again under its own webhook-id.
    let seen = seen.lock().expect("log").clone();
    for (id, _, _, body) in &seen {
        let same: Vec<_> = seen.iter().filter(|r| &r.0 == id).collect();
        assert!(
            same.iter().all(|r| &r.3 == body),
            "{id} changed between attempts"
        );
    }
}

/// Administrators track a field's updates as an event type of its own,
/// disable types (no events then) and remove field types; a model's own
/// types, private fields and other roles are refused.
#[tokio::test]
async fn administrators_choose_the_tracked_types_and_fields() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let (s, made) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/events/types",
        Some(json!({ "model": "clients", "field": "city" })),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    assert_eq!(made["name"], "client.city.updated");
    for (body, status) in [
        (json!({ "model": "clients", "field": "city" }), 409),
        (json!({ "model": "users", "field": "password_hash" }), 422),
        (json!({ "model": "clients", "field": "id" }), 422),
        (json!({ "model": "planets", "field": "name" }), 422),
        (json!({ "model": "clients", "field": "ci\u{0}ty" }), 422),
    ] {
        let (s, answer) = send(
            &app,
            &token,
            Method::POST,
            "/api/v1/events/types",
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, status, "{body}: {answer}");
    }
    let (url, seen) = receiver(0).await;
    let (s, endpoint) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/webhooks",
        Some(json!({ "url": url, "event_types": ["client.city.updated", "client.created"] })),
    )
    .await;
    assert_eq!(s, 201, "{endpoint}");
    let (s, client) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/clients",
        Some(json!({ "name": "A" })),
    )
    .await;
    assert_eq!(s, 201);
    let path = format!("/api/v1/clients/{}", client["id"].as_str().expect("id"));
    let (s, _) = send(
        &app,
        &token,
        Method::PATCH,
        &path,
        Some(json!({ "city": "Porto", "version": 1 })),
    )
    .await;
    assert_eq!(s, 200);
    until(&seen, 10, |s| s.len() == 2).await;
    let types = |s: &[(String, String, String, String)]| -> Vec<String> {
        s.iter()
            .map(|(_, _, _, body)| {
                serde_json::from_str::<Value>(body).expect("json")["type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(
        types(&seen.lock().expect("log")),
        ["client.created", "client.city.updated"]
    );

    // Disabled: no event of it.
    let (s, changed) = send(
        &app,
        &token,
        Method::PATCH,
        "/api/v1/events/types/client.city.updated",
        Some(json!({ "enabled": false })),
    )
    .await;
    assert_eq!(s, 200, "{changed}");
    assert_eq!(changed["enabled"], false);
    let (s, _) = send(
        &app,
        &token,
        Method::PATCH,
        &path,
        Some(json!({ "city": "Faro", "version": 2 })),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/clients",
        Some(json!({ "name": "B" })),
    )
    .await;
    assert_eq!(s, 201);
    until(&seen, 10, |s| s.len() == 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        types(&seen.lock().expect("log")),
        ["client.created", "client.city.updated", "client.created"]
    );

    // Removing: field types only.
    for (name, status) in [
        ("client.created", 409),
        ("client.city.updated", 204),
        ("client.city.updated", 404),
        ("client.%00", 422),
    ] {
        let (s, answer) = send(
            &app,
            &token,
            Method::DELETE,
            &format!("/api/v1/events/types/{name}"),
            None,
        )
        .await;
        assert_eq!(s, status, "{name}: {answer}");
    }
    let (s, all) = send(&app, &token, Method::GET, "/api/v1/events/types", None).await;
    assert_eq!(s, 200);
    assert!(
        all.as_array()
            .is_some_and(|a| a.iter().any(|t| t["name"] == "task.status.updated")
                && !a.iter().any(|t| t["name"] == "client.city.updated"))
    );

    // Other roles: refused.
    let (s, _) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/users",
        Some(json!({ "email": "sal@acme.test", "full_name": "Sal", "password": PASSWORD, "roles": ["Sales"] })),
    )
    .await;
    assert_eq!(s, 201);
    let (sal, _) = app.tokens("acme", "sal@acme.test", PASSWORD).await;
    let (s, _) = send(
        &app,
        &sal,
        Method::POST,
        "/api/v1/events/types",
        Some(json!({ "model": "clients", "field": "city" })),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = send(
        &app,
        &sal,
        Method::PATCH,
        "/api/v1/events/types/client.created",
        Some(json!({ "enabled": false })),
    )
    .await;
    assert_eq!(s, 403);
}

/// One record's events reach an endpoint in order: while the first is
/// being retried, the later ones wait for it.
#[tokio::test]
async fn a_records_events_arrive_in_order_even_across_retries() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let (url, seen) = receiver(1).await;
    let (s, _) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/webhooks",
        Some(json!({ "url": url, "event_types": ["client.created", "client.updated"] })),
    )
    .await;
    assert_eq!(s, 201);
    let (s, client) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/clients",
        Some(json!({ "name": "A" })),
    )
    .await;
    assert_eq!(s, 201);
    // The creation's first delivery fails (the receiver answers 500).
    until(&seen, 10, |s| !s.is_empty()).await;
    let path = format!("/api/v1/clients/{}", client["id"].as_str().expect("id"));
    for (version, city) in [(1, "Porto"), (2, "Faro")] {
        let (s, _) = send(
            &app,
            &token,
            Method::PATCH,
            &path,
            Some(json!({ "city": city, "version": version })),
        )
        .await;
        assert_eq!(s, 200);
    }
    // Another record is not held up by this one.
    let (s, _) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/clients",
        Some(json!({ "name": "B" })),
    )
    .await;
    assert_eq!(s, 201);
    until(&seen, 15, |s| s.len() == 5).await;
    let log: Vec<(String, i64, String)> = seen
        .lock()
        .expect("log")
        .iter()
        .map(|(id, _, _, body)| {
            let v: Value = serde_json::from_str(body).expect("json");
            (
                id.clone(),
                v["version"].as_i64().unwrap_or(0),
                v["record_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let a = client["id"].as_str().expect("id");
    let versions: Vec<i64> = log
        .iter()
        .filter(|(_, _, r)| r == a)
        .map(|(_, v, _)| *v)
        .collect();
    assert_eq!(versions, [1, 1, 2, 3], "{log:?}");
    // B went out while A's creation waited for its retry.
    let b = log.iter().position(|(_, _, r)| r != a).expect("B");
    assert!(b < 2, "{log:?}");
}

#[tokio::test]
async fn a_test_event_reaches_one_endpoint_signed() {
    let db = TestDb::new(2).await;
    crate::helpers::tenant_with_admin(&db, "acme", "correct horse battery").await;
    let app = crate::helpers::spawn_app(&db, 4).await;
    let (token, _) = app
        .tokens("acme", "admin@acme.test", "correct horse battery")
        .await;
    let (url, seen) = receiver(0).await;
    let (s, endpoint) = crate::helpers::send(
        &app,
        &token,
        reqwest::Method::POST,
        "/api/v1/webhooks",
        Some(serde_json::json!({ "url": url, "event_types": ["client.created"] })),
    )
    .await;
    assert_eq!(s, 201, "{endpoint}");
    let id = endpoint["id"].as_str().expect("id");
    let (s, body) = crate::helpers::send(
        &app,
        &token,
        reqwest::Method::POST,
        &format!("/api/v1/webhooks/{id}/test"),
        None,
    )
    .await;
    assert_eq!(s, 202, "{body}");
    until(&seen, 10, |s| !s.is_empty()).await;
    let got = seen.lock().expect("log")[0].clone();
    assert!(got.3.contains("\"webhook.test\""), "{got:?}");
    assert!(got.2.starts_with("v1,"), "signed: {got:?}");
    let (s, _) = crate::helpers::send(
        &app,
        &token,
        reqwest::Method::POST,
        &format!("/api/v1/webhooks/{}/test", uuid::Uuid::nil()),
        None,
    )
    .await;
    assert_eq!(s, 404);
}
