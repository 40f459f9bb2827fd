//! The sync API: push/pull round trips, exactly-once pushes, conflict
//! strategies, permissions and row filters, out-of-order commits, large
//! initial syncs, and bad input.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use serde_json::{Value, json};
use tenancy::TenantTx;
use tenancy::testing::TestDb;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app, tenant_with_admin, write_and_settle};

const PASSWORD: &str = "correct horse battery";

struct Client<'a> {
    app: &'a TestApp,
    slug: &'a str,
    token: String,
}

impl Client<'_> {
    async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .app
            .on(self.slug, Method::GET, path)
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .app
            .on(self.slug, Method::POST, path)
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn push(&self, client_id: &str, mutations: Value) -> (u16, Value) {
        self.post(
            "/api/v1/sync/push",
            json!({ "client_id": client_id, "mutations": mutations }),
        )
        .await
    }

    async fn pull(&self, cursor: Option<&str>, models: &[&str], limit: usize) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/sync/pull",
                json!({ "cursor": cursor, "models": models, "limit": limit }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Pulls every page from `cursor`, applying changes to `state`
    /// (id -> record); returns the final cursor.
    async fn pull_all(
        &self,
        cursor: Option<String>,
        models: &[&str],
        limit: usize,
        state: &mut HashMap<String, Value>,
    ) -> String {
        let mut cursor = cursor;
        loop {
            let page = self.pull(cursor.as_deref(), models, limit).await;
            let mut seen = std::collections::HashSet::new();
            for (_, changes) in page["changes"].as_object().expect("changes") {
                for r in changes["created"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(changes["updated"].as_array().into_iter().flatten())
                {
                    let id = r["id"].as_str().expect("id").to_owned();
                    assert!(seen.insert(id.clone()), "{id} twice in one page");
                    state.insert(id, r.clone());
                }
                for id in changes["deleted"].as_array().into_iter().flatten() {
                    state.remove(id.as_str().expect("id"));
                }
            }
            cursor = Some(page["cursor"].as_str().expect("cursor").to_owned());
            if page["has_more"] != true {
                return cursor.unwrap_or_default();
            }
        }
    }
}

impl Client<'_> {
    /// Pulls from `cursor` until `done(state)` holds. The pull horizon is
    /// the oldest transaction still open anywhere on the server (other
    /// tests' included), so a change can take a moment to become pullable.
    async fn converge(
        &self,
        mut cursor: Option<String>,
        models: &[&str],
        state: &mut HashMap<String, Value>,
        done: impl Fn(&HashMap<String, Value>) -> bool,
    ) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let next = self.pull_all(cursor, models, 500, state).await;
            if done(state) {
                return next;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sync did not converge"
            );
            cursor = Some(next);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn admin<'a>(app: &'a TestApp, slug: &'a str) -> Client<'a> {
    let (token, _) = app
        .tokens(slug, &format!("admin@{slug}.test"), PASSWORD)
        .await;
    Client { app, slug, token }
}

/// Takes pulling and pushing users from the Read Only role, as `admin`.
async fn revoke_users_for_read_only(admin: &Client<'_>) {
    let res = admin
        .app
        .on(admin.slug, Method::PUT, "/api/v1/sync/permissions")
        .bearer_auth(&admin.token)
        .json(&json!([{ "role": "Read Only", "model": "users", "can_pull": false, "can_push": false }]))
        .send()
        .await
        .expect("put");
    assert_eq!(res.status(), 200);
}

async fn user<'a>(admin: &Client<'a>, name: &str, roles: &[&str]) -> (Client<'a>, String) {
    let email = format!("{name}@{}.test", admin.slug);
    let (status, body) = admin
        .post(
            "/api/v1/users",
            json!({ "email": email, "full_name": name, "password": PASSWORD, "roles": roles }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (token, _) = admin.app.tokens(admin.slug, &email, PASSWORD).await;
    let id = body["id"].as_str().expect("id").to_owned();
    (
        Client {
            app: admin.app,
            slug: admin.slug,
            token,
        },
        id,
    )
}

/// id -> version of every row of `table` in tenant `tenant`.
async fn table_versions(
    db: &TestDb,
    tenant: &tenancy::Tenant,
    table: &str,
) -> HashMap<String, i64> {
    let tx = TenantTx::begin(&db.db, tenant).await.expect("tx");
    let rows = tx
        .conn()
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT id::text, version FROM {table}"),
        ))
        .await
        .expect("rows");
    tx.commit().await.expect("commit");
    rows.iter()
        .map(|r| {
            (
                r.try_get_by_index::<String>(0).expect("id"),
                r.try_get_by_index::<i64>(1).expect("version"),
            )
        })
        .collect()
}

fn versions(state: &HashMap<String, Value>) -> HashMap<String, i64> {
    state
        .iter()
        .map(|(k, v)| (k.clone(), v["version"].as_i64().expect("version")))
        .collect()
}

