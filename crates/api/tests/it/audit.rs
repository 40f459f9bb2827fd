//! The change journal and the audit trail: every change once, with its
//! author and channel, whoever makes it (REST, sync pushes, SQL), nothing
//! for a rolled-back write, no private fields, and who may read it.

use reqwest::Method;
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{Value, json};
use tenancy::TenantTx;
use tenancy::testing::TestDb;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app, tenant_with_admin};

const PASSWORD: &str = "correct horse battery";

struct Caller<'a> {
    app: &'a TestApp,
    token: String,
}

impl Caller<'_> {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value, String) {
        let mut req = self.app.on("acme", method, path).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let id = res
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, res.json().await.unwrap_or(Value::Null), id)
    }

    /// The record's history, oldest first.
    async fn history(&self, resource: &str, id: &str) -> Vec<Value> {
        let (s, body, _) = self
            .send(
                Method::GET,
                &format!("/api/v1/{resource}/{id}/history"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{body}");
        let mut items = body["items"].as_array().cloned().unwrap_or_default();
        items.reverse();
        items
    }
}

async fn admin(app: &TestApp) -> Caller<'_> {
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    Caller { app, token }
}

#[tokio::test]
async fn every_change_is_journaled_once_with_its_author_and_channel() {
    let db = TestDb::new(2).await;
    let tenant = tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app).await;
    let (_, me, _) = a.send(Method::GET, "/api/v1/auth/me", None).await;
    let me = me["id"].as_str().expect("my id").to_owned();

    // REST: create, update, delete.
    let (s, client, created_in) = a
        .send(
            Method::POST,
            "/api/v1/clients",
            Some(json!({ "name": "Initech" })),
        )
        .await;
    assert_eq!(s, 201, "{client}");
    let id = client["id"].as_str().expect("id").to_owned();
    let (s, _, updated_in) = a
        .send(
            Method::PATCH,
            &format!("/api/v1/clients/{id}"),
            Some(json!({ "city": "Oslo", "version": 1 })),
        )
        .await;
    assert_eq!(s, 200);
    // Sync: a native push and a WatermelonDB push.
    let (s, body, _) = a
        .send(
            Method::POST,
            "/api/v1/sync/push",
            Some(json!({ "client_id": "phone", "mutations": [
                { "mutation_id": 1, "op": "update", "model": "clients", "id": id,
                  "base_version": 2, "fields": { "phone": "+47 1234" } }] })),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let changes = json!({ "clients": { "created": [], "deleted": [],
        "updated": [{ "id": id, "name": "Initech AS", "version": 3 }] } });
    let (s, body, _) = a
        .send(
            Method::POST,
            "/api/v1/sync/watermelon/push",
            Some(json!({ "changes": changes, "last_pulled_at": null })),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    // Plain SQL, as an operator would run it in psql.
    let conn = db.db.begin().await.expect("begin");
    conn.execute_unprepared(&format!(
        "SET LOCAL search_path TO {}; UPDATE clients SET industry = 'energy' WHERE id = '{id}'",
        tenant.schema().quoted()
    ))
    .await
    .expect("sql");
    conn.commit().await.expect("commit");
    // A rolled-back write leaves nothing.
    let tx = TenantTx::begin(&db.db, &tenant).await.expect("begin");
    tx.conn()
        .execute_unprepared(&format!(
            "UPDATE clients SET city = 'Never' WHERE id = '{id}'"
        ))
        .await
        .expect("update");
    tx.rollback().await.expect("rollback");
    let (s, _, deleted_in) = a
        .send(Method::DELETE, &format!("/api/v1/clients/{id}"), None)
        .await;
    assert_eq!(s, 204);

    let h = a.history("clients", &id).await;
    let summary: Vec<(&str, &str, &str, Option<&str>)> = h
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default(),
                e["actor"].as_str().unwrap_or_default(),
                e["channel"].as_str().unwrap_or_default(),
                e["user_id"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("create", "user", "rest", Some(me.as_str())),
            ("update", "user", "rest", Some(me.as_str())),
            ("update", "user", "sync", Some(me.as_str())),
            ("update", "user", "sync", Some(me.as_str())),
            ("update", "sql", "sql", None),
            ("delete", "user", "rest", Some(me.as_str())),
        ],
        "{h:#?}"
    );
    assert_eq!(h[0]["request_id"], created_in.as_str());
    assert_eq!(h[1]["request_id"], updated_in.as_str());
    assert_eq!(h[5]["request_id"], deleted_in.as_str());
    assert_eq!(h[0]["changes"]["name"], json!([null, "Initech"]));
    assert_eq!(h[1]["changes"], json!({ "city": [null, "Oslo"] }));
    assert_eq!(h[2]["changes"], json!({ "phone": [null, "+47 1234"] }));
    assert_eq!(
        h[3]["changes"],
        json!({ "name": ["Initech", "Initech AS"] })
    );
    assert_eq!(h[4]["changes"], json!({ "industry": [null, "energy"] }));
    assert_eq!(h[5]["changes"]["city"], json!(["Oslo", null]));
    let versions: Vec<i64> = h.iter().filter_map(|e| e["version"].as_i64()).collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
    assert!(!h.iter().any(|e| e.to_string().contains("Never")));
}

