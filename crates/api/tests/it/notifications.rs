//! Notifications: the new manager of a client or assignee of a task is
//! told, whichever path made the change, except of their own changes.

use reqwest::Method;
use serde_json::{Value, json};
use tenancy::testing::TestDb;
use uuid::Uuid;

use crate::helpers::{send, spawn_app, tenant_with_admin};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn new_assignees_are_notified_and_mark_them_read() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let (admin, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let (s, sam) = send(
        &app,
        &admin,
        Method::POST,
        "/api/v1/users",
        Some(json!({ "email": "sam@acme.test", "full_name": "Sam", "password": PASSWORD, "roles": ["Users"] })),
    )
    .await;
    assert_eq!(s, 201, "{sam}");
    let sam_id = sam["id"].as_str().expect("id").to_owned();
    let (sam_token, _) = app.tokens("acme", "sam@acme.test", PASSWORD).await;
    // Over REST: a client managed by Sam.
    let (s, client) = send(
        &app,
        &admin,
        Method::POST,
        "/api/v1/clients",
        Some(json!({ "name": "Initech", "assigned_manager_id": sam_id })),
    )
    .await;
    assert_eq!(s, 201, "{client}");
    // Over sync: a task assigned to Sam.
    let task = Uuid::now_v7();
    let (s, body) = send(
        &app,
        &admin,
        Method::POST,
        "/api/v1/sync/push",
        Some(json!({ "client_id": "tablet", "mutations": [{ "mutation_id": 1, "op": "create",
            "model": "tasks", "id": task, "fields": { "title": "Call", "assignee_id": sam_id } }] })),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    // Sam assigning a task to himself is no news to him.
    let (s, _) = send(
        &app,
        &sam_token,
        Method::POST,
        "/api/v1/tasks",
        Some(json!({ "title": "Mine", "assignee_id": sam_id })),
    )
    .await;
    assert_eq!(s, 201);

    let (s, page) = send(&app, &sam_token, Method::GET, "/api/v1/notifications", None).await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["unread"], 2, "{page}");
    let kinds: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert_eq!(kinds, ["task.assigned", "client.assigned"]);
    assert_eq!(page["items"][1]["record_id"], client["id"]);
    // The administrator has none, and cannot read Sam's.
    let (_, mine) = send(&app, &admin, Method::GET, "/api/v1/notifications", None).await;
    assert_eq!(mine["unread"], 0);
    let first = page["items"][0]["id"].as_i64().expect("id");
    let (s, _) = send(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/notifications/{first}/read"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = send(
        &app,
        &sam_token,
        Method::POST,
        &format!("/api/v1/notifications/{first}/read"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, page) = send(
        &app,
        &sam_token,
        Method::GET,
        "/api/v1/notifications?unread=true",
        None,
    )
    .await;
    assert_eq!(page["unread"], 1);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    let (s, _) = send(
        &app,
        &sam_token,
        Method::POST,
        "/api/v1/notifications/read",
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, page) = send(&app, &sam_token, Method::GET, "/api/v1/notifications", None).await;
    assert_eq!(page["unread"], 0);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
}

/// How long a test waits for what must arrive. Changes reach the stream
/// once every older transaction on the server has ended (any database's,
/// other tests' included), so this is generous; waits for what must not
/// arrive stay short.
const WAIT: f64 = 15.0;

/// Reads SSE chunks from `res` until `want` holds of what arrived, or
/// `secs` pass; what arrived.
async fn read_until(res: &mut reqwest::Response, secs: f64, want: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    while !want(&text) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match tokio::time::timeout(left, res.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    text
}

#[tokio::test]
async fn the_live_stream_on_one_server_carries_a_notification_made_on_another() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let a = spawn_app(&db, 4).await;
    let b = spawn_app(&db, 4).await;
    let (admin, _) = b.tokens("acme", "admin@acme.test", PASSWORD).await;
    let (s, sam) = send(
        &b,
        &admin,
        Method::POST,
        "/api/v1/users",
        Some(json!({ "email": "sam@acme.test", "full_name": "Sam", "password": PASSWORD, "roles": ["Users"] })),
    )
    .await;
    assert_eq!(s, 201);
    let (sam_token, _) = a.tokens("acme", "sam@acme.test", PASSWORD).await;
    let mut res = a
        .on("acme", Method::GET, "/api/v1/events/stream")
        .bearer_auth(&sam_token)
        .send()
        .await
        .expect("stream");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("text/event-stream"))
    );
    read_until(&mut res, WAIT, |t| t.contains("retry:")).await;
    // A write on server B…
    let started = std::time::Instant::now();
    let (s, _) = send(
        &b,
        &admin,
        Method::POST,
        "/api/v1/clients",
        Some(json!({ "name": "Initech", "assigned_manager_id": sam["id"] })),
    )
    .await;
    assert_eq!(s, 201);
    // …reaches the stream on server A within a second.
    let text = read_until(&mut res, WAIT, |t| t.contains("event: notification")).await;
    assert!(text.contains("event: notification"), "got {text:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(text.contains("client.assigned"), "{text}");
    // The position in notifications and in the journal.
    let id: String = text
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .map(|v| v.trim().to_owned())
        .expect("an id");
    assert!(
        id.split_once('-')
            .is_some_and(|(n, j)| n.parse::<i64>().is_ok()
                && j.split_once('.')
                    .is_some_and(|(t, i)| t.parse::<i64>().is_ok() && i.parse::<i64>().is_ok())),
        "{id}"
    );
    drop(res);
    // Two more while disconnected; reconnecting with Last-Event-ID brings them.
    for name in ["Globex", "Umbrella"] {
        let (s, _) = send(
            &b,
            &admin,
            Method::POST,
            "/api/v1/clients",
            Some(json!({ "name": name, "assigned_manager_id": sam["id"] })),
        )
        .await;
        assert_eq!(s, 201);
    }
    let mut res = a
        .on("acme", Method::GET, "/api/v1/events/stream")
        .bearer_auth(&sam_token)
        .header("last-event-id", &id)
        .send()
        .await
        .expect("stream");
    let text = read_until(&mut res, WAIT, |t| {
        t.matches("event: notification").count() == 2
    })
    .await;
    assert_eq!(text.matches("event: notification").count(), 2, "{text}");
    assert!(!text.contains(&format!("id: {id}\n")), "{text}");
    // An id the stream never sent is refused.
    let res = a
        .on("acme", Method::GET, "/api/v1/events/stream")
        .bearer_auth(&sam_token)
        .header("last-event-id", "yesterday")
        .send()
        .await
        .expect("stream");
    assert_eq!(res.status(), 422);
    // Without a token, no stream.
    let res = a
        .on("acme", Method::GET, "/api/v1/events/stream")
        .send()
        .await
        .expect("stream");
    assert_eq!(res.status(), 401);
}