#[tokio::test]
async fn push_pull_round_trip_and_exactly_once() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app, "acme").await;

    let c1 = Uuid::new_v4();
    let c2 = Uuid::new_v4();
    let batch = json!([
        { "mutation_id": 1, "op": "create", "model": "clients", "id": c1, "fields": { "name": "Initech", "city": "Austin" } },
        { "mutation_id": 2, "op": "create", "model": "crm.Client", "id": c2, "fields": { "name": "Hooli" } },
        { "mutation_id": 3, "op": "create", "model": "contacts", "id": Uuid::new_v4(), "fields": { "client_id": c1, "first_name": "Bill" } },
        { "mutation_id": 4, "op": "update", "model": "clients", "id": c1, "base_version": 1, "fields": { "status": "active" } },
    ]);
    let (status, body) = a.push("device-1", batch.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["summary"]["clients"]["created"], 2);
    assert_eq!(body["summary"]["clients"]["updated"], 1);
    assert_eq!(body["summary"]["contacts"]["created"], 1);
    assert!(body["duration_ms"].as_f64().is_some());

    // The same batch again: nothing applies twice.
    let (status, body) = a.push("device-1", batch).await;
    assert_eq!(status, 200);
    assert_eq!(body["summary"]["clients"]["duplicate"], 3);
    assert_eq!(body["summary"]["clients"]["created"], 0);

    let mut state = HashMap::new();
    let cursor = a
        .converge(None, &["clients", "contacts"], &mut state, |s| s.len() == 3)
        .await;
    assert_eq!(state[&c1.to_string()]["status"], "active");
    assert_eq!(state[&c1.to_string()]["version"], 2);

    // Changes made through REST (or any writer) reach the next pull,
    // deletes included.
    let res = app
        .on("acme", Method::DELETE, &format!("/api/v1/clients/{c2}"))
        .bearer_auth(&a.token)
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 204);
    let key = c2.to_string();
    let next = a
        .converge(Some(cursor), &["clients", "contacts"], &mut state, |s| {
            !s.contains_key(&key)
        })
        .await;
    assert_eq!(state.len(), 2);

    // A pull with nothing new returns nothing.
    let page = a.pull(Some(&next), &["clients"], 100).await;
    assert_eq!(page["changes"]["clients"]["created"], json!([]));
    assert_eq!(page["changes"]["clients"]["deleted"], json!([]));

    // An operator's SQL, on a session with the default search_path, is
    // tracked too: version bumped, change pulled.
    db.db
        .execute_unprepared(&format!(
            "UPDATE t_acme.clients SET city = 'Set by an operator' WHERE id = '{c1}'"
        ))
        .await
        .expect("operator update");
    let key = c1.to_string();
    a.converge(Some(next), &["clients"], &mut state, |s| {
        s.get(&key)
            .is_some_and(|c| c["city"] == "Set by an operator" && c["version"] == 3)
    })
    .await;

    // The log and the caller's state record it.
    let res = app
        .on("acme", Method::GET, "/api/v1/sync/log")
        .bearer_auth(&a.token)
        .send()
        .await
        .expect("log");
    let log: Value = res.json().await.expect("json");
    assert!(log.as_array().is_some_and(|l| l.len() >= 5));
    let res = app
        .on("acme", Method::GET, "/api/v1/sync/state")
        .bearer_auth(&a.token)
        .send()
        .await
        .expect("state");
    let st: Value = res.json().await.expect("json");
    assert!(st.as_array().is_some_and(|s| {
        s.iter()
            .any(|r| r["model"] == "clients" && r["pushed"] == 3)
    }));
}

#[tokio::test]
async fn conflict_strategies() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app, "acme").await;
    let (client, task, note, branch) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let (s, body) = a
        .push(
            "d1",
            json!([
                { "mutation_id": 1, "op": "create", "model": "clients", "id": client, "fields": { "name": "Old", "city": "Rome" } },
                { "mutation_id": 2, "op": "create", "model": "tasks", "id": task, "fields": { "title": "Call" } },
                { "mutation_id": 3, "op": "create", "model": "notes", "id": note, "fields": { "body": "v1", "client_id": client } },
                { "mutation_id": 4, "op": "create", "model": "branches", "id": branch, "fields": { "name": "HQ" } },
            ]),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    // Another device changes every record (version 1 -> 2).
    let (s, body) = a
        .push(
            "d2",
            json!([
                { "mutation_id": 1, "op": "update", "model": "clients", "id": client, "base_version": 1, "fields": { "name": "Server name" } },
                { "mutation_id": 2, "op": "update", "model": "tasks", "id": task, "base_version": 1, "fields": { "title": "Server title" } },
                { "mutation_id": 3, "op": "update", "model": "notes", "id": note, "base_version": 1, "fields": { "body": "server" } },
                { "mutation_id": 4, "op": "update", "model": "branches", "id": branch, "base_version": 1, "fields": { "name": "Server HQ" } },
            ]),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    // The first device, still at version 1.
    let (s, body) = a
        .push(
            "d1",
            json!([
                { "mutation_id": 5, "op": "update", "model": "clients", "id": client, "base_version": 1, "fields": { "name": "Client name", "city": "Milan" } },
                { "mutation_id": 6, "op": "update", "model": "tasks", "id": task, "base_version": 1, "fields": { "title": "Client title" } },
                { "mutation_id": 7, "op": "update", "model": "notes", "id": note, "base_version": 1, "fields": { "body": "client" } },
                { "mutation_id": 8, "op": "update", "model": "branches", "id": branch, "base_version": 1, "fields": { "name": "Client HQ" } },
            ]),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let results = body["results"].as_array().expect("results");
    let by_model = |m: &str| {
        results
            .iter()
            .find(|r| r["model"] == m)
            .expect("result")
            .clone()
    };

    // Merge (clients): the server's newer name stays, the client's city applies.
    let r = by_model("clients");
    assert_eq!(r["status"], "updated");
    assert_eq!(r["resolution"], "merged");
    assert_eq!(r["server"]["name"], "Server name");
    assert_eq!(r["server"]["city"], "Milan");
    // Reject (tasks): not applied, the server copy comes back.
    let r = by_model("tasks");
    assert_eq!(r["status"], "conflict");
    assert_eq!(r["resolution"], "rejected");
    assert_eq!(r["server"]["title"], "Server title");
    assert_eq!(r["server"]["version"], 2);
    // Client wins (notes).
    let r = by_model("notes");
    assert_eq!(r["status"], "updated");
    assert_eq!(r["resolution"], "client_wins");
    // Server wins (branches).
    let r = by_model("branches");
    assert_eq!(r["status"], "conflict");
    assert_eq!(r["resolution"], "server_wins");
    assert_eq!(body["summary"]["tasks"]["conflicted"], 1);
    assert_eq!(body["summary"]["clients"]["conflicted"], 1);

    let mut state = HashMap::new();
    let note_key = note.to_string();
    a.converge(
        None,
        &["clients", "tasks", "notes", "branches"],
        &mut state,
        |s| s.get(&note_key).is_some_and(|n| n["body"] == "client") && s.len() == 4,
    )
    .await;
    assert_eq!(state[&task.to_string()]["title"], "Server title");
    assert_eq!(state[&branch.to_string()]["name"], "Server HQ");

    // All or nothing: one conflict rolls the whole batch back.
    let fresh = Uuid::new_v4();
    let res = app
        .on("acme", Method::POST, "/api/v1/sync/push")
        .bearer_auth(&a.token)
        .json(&json!({ "client_id": "d3", "atomic": true, "mutations": [
            { "mutation_id": 1, "op": "create", "model": "clients", "id": fresh, "fields": { "name": "Never" } },
            { "mutation_id": 2, "op": "update", "model": "tasks", "id": task, "base_version": 1, "fields": { "title": "Stale" } },
        ]}))
        .send()
        .await
        .expect("push");
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["applied"], false);
    let res = app
        .on("acme", Method::GET, &format!("/api/v1/clients/{fresh}"))
        .bearer_auth(&a.token)
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 404, "nothing of the atomic batch was written");
}