/// Each journaled table's trigger function names every column of its
/// table but the private and bookkeeping ones, and none of those: a column
/// added without reinstalling the function would go unjournaled.
#[tokio::test]
async fn every_column_of_every_journaled_table_is_journaled() {
    let db = TestDb::new(2).await;
    let tenant = tenant_with_admin(&db, "acme", PASSWORD).await;
    let tx = TenantTx::begin(&db.db, &tenant).await.expect("begin");
    let never = ["id", "version", "created_at", "updated_at"];
    let private = ["password_hash", "credentials_epoch", "last_login_at"];
    for table in ["branches", "users", "clients", "contacts", "tasks", "notes"] {
        let source: String = tx
            .conn()
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!("SELECT prosrc FROM pg_proc WHERE oid = 'journal_{table}()'::regprocedure"),
            ))
            .await
            .expect("function")
            .expect("row")
            .try_get_by_index(0)
            .expect("source");
        let columns: Vec<String> = tx
            .conn()
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!(
                    "SELECT attname::text FROM pg_attribute WHERE attrelid = '{table}'::regclass \
                     AND attnum > 0 AND NOT attisdropped"
                ),
            ))
            .await
            .expect("columns")
            .iter()
            .map(|r| r.try_get_by_index(0).expect("name"))
            .collect();
        for c in &columns {
            let named = source.contains(&format!("'{c}'"));
            if never.contains(&c.as_str()) || private.contains(&c.as_str()) {
                assert!(!named, "{table}.{c} is journaled");
            } else {
                assert!(named, "{table}.{c} is not journaled");
            }
        }
    }
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn private_fields_never_enter_the_journal() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app).await;
    let (s, user, _) = a
        .send(
            Method::POST,
            "/api/v1/users",
            Some(json!({ "email": "eve@acme.test", "full_name": "Eve", "password": PASSWORD, "roles": ["Users"] })),
        )
        .await;
    assert_eq!(s, 201, "{user}");
    let id = user["id"].as_str().expect("id").to_owned();
    let (s, body, _) = a
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(json!({ "password": "another long password", "version": user["version"] })),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    // Signing in records the login time, which is bookkeeping.
    app.tokens("acme", "eve@acme.test", "another long password")
        .await;
    let h = a.history("users", &id).await;
    assert_eq!(h.len(), 1, "{h:#?}");
    assert_eq!(h[0]["changes"]["email"], json!([null, "eve@acme.test"]));
    let all = h[0].to_string();
    for private in ["password", "argon2", "credentials_epoch", "last_login_at"] {
        assert!(!all.contains(private), "{private} in {all}");
    }
}