/// The stream carries the tenant's changes as typed events, only those the
/// caller's roles may read: all of them for administrators, the clients
/// they manage for a role filtered to them, nothing of a model their role
/// may not read. A reconnect resumes after the last change seen.
#[tokio::test]
async fn the_live_stream_carries_the_changes_the_callers_roles_may_read() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let (admin, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let mut ids = Vec::new();
    for (name, role) in [("sal", "Sales"), ("rita", "Read Only")] {
        let (s, body) = send(
            &app,
            &admin,
            Method::POST,
            "/api/v1/users",
            Some(
                json!({ "email": format!("{name}@acme.test"), "full_name": name,
                         "password": PASSWORD, "roles": [role] }),
            ),
        )
        .await;
        assert_eq!(s, 201, "{body}");
        ids.push(body["id"].clone());
    }
    // Sales reach the clients they manage; Read Only may not read clients.
    let (s, body) = send(
        &app,
        &admin,
        Method::POST,
        "/api/v1/sync/filters",
        Some(
            json!({ "role": "Sales", "model": "clients", "field": "assigned_manager_id",
                     "operator": "eq", "value": "$user" }),
        ),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = send(
        &app,
        &admin,
        Method::PUT,
        "/api/v1/sync/permissions",
        Some(json!([{ "role": "Read Only", "model": "clients", "can_pull": false, "can_push": false }])),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let open = async |token: &str, last: Option<&str>| {
        let mut req = app
            .on("acme", Method::GET, "/api/v1/events/stream")
            .bearer_auth(token);
        if let Some(l) = last {
            req = req.header("last-event-id", l);
        }
        let mut res = req.send().await.expect("stream");
        assert_eq!(res.status(), 200);
        read_until(&mut res, WAIT, |t| t.contains("retry:")).await;
        res
    };
    let (sal, _) = app.tokens("acme", "sal@acme.test", PASSWORD).await;
    let (rita, _) = app.tokens("acme", "rita@acme.test", PASSWORD).await;
    let mut all = open(&admin, None).await;
    let mut mine = open(&sal, None).await;
    let mut none = open(&rita, None).await;

    for (name, manager) in [("Theirs", Value::Null), ("Mine", ids[0].clone())] {
        let (s, _) = send(
            &app,
            &admin,
            Method::POST,
            "/api/v1/clients",
            Some(json!({ "name": name, "assigned_manager_id": manager })),
        )
        .await;
        assert_eq!(s, 201);
    }
    let changes = |t: &str| -> Vec<Value> {
        t.split("\n\n")
            .filter(|m| m.contains("event: change"))
            .filter_map(|m| m.lines().find_map(|l| l.strip_prefix("data: ")))
            .map(|d| serde_json::from_str(d).expect("json"))
            .collect()
    };
    let text = read_until(&mut all, WAIT, |t| changes(t).len() >= 2).await;
    let seen = changes(&text);
    assert_eq!(seen.len(), 2, "{text}");
    assert!(seen.iter().all(|c| {
        c["model"] == "clients"
            && c["action"] == "create"
            && c["channel"] == "rest"
            && c["types"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("client.created")))
    }));
    let text = read_until(&mut mine, WAIT, |t| !changes(t).is_empty()).await;
    let seen = changes(&text);
    assert_eq!(seen.len(), 1, "{text}");
    assert_eq!(seen[0]["changes"]["name"][1], "Mine", "{text}");
    let client = seen[0]["record_id"].as_str().expect("id").to_owned();
    let last = text
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .next_back()
        .expect("an id")
        .to_owned();
    drop(mine);
    let text = read_until(&mut none, 1.5, |t| t.contains("event: change")).await;
    assert!(!text.contains("event: change"), "{text}");

    // Missed while away: a status change of their client, then resumed.
    let (s, body) = send(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/clients/{client}"),
        Some(json!({ "status": "active", "version": 1 })),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let mut mine = open(&sal, Some(&last)).await;
    let text = read_until(&mut mine, WAIT, |t| !changes(t).is_empty()).await;
    let seen = changes(&text);
    assert_eq!(seen.len(), 1, "{text}");
    assert_eq!(seen[0]["action"], "update");
    assert!(
        seen[0]["types"]
            .as_array()
            .is_some_and(|t| t.contains(&json!("client.status.updated"))),
        "{text}"
    );
}

/// A change committed late by a transaction that began writing before
/// others committed is not skipped: the stream reads the journal in
/// transaction order, up to the oldest transaction still running.
#[tokio::test]
async fn a_change_committed_late_still_reaches_the_stream() {
    let db = TestDb::new(2).await;
    let tenant = tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let (admin, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let mut res = app
        .on("acme", Method::GET, "/api/v1/events/stream")
        .bearer_auth(&admin)
        .send()
        .await
        .expect("stream");
    read_until(&mut res, WAIT, |t| t.contains("retry:")).await;
    // An operator's SQL takes its journal entry first and commits last.
    let slow = tenancy::TenantTx::begin(&db.db, &tenant)
        .await
        .expect("begin");
    sea_orm::ConnectionTrait::execute_unprepared(
        slow.conn(),
        "INSERT INTO clients (id, name, status, version, created_at, updated_at) \
         VALUES (gen_random_uuid(), 'Slow', 'lead', 1, now(), now())",
    )
    .await
    .expect("insert");
    let (s, _) = send(
        &app,
        &admin,
        Method::POST,
        "/api/v1/clients",
        Some(json!({ "name": "Quick" })),
    )
    .await;
    assert_eq!(s, 201);
    let text = read_until(&mut res, 2.5, |t| t.contains("Quick")).await;
    assert!(
        !text.contains("Quick"),
        "sent before an older transaction ended: {text}"
    );
    slow.commit().await.expect("commit");
    let text = read_until(&mut res, WAIT, |t| {
        t.contains("Quick") && t.contains("Slow")
    })
    .await;
    assert!(text.contains("Slow") && text.contains("Quick"), "{text}");
    assert!(
        text.find("Slow") < text.find("Quick"),
        "in transaction order: {text}"
    );
}