#[tokio::test]
async fn permissions_and_row_filters() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app, "acme").await;
    let (reader, _) = user(&a, "reader", &["Read Only"]).await;
    let (sales, sales_id) = user(&a, "sales", &["Sales"]).await;

    // Sales reach only the clients they manage.
    let (s, body) = a
        .post(
            "/api/v1/sync/filters",
            json!({ "role": "Sales", "model": "clients", "field": "assigned_manager_id", "operator": "eq", "value": "$user" }),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = a
        .post(
            "/api/v1/sync/filters",
            json!({ "role": "Sales", "model": "clients", "field": "password", "operator": "eq", "value": "x" }),
        )
        .await;
    assert_eq!(s, 422, "{body}");

    let (mine, theirs) = (Uuid::new_v4(), Uuid::new_v4());
    let (s, _) = a
        .push(
            "admin-1",
            json!([
                { "mutation_id": 1, "op": "create", "model": "clients", "id": mine, "fields": { "name": "Mine", "assigned_manager_id": sales_id } },
                { "mutation_id": 2, "op": "create", "model": "clients", "id": theirs, "fields": { "name": "Theirs" } },
            ]),
        )
        .await;
    assert_eq!(s, 200);

    let mut state = HashMap::new();
    let mine_key = mine.to_string();
    let cursor = sales
        .converge(None, &["clients"], &mut state, |s| {
            s.contains_key(&mine_key)
        })
        .await;
    assert_eq!(state.keys().collect::<Vec<_>>(), vec![&mine_key]);

    // Outside the filter: not pushable, neither by update nor by create.
    let (s, body) = sales
        .push(
            "sales-1",
            json!([
                { "mutation_id": 1, "op": "update", "model": "clients", "id": theirs, "base_version": 1, "fields": { "name": "Hijacked" } },
                { "mutation_id": 2, "op": "create", "model": "clients", "id": Uuid::new_v4(), "fields": { "name": "Not mine" } },
                { "mutation_id": 3, "op": "update", "model": "clients", "id": mine, "base_version": 1, "fields": { "city": "Oslo" } },
            ]),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["summary"]["clients"]["failed"], 2);
    assert_eq!(body["summary"]["clients"]["updated"], 1);

    // Reassigned away, the row reaches the sales user as a delete.
    let (s, _) = a
        .push(
            "admin-1",
            json!([{ "mutation_id": 3, "op": "update", "model": "clients", "id": mine, "base_version": 2, "fields": { "assigned_manager_id": null } }]),
        )
        .await;
    assert_eq!(s, 200);
    sales
        .converge(Some(cursor), &["clients"], &mut state, |s| s.is_empty())
        .await;

    // A role without push: 403; pull is fine. Users' private fields never leave.
    let (s, body) = reader
        .push("r1", json!([{ "mutation_id": 1, "op": "create", "model": "clients", "id": Uuid::new_v4(), "fields": { "name": "x" } }]))
        .await;
    assert_eq!(s, 403, "{body}");
    let mut users = HashMap::new();
    reader
        .converge(None, &["users"], &mut users, |s| s.len() == 3)
        .await;
    assert!(
        users
            .values()
            .all(|u| u.get("password_hash").is_none() && u["email"].is_string())
    );
    // Only administrators manage the matrix.
    let (s, _) = sales
        .post(
            "/api/v1/sync/filters",
            json!({ "role": "Sales", "model": "clients", "field": "city", "operator": "is_null" }),
        )
        .await;
    assert_eq!(s, 403);
    // Revoking pull on a model: 403 for that model.
    revoke_users_for_read_only(&a).await;
    let (s, _) = reader
        .post("/api/v1/sync/pull", json!({ "models": ["users"] }))
        .await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    tenant_with_admin(&db, "other", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app, "acme").await;
    let o = admin(&app, "other").await;

    let (s, body) = a
        .post("/api/v1/sync/pull", json!({ "models": ["spaceships"] }))
        .await;
    assert_eq!(
        (s, body["errors"][0]["field"].clone()),
        (422, json!("models"))
    );
    let (s, body) = a
        .post("/api/v1/sync/pull", json!({ "cursor": "bogus" }))
        .await;
    assert_eq!(
        (s, body["errors"][0]["field"].clone()),
        (422, json!("cursor"))
    );
    let theirs = o.pull(None, &["clients"], 10).await;
    let (s, body) = a
        .post("/api/v1/sync/pull", json!({ "cursor": theirs["cursor"] }))
        .await;
    assert_eq!(s, 422, "a foreign cursor: {body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("another tenant"))
    );
    let (s, _) = a.post("/api/v1/sync/pull", json!({ "limit": 0 })).await;
    assert_eq!(s, 422);
    let (s, _) = a
        .post("/api/v1/sync/pull", json!({ "colour": "red" }))
        .await;
    assert_eq!(s, 400);

    let (s, body) = a
        .push("d", json!([{ "mutation_id": 1, "op": "create", "model": "spaceships", "id": Uuid::new_v4() }]))
        .await;
    assert_eq!(s, 422, "{body}");
    let (s, body) = a
        .push(
            "d",
            json!([
                { "mutation_id": 1, "op": "create", "model": "clients", "id": Uuid::new_v4(), "fields": { "name": "ok", "colour": "red" } },
                { "mutation_id": 2, "op": "create", "model": "clients", "id": Uuid::new_v4(), "fields": { "name": 5, "status": "weird" } },
                { "mutation_id": 3, "op": "create", "model": "contacts", "id": Uuid::new_v4(), "fields": { "first_name": "A", "client_id": Uuid::new_v4() } },
                { "mutation_id": 4, "op": "create", "model": "clients", "id": Uuid::new_v4(), "fields": { "name": "fine" } },
            ]),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results[0]["status"], "failed");
    assert!(
        results[0]["errors"][0]
            .as_str()
            .is_some_and(|e| e.starts_with("colour"))
    );
    assert_eq!(results[1]["errors"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        results[2]["status"], "failed",
        "unknown client: {}",
        results[2]
    );
    assert_eq!(results[3]["status"], "created");
    let (s, body) = a
        .post(
            "/api/v1/sync/push",
            json!({ "client_id": "d", "mutations": [{ "op": "create" }] }),
        )
        .await;
    assert_eq!(s, 400, "{body}");

    let too_many: Vec<Value> = (1..=10_001)
        .map(|i| json!({ "mutation_id": i, "op": "delete", "model": "clients", "id": Uuid::new_v4() }))
        .collect();
    let (s, _) = a.push("d", Value::Array(too_many)).await;
    assert_eq!(s, 413);

    // A cursor older than the tombstone retention: reset required.
    let page = a.pull(None, &["clients"], 10).await;
    let cursor = page["cursor"].as_str().expect("cursor").to_owned();
    let tenant = db
        .registry()
        .get(&tenancy::Slug::parse("acme").expect("slug"))
        .await
        .expect("tenant");
    // A delete after the cursor, then its tombstone purged (retention 0).
    let doomed = Uuid::new_v4();
    a.push(
        "d",
        json!([
            { "mutation_id": 20, "op": "create", "model": "clients", "id": doomed, "fields": { "name": "doomed" } },
            { "mutation_id": 21, "op": "delete", "model": "clients", "id": doomed },
        ]),
    )
    .await;
    let tx = TenantTx::begin(&db.db, &tenant).await.expect("tx");
    let purged = sync_engine::retention::purge_tombstones(tx.conn(), Duration::ZERO)
        .await
        .expect("purge");
    tx.commit().await.expect("commit");
    assert!(purged >= 1);
    let (s, body) = a
        .post("/api/v1/sync/pull", json!({ "cursor": cursor }))
        .await;
    assert_eq!(s, 410, "{body}");
    assert_eq!(body["code"], "reset_required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_commits_are_never_lost() {
    let db = TestDb::new(12).await;
    let tenant = tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app, "acme").await;

    // Writers: each transaction inserts or updates rows, then sleeps a
    // random while before committing, so commits land out of xid order.
    let writers = (0..8).map(|w| {
        let conn = db.db.clone();
        let tenant = tenant.clone();
        tokio::spawn(async move {
            let mut ids: Vec<Uuid> = Vec::new();
            for round in 0..12u64 {
                let tx = TenantTx::begin(&conn, &tenant).await.expect("tx");
                let id = Uuid::new_v4();
                tx.conn()
                    .execute_raw(Statement::from_sql_and_values(
                        DbBackend::Postgres,
                        "INSERT INTO clients (id, name) VALUES ($1, $2)",
                        [id.into(), format!("w{w}-r{round}").into()],
                    ))
                    .await
                    .expect("insert");
                if let Some(prev) = ids.last() {
                    tx.conn()
                        .execute_raw(Statement::from_sql_and_values(
                            DbBackend::Postgres,
                            "UPDATE clients SET city = $2 WHERE id = $1",
                            [(*prev).into(), format!("c{round}").into()],
                        ))
                        .await
                        .expect("update");
                }
                if round % 5 == 4 {
                    let victim = ids.remove(0);
                    tx.conn()
                        .execute_raw(Statement::from_sql_and_values(
                            DbBackend::Postgres,
                            "DELETE FROM clients WHERE id = $1",
                            [victim.into()],
                        ))
                        .await
                        .expect("delete");
                }
                ids.push(id);
                let pause = (w * 7 + round * 13) % 40;
                tokio::time::sleep(Duration::from_millis(pause)).await;
                if round % 7 == 6 {
                    tx.rollback().await.expect("rollback");
                    ids.pop();
                } else {
                    tx.commit().await.expect("commit");
                }
            }
        })
    });
    let writers: Vec<_> = writers.collect();

    // Pullers pull continuously while the writers run.
    let mut pullers = Vec::new();
    for _ in 0..3 {
        let mut state = HashMap::new();
        let mut cursor = None;
        let mut rounds = 0;
        while writers.iter().any(|w| !w.is_finished()) || rounds == 0 {
            cursor = Some(a.pull_all(cursor, &["clients"], 7, &mut state).await);
            rounds += 1;
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        pullers.push((state, cursor));
    }
    for w in writers {
        w.await.expect("writer");
    }
    let truth = table_versions(&db, &tenant, "clients").await;
    assert!(truth.len() > 50, "{} rows", truth.len());
    for (mut state, cursor) in pullers {
        a.converge(cursor, &["clients"], &mut state, |s| versions(s) == truth)
            .await;
    }
}

#[tokio::test]
async fn multi_page_initial_sync_equals_the_table() {
    let db = TestDb::new(4).await;
    let tenant = tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app, "acme").await;
    // Wait until every transaction open alongside the insert has ended
    // (other tests' included), so the first pull sees all 12,000 rows.
    write_and_settle(
        &db,
        &tenant,
        "INSERT INTO clients (id, name, city) \
         SELECT gen_random_uuid(), 'Client ' || n, 'City ' || (n % 50) FROM generate_series(1, 12000) n",
    )
    .await;

    // Page through, while another writer changes rows between pages.
    let mut state = HashMap::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = a.pull(cursor.as_deref(), &["clients"], 1000).await;
        pages += 1;
        for r in page["changes"]["clients"]["created"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                page["changes"]["clients"]["updated"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            )
        {
            let id = r["id"].as_str().expect("id").to_owned();
            assert!(
                state.insert(id, r.clone()).is_none(),
                "repeated within the sync"
            );
        }
        for id in page["changes"]["clients"]["deleted"]
            .as_array()
            .into_iter()
            .flatten()
        {
            state.remove(id.as_str().expect("id"));
        }
        if pages == 3 {
            let tx = db.db.begin().await.expect("tx");
            tx.execute_unprepared(
                "SET LOCAL search_path TO t_acme; \
                 UPDATE clients SET city = 'Moved' WHERE id IN (SELECT id FROM clients ORDER BY id LIMIT 100); \
                 DELETE FROM clients WHERE id IN (SELECT id FROM clients ORDER BY id DESC LIMIT 10);",
            )
            .await
            .expect("concurrent writes");
            tx.commit().await.expect("commit");
        }
        cursor = Some(page["cursor"].as_str().expect("cursor").to_owned());
        if page["has_more"] != true {
            break;
        }
    }
    assert!(pages >= 12, "{pages} pages");
    assert!(
        state.len() >= 11_990,
        "the initial sync holds every row: {}",
        state.len()
    );
    // The next pulls bring what changed during the sync.
    let truth = table_versions(&db, &tenant, "clients").await;
    assert_eq!(truth.len(), 11_990);
    a.converge(cursor, &["clients"], &mut state, |s| versions(s) == truth)
        .await;
}

#[tokio::test]
async fn the_seed_package_protocol_is_served() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let post = |path: &'static str, token: Option<String>, body: Value| {
        let mut req = app.on("acme", Method::POST, path).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let res = post(
        "/api/sync/auth/token/",
        None,
        json!({ "username": "admin@acme.test", "password": PASSWORD }),
    )
    .await
    .expect("token");
    assert_eq!(res.status(), 200);
    let auth: Value = res.json().await.expect("json");
    let token = auth["token"].as_str().expect("token").to_owned();
    assert_eq!(auth["organizations"][0]["slug"], "acme");
    assert_eq!(auth["organizations"][0]["group"], "Administrators");

    let mut data: Vec<Value> = (0..25)
        .map(|i| json!({ "_model": "crm.Client", "name": format!("Legacy {i}"), "department": "SALES" }))
        .collect();
    data.push(json!({ "_model": "myapp.Spaceship", "name": "x" }));
    let res = post(
        "/api/sync/push/",
        Some(token.clone()),
        json!({ "data": data }),
    )
    .await
    .expect("push");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["status"], "partial");
    assert_eq!(body["success_count"], 25);
    assert_eq!(body["error_count"], 1);
    assert_eq!(body["processed_models"]["crm.Client"]["created"], 25);
    assert!(body["processing_time"].as_f64().is_some());

    // Pull in batches of 10 by passing back each last_sync.
    let mut seen: HashMap<String, Value> = HashMap::new();
    let mut since: Option<String> = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < 25 {
        assert!(
            std::time::Instant::now() < deadline,
            "compat pull did not converge"
        );
        let res = post(
            "/api/sync/pull/",
            Some(token.clone()),
            json!({ "models": { "crm.Client": since }, "batch_size": 10 }),
        )
        .await
        .expect("pull");
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("json");
        let records = body["data"].as_array().expect("data");
        assert!(records.len() <= 10);
        for r in records {
            assert_eq!(r["_model"], "crm.Client");
            let id = r["id"].as_str().expect("id").to_owned();
            assert!(seen.insert(id, r.clone()).is_none(), "a record came twice");
        }
        since = body["metadata"]["crm.Client"]["last_sync"]
            .as_str()
            .map(str::to_owned);
        assert!(since.is_some());
    }

    // An update by id, then a pull from the last timestamp brings just it.
    let (id, _) = seen
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("one");
    let res = post(
        "/api/sync/push/",
        Some(token.clone()),
        json!({ "data": [{ "_model": "crm.Client", "id": id, "city": "Lyon" }] }),
    )
    .await
    .expect("push");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["processed_models"]["crm.Client"]["updated"], 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let res = post(
            "/api/sync/pull/",
            Some(token.clone()),
            json!({ "models": { "crm.Client": since }, "batch_size": 100 }),
        )
        .await
        .expect("pull");
        let body: Value = res.json().await.expect("json");
        since = body["metadata"]["crm.Client"]["last_sync"]
            .as_str()
            .map(str::to_owned);
        let records = body["data"].as_array().expect("data").clone();
        if !records.is_empty() {
            assert_eq!(records.len(), 1);
            assert_eq!(records[0]["city"], "Lyon");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "update not pulled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A timestamp Strata never issued resumes from the latest one before
    // it: here, before any, so everything comes again.
    let res = post(
        "/api/sync/pull/",
        Some(token.clone()),
        json!({ "models": { "crm.Client": "2000-01-01T00:00:00Z" }, "batch_size": 100 }),
    )
    .await
    .expect("pull");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["data"].as_array().map(Vec::len), Some(25));
    let res = post(
        "/api/sync/pull/",
        Some(token),
        json!({ "models": { "crm.Client": "yesterday" } }),
    )
    .await
    .expect("pull");
    assert_eq!(res.status(), 422);
}