#[tokio::test]
async fn administrators_and_auditors_read_the_trail_others_do_not_and_auditors_write_nothing() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app).await;
    for (email, role) in [
        ("audrey@acme.test", "Auditors"),
        ("max@acme.test", "Managers"),
    ] {
        let (s, body, _) = a
            .send(
                Method::POST,
                "/api/v1/users",
                Some(json!({ "email": email, "full_name": role, "password": PASSWORD, "roles": [role] })),
            )
            .await;
        assert_eq!(s, 201, "{body}");
    }
    let auditor = Caller {
        app: &app,
        token: app.tokens("acme", "audrey@acme.test", PASSWORD).await.0,
    };
    let manager = Caller {
        app: &app,
        token: app.tokens("acme", "max@acme.test", PASSWORD).await.0,
    };
    let (s, body, _) = auditor
        .send(Method::GET, "/api/v1/audit?model=users", None)
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body["items"].as_array().is_some_and(|i| i.len() >= 3),
        "{body}"
    );
    let (s, _, _) = manager.send(Method::GET, "/api/v1/audit", None).await;
    assert_eq!(s, 403);
    // Auditors read records but write none, over REST or sync.
    let (s, _, _) = auditor.send(Method::GET, "/api/v1/clients", None).await;
    assert_eq!(s, 200);
    let (s, _, _) = auditor
        .send(
            Method::POST,
            "/api/v1/clients",
            Some(json!({ "name": "Nope" })),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _, _) = auditor
        .send(
            Method::POST,
            "/api/v1/sync/push",
            Some(
                json!({ "client_id": "a", "mutations": [{ "mutation_id": 1, "op": "create",
                "model": "clients", "id": Uuid::now_v7(), "fields": { "name": "Nope" } }] }),
            ),
        )
        .await;
    assert_eq!(s, 403);
    // Filters and pages.
    let (s, body, _) = a
        .send(Method::GET, "/api/v1/audit?model=users&limit=1", None)
        .await;
    assert_eq!(s, 200);
    let first = body["items"][0]["id"].as_i64().expect("id");
    let cursor = body["next_cursor"].as_i64().expect("cursor");
    let (_, next, _) = a
        .send(
            Method::GET,
            &format!("/api/v1/audit?model=users&limit=1&cursor={cursor}"),
            None,
        )
        .await;
    assert!(
        next["items"][0]["id"].as_i64().expect("id") < first,
        "{next}"
    );
    for bad in [
        "model=spaceships",
        "channel=fax",
        "limit=0",
        "limit=5000",
        "from=yesterday",
    ] {
        let (s, body, _) = a
            .send(Method::GET, &format!("/api/v1/audit?{bad}"), None)
            .await;
        assert!(s == 400 || s == 422, "{bad}: {s} {body}");
    }
}