#[tokio::test]
async fn a_record_deleted_elsewhere_reaches_the_device_that_created_it() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app, "acme").await;
    let (device, _) = user(&a, "field", &["Sales"]).await;

    // The device syncs, then creates a record and pushes it without pulling.
    let before = device.pull(None, &["clients"], 100).await;
    let cursor = before["cursor"].as_str().expect("cursor").to_owned();
    let id = Uuid::new_v4();
    let (s, body) = device
        .push(
            "device-1",
            json!([{ "mutation_id": 1, "op": "create", "model": "clients", "id": id, "fields": { "name": "Mine" } }]),
        )
        .await;
    assert_eq!(
        (s, body["results"][0]["status"].clone()),
        (200, json!("created"))
    );

    // Someone deletes it over REST; the device's next pull must say so.
    let res = app
        .on("acme", Method::DELETE, &format!("/api/v1/clients/{id}"))
        .bearer_auth(&a.token)
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 204);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let page = device.pull(Some(&cursor), &["clients"], 100).await;
        let deleted = page["changes"]["clients"]["deleted"].to_string();
        if deleted.contains(&id.to_string()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no tombstone: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A first sync still carries no tombstones.
    let fresh = device.pull(None, &["clients"], 100).await;
    assert_eq!(fresh["changes"]["clients"]["deleted"], json!([]), "{fresh}");
}