#[tokio::test]
async fn the_trail_exports_as_csv() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app).await;
    for i in 0..3 {
        let (s, _, _) = a
            .send(
                Method::POST,
                "/api/v1/clients",
                Some(json!({ "name": format!("C, \"{i}\"") })),
            )
            .await;
        assert_eq!(s, 201);
    }
    let res = app
        .on("acme", Method::GET, "/api/v1/audit?model=clients")
        .bearer_auth(&a.token)
        .header("accept", "text/csv")
        .send()
        .await
        .expect("csv");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("text/csv"))
    );
    let text = res.text().await.expect("text");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("id,at,txid,model,record_id,action"),
        "{text}"
    );
    assert!(
        lines[1].contains(",clients,") && lines[1].contains(",create,"),
        "{text}"
    );
    assert!(lines[1].contains(r#"""C, \""2\"""""#), "{text}");
}

#[tokio::test]
async fn entries_past_the_tenants_retention_are_purged_by_the_maintenance_loop() {
    let db = TestDb::new(2).await;
    let tenant = tenant_with_admin(&db, "acme", PASSWORD).await;
    let mut settings = crate::helpers::settings(&db, 4);
    settings.sync.purge_interval_secs = 1;
    let app = crate::helpers::spawn_with(&settings, false).await;
    let a = admin(&app).await;
    let (s, body, _) = a.send(Method::GET, "/api/v1/audit/settings", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        body,
        json!({ "retention_days": null, "default_retention_days": 365 })
    );
    for bad in [
        json!({ "retention_days": 0 }),
        json!({ "retention_days": 40000 }),
    ] {
        let (s, _, _) = a
            .send(Method::PUT, "/api/v1/audit/settings", Some(bad))
            .await;
        assert_eq!(s, 422);
    }
    let (s, body, _) = a
        .send(
            Method::PUT,
            "/api/v1/audit/settings",
            Some(json!({ "retention_days": 7 })),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["retention_days"], 7);
    // An entry from ten days ago, and one from now.
    let tx = TenantTx::begin(&db.db, &tenant).await.expect("begin");
    tx.conn()
        .execute_unprepared(
            "INSERT INTO journal (at, model, record_id, action, version, changes, actor, channel) \
             VALUES (now() - interval '10 days', 'clients', gen_random_uuid(), 'create', 1, '{}', 'sql', 'sql'); \
             INSERT INTO events (type, journal_id, at, payload) \
             VALUES ('client.created', 1, now() - interval '10 days', '{}')",
        )
        .await
        .expect("old entry and event");
    tx.commit().await.expect("commit");
    let (s, _, _) = a
        .send(
            Method::POST,
            "/api/v1/clients",
            Some(json!({ "name": "Fresh" })),
        )
        .await;
    assert_eq!(s, 201);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, body, _) = a
            .send(Method::GET, "/api/v1/audit?model=clients", None)
            .await;
        let items = body["items"].as_array().cloned().unwrap_or_default();
        if items.len() == 1 {
            assert_eq!(items[0]["changes"]["name"], json!([null, "Fresh"]));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let tx = TenantTx::begin(&db.db, &tenant).await.expect("begin");
    let events = tx
        .conn()
        .query_one_raw(tenancy::stmt("SELECT count(*) FROM events", []))
        .await
        .expect("count")
        .map(|r| r.try_get_by_index::<i64>(0).expect("n"));
    tx.commit().await.expect("commit");
    assert_eq!(events, Some(0), "the old event went with its entry");
    // Nobody edits history.
    let tx = TenantTx::begin(&db.db, &tenant).await.expect("begin");
    let edit = tx
        .conn()
        .execute_unprepared("UPDATE journal SET actor = 'system'")
        .await;
    assert!(edit.is_err_and(|e| e.to_string().contains("append-only")));
}

#[tokio::test]
async fn a_long_trail_streams_as_csv_in_pieces() {
    let db = TestDb::new(2).await;
    let tenant = tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app).await;
    let tx = TenantTx::begin(&db.db, &tenant).await.expect("begin");
    tx.conn()
        .execute_unprepared(
            "INSERT INTO journal (model, record_id, action, version, changes, actor, channel) \
             SELECT 'clients', gen_random_uuid(), 'update', g, \
                    jsonb_build_object('city', jsonb_build_array('old' || g, 'new' || g)), 'sql', 'sql' \
             FROM generate_series(1, 100000) g",
        )
        .await
        .expect("entries");
    tx.commit().await.expect("commit");
    let mut res = app
        .on("acme", Method::GET, "/api/v1/audit?channel=sql")
        .bearer_auth(&a.token)
        .header("accept", "text/csv")
        .send()
        .await
        .expect("csv");
    assert_eq!(res.status(), 200);
    // Streamed: no length known up front, and it arrives in pieces.
    assert!(res.content_length().is_none());
    let (mut lines, mut pieces, mut largest) = (0usize, 0usize, 0usize);
    while let Some(piece) = res.chunk().await.expect("piece") {
        pieces += 1;
        largest = largest.max(piece.len());
        lines += piece.iter().filter(|b| **b == b'\n').count();
    }
    assert_eq!(lines, 100_001, "the header and every entry");
    assert!(pieces >= 100, "{pieces} pieces");
    // No piece holds more than a page of entries (1,000 lines of ~200 bytes).
    assert!(largest < 1_000_000, "a piece of {largest} bytes");
}