#[tokio::test]
async fn a_watermelondb_create_sent_again_is_applied_as_an_update() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app, "acme").await;
    // Tasks settle conflicts by rejecting them: a resent create must still
    // go through, or the device is stuck with 409 forever.
    let id = Uuid::new_v4();
    let push = |title: &str| {
        json!({ "changes": { "tasks": { "created": [
            { "id": id, "title": title, "status": "open", "priority": "normal", "_status": "created", "_changed": "" }
        ], "updated": [], "deleted": [] } }, "last_pulled_at": null })
    };
    let (s, body) = a.post("/api/v1/sync/watermelon/push", push("Call")).await;
    assert_eq!(s, 200, "{body}");
    // The answer was lost; the device sends the create again, edited.
    let (s, body) = a
        .post("/api/v1/sync/watermelon/push", push("Call back"))
        .await;
    assert_eq!(s, 200, "{body}");
    let res = app
        .on("acme", Method::GET, &format!("/api/v1/tasks/{id}"))
        .bearer_auth(&a.token)
        .send()
        .await
        .expect("get");
    let task: Value = res.json().await.expect("json");
    assert_eq!(
        (task["title"].clone(), task["version"].clone()),
        (json!("Call back"), json!(2))
    );
}

#[tokio::test]
async fn the_seed_package_clients_other_shapes_are_served() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    // A form-encoded sign-in.
    let res = app
        .on("acme", Method::POST, "/api/sync/auth/token/")
        .form(&[("username", "admin@acme.test"), ("password", PASSWORD)])
        .send()
        .await
        .expect("token");
    assert_eq!(res.status(), 200);
    let auth: Value = res.json().await.expect("json");
    let token = auth["token"].as_str().expect("token").to_owned();

    // Records grouped by model.
    let res = app
        .on("acme", Method::POST, "/api/sync/push/")
        .bearer_auth(&token)
        .json(
            &json!({ "crm.Client": [{ "name": "Grouped A" }, { "name": "Grouped B" }],
                       "crm.Branch": [{ "name": "North" }] }),
        )
        .send()
        .await
        .expect("push");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["success_count"], 3, "{body}");
    assert_eq!(
        body["processed_models"]["crm.Client"]["created"], 2,
        "{body}"
    );

    // An unknown model is reported on its own; the others are pulled.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let res = app
            .on("acme", Method::POST, "/api/sync/pull/")
            .bearer_auth(&token)
            .json(&json!({ "models": { "crm.Client": null, "myapp.Spaceship": null } }))
            .send()
            .await
            .expect("pull");
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("json");
        assert!(
            body["metadata"]["myapp.Spaceship"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("unknown model")),
            "{body}"
        );
        if body["metadata"]["crm.Client"]["count"] == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_watermelondb_delete_of_a_record_changed_since_its_pull_conflicts() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app, "acme").await;
    let (s, task) = a.post("/api/v1/tasks", json!({ "title": "Call" })).await;
    assert_eq!(s, 201);
    let id = task["id"].as_str().expect("id").to_owned();
    // The device pulls until it has the task.
    let pull = || async {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (s, body) = a
                .post(
                    "/api/v1/sync/watermelon/pull",
                    json!({ "last_pulled_at": null, "tables": ["tasks"] }),
                )
                .await;
            assert_eq!(s, 200, "{body}");
            if body["changes"]["tasks"].to_string().contains(&id) {
                return body["timestamp"].as_i64().expect("timestamp");
            }
            assert!(std::time::Instant::now() < deadline, "{body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let pulled_at = pull().await;
    // Someone edits it after that pull; the device's delete must not win
    // over the edit of a `reject` model.
    let res = app
        .on("acme", Method::PATCH, &format!("/api/v1/tasks/{id}"))
        .bearer_auth(&a.token)
        .json(&json!({ "title": "Call back", "version": 1 }))
        .send()
        .await
        .expect("patch");
    assert_eq!(res.status(), 200);
    let delete = |at: i64| {
        json!({ "changes": { "tasks": { "created": [], "updated": [], "deleted": [id.clone()] } },
                "last_pulled_at": at })
    };
    let (s, body) = a
        .post("/api/v1/sync/watermelon/push", delete(pulled_at))
        .await;
    assert_eq!(s, 409, "{body}");
    // After pulling the edit, the device's delete goes through.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let again = pull().await;
        let (s, body) = a.post("/api/v1/sync/watermelon/push", delete(again)).await;
        if s == 200 {
            break;
        }
        assert!(
            s == 409 && std::time::Instant::now() < deadline,
            "{s} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_watermelondb_push_names_refused_records_and_applies_the_rest() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app, "acme").await;
    // A record the device holds is deleted by someone else.
    let (s, gone) = a.post("/api/v1/clients", json!({ "name": "Gone" })).await;
    assert_eq!(s, 201);
    let gone_id = gone["id"].as_str().expect("id").to_owned();
    let res = app
        .on(
            "acme",
            Method::DELETE,
            &format!("/api/v1/clients/{gone_id}"),
        )
        .bearer_auth(&a.token)
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 204);
    // The device edits the ghost, creates a record and an invalid one.
    let fresh = Uuid::now_v7().to_string();
    let invalid = Uuid::now_v7().to_string();
    let changes = json!({ "clients": {
        "created": [{ "id": fresh, "name": "Fresh", "status": "lead", "version": 1 },
                    { "id": invalid, "name": "Bad\u{0}name", "version": 1 }],
        "updated": [{ "id": gone_id, "name": "Gone", "city": "Oslo", "version": 1 }],
        "deleted": [] } });
    let (s, body) = a
        .post(
            "/api/v1/sync/watermelon/push",
            json!({ "changes": changes, "last_pulled_at": null }),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let mut rejected: Vec<String> = body["experimentalRejectedIds"]["clients"]
        .as_array()
        .expect("rejected ids")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    rejected.sort();
    let mut expected = vec![gone_id.clone(), invalid.clone()];
    expected.sort();
    assert_eq!(rejected, expected, "{body}");
    assert!(
        body["rejected"].to_string().contains("no such record"),
        "{body}"
    );
    assert!(body["rejected"].to_string().contains("name"), "{body}");
    // The valid create applied; neither refused record exists.
    let (s, _) = a.get(&format!("/api/v1/clients/{fresh}")).await;
    assert_eq!(s, 200);
    for id in [&gone_id, &invalid] {
        let (s, _) = a.get(&format!("/api/v1/clients/{id}")).await;
        assert_eq!(s, 404);
    }
}

#[tokio::test]
async fn a_devices_queued_edits_are_not_conflicts_with_each_other_but_others_edits_are() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app, "acme").await;
    // Offline: a task created, then edited twice, each edit made against
    // the only version the device knows (1). Tasks `reject` stale edits.
    let id = Uuid::now_v7();
    let (s, body) = a
        .push(
            "phone",
            json!([
                { "mutation_id": 1, "op": "create", "model": "tasks", "id": id, "fields": { "title": "Call" } },
                { "mutation_id": 2, "op": "update", "model": "tasks", "id": id, "base_version": 1, "fields": { "title": "Call back" } },
                { "mutation_id": 3, "op": "update", "model": "tasks", "id": id, "base_version": 1, "fields": { "status": "in_progress" } },
            ]),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let statuses: Vec<&str> = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert_eq!(statuses, ["created", "updated", "updated"], "{body}");
    // The answer was lost: the device sends the batch again with an edit
    // made since, still against version 1.
    let (s, body) = a
        .push(
            "phone",
            json!([
                { "mutation_id": 3, "op": "update", "model": "tasks", "id": id, "base_version": 1, "fields": { "status": "in_progress" } },
                { "mutation_id": 4, "op": "update", "model": "tasks", "id": id, "base_version": 1, "fields": { "title": "Call back at 5" } },
            ]),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "duplicate", "{body}");
    assert_eq!(body["results"][1]["status"], "updated", "{body}");
    let (s, task) = a.get(&format!("/api/v1/tasks/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(task["title"], "Call back at 5");
    assert_eq!(task["status"], "in_progress");
    // Someone else edits it: the device's next stale edit is a conflict.
    let res = app
        .on("acme", Method::PATCH, &format!("/api/v1/tasks/{id}"))
        .bearer_auth(&a.token)
        .json(&json!({ "priority": "high", "version": task["version"] }))
        .send()
        .await
        .expect("patch");
    assert_eq!(res.status(), 200);
    let (s, body) = a
        .push(
            "phone",
            json!([{ "mutation_id": 5, "op": "update", "model": "tasks", "id": id, "base_version": 1, "fields": { "title": "Never mind" } }]),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "conflict", "{body}");
    assert_eq!(body["results"][0]["server"]["priority"], "high", "{body}");
    // Another device claiming none of those edits conflicts too.
    let (s, body) = a
        .push(
            "tablet",
            json!([{ "mutation_id": 1, "op": "update", "model": "tasks", "id": id, "base_version": 2, "fields": { "title": "Mine" } }]),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "conflict", "{body}");
}

#[tokio::test]
async fn a_deleted_records_id_is_not_created_again_by_any_protocol() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app, "acme").await;
    let id = Uuid::now_v7();
    let create = json!([{ "mutation_id": 1, "op": "create", "model": "clients", "id": id, "fields": { "name": "Once" } }]);
    let (s, body) = a.push("phone", create).await;
    assert_eq!(body["results"][0]["status"], "created", "{s} {body}");
    let res = app
        .on("acme", Method::DELETE, &format!("/api/v1/clients/{id}"))
        .bearer_auth(&a.token)
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 204);
    // The native protocol (another client replaying it).
    let (s, body) = a
        .push(
            "replayer",
            json!([{ "mutation_id": 1, "op": "create", "model": "clients", "id": id, "fields": { "name": "Again" } }]),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "failed", "{body}");
    assert_eq!(
        body["results"][0]["server"],
        json!({ "id": id, "_deleted": true }),
        "{body}"
    );
    // WatermelonDB re-sending the create: refused per record.
    let changes = json!({ "clients": { "created": [{ "id": id, "name": "Again", "version": 1 }],
                                       "updated": [], "deleted": [] } });
    let (s, body) = a
        .post(
            "/api/v1/sync/watermelon/push",
            json!({ "changes": changes, "last_pulled_at": null }),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body["experimentalRejectedIds"]["clients"],
        json!([id]),
        "{body}"
    );
    // RxDB: the answer is the tombstone, which the client adopts.
    let (s, body) = a
        .post(
            "/api/v1/sync/rxdb/clients/push",
            json!([{ "newDocumentState": { "id": id, "name": "Again", "_deleted": false } }]),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body, json!([{ "id": id, "_deleted": true }]), "{body}");
    // The Django package's push: reported as an error.
    let (s, body) = a
        .post(
            "/api/sync/push/",
            json!({ "data": [{ "_model": "crm.Client", "id": id, "name": "Again" }] }),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["error_count"], 1, "{body}");
    let (s, _) = a.get(&format!("/api/v1/clients/{id}")).await;
    assert_eq!(s, 404);
}

/// An RxDB replication that starts over (no checkpoint, as when RxDB stored
/// its documents but not yet their checkpoint before it stopped) while
/// holding rows learns of the deletions it missed: its first pull carries
/// tombstones, where a native first pull does not.
#[tokio::test]
async fn an_rxdb_replication_starting_over_learns_of_deletions() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let a = admin(&app, "acme").await;
    let (s, client) = a
        .post("/api/v1/clients", json!({ "name": "Soon gone" }))
        .await;
    assert_eq!(s, 201, "{client}");
    let id = client["id"].as_str().expect("id").to_owned();
    let res = app
        .on("acme", Method::DELETE, &format!("/api/v1/clients/{id}"))
        .bearer_auth(&a.token)
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 204);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (s, page) = a
            .post(
                "/api/v1/sync/rxdb/clients/pull",
                json!({ "checkpoint": null, "batch_size": 100 }),
            )
            .await;
        assert_eq!(s, 200, "{page}");
        if page["documents"]
            .as_array()
            .is_some_and(|d| d.contains(&json!({ "id": id, "_deleted": true })))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no tombstone: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A native first pull still carries none.
    let fresh = a.pull(None, &["clients"], 100).await;
    assert_eq!(fresh["changes"]["clients"]["deleted"], json!([]), "{fresh}");
}

/// The server that commits a change to rules or to a user's standing acts
/// on it before answering, without waiting for the notification to reach
/// its listener: here the listener hears another database, so no
/// notification ever arrives, and only the server's own commit can drop
/// what it cached.
#[tokio::test]
async fn the_writing_server_follows_its_own_revocations_at_once() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let settings = crate::helpers::settings_hearing_nothing(&db, 4);
    let app = crate::helpers::spawn_with(&settings, true).await;
    let a = admin(&app, "acme").await;
    let (reader, reader_id) = user(&a, "reader", &["Read Only"]).await;

    // Cached by the pull: the reader may pull users.
    let pull = json!({ "models": ["users"] });
    let (s, _) = reader.post("/api/v1/sync/pull", pull.clone()).await;
    assert_eq!(s, 200);
    revoke_users_for_read_only(&a).await;
    let (s, _) = reader.post("/api/v1/sync/pull", pull.clone()).await;
    assert_eq!(s, 403, "revoked rules");

    // The reader's standing, cached by a request, then the account disabled.
    let (s, _) = reader
        .post("/api/v1/sync/pull", json!({ "models": ["clients"] }))
        .await;
    assert_eq!(s, 200);
    let res = app
        .on("acme", Method::GET, &format!("/api/v1/users/{reader_id}"))
        .bearer_auth(&a.token)
        .send()
        .await
        .expect("get");
    let version = res.json::<Value>().await.expect("user")["version"].clone();
    let res = app
        .on("acme", Method::PATCH, &format!("/api/v1/users/{reader_id}"))
        .bearer_auth(&a.token)
        .json(&json!({ "is_active": false, "version": version }))
        .send()
        .await
        .expect("disable");
    assert_eq!(res.status(), 200);
    let (s, _) = reader
        .post("/api/v1/sync/pull", json!({ "models": ["clients"] }))
        .await;
    assert_eq!(s, 401, "a disabled account");
}
