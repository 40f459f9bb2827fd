//! The real offline-first client libraries, WatermelonDB and RxDB, run in
//! Node against a Strata server and sync both ways.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;
use tenancy::testing::TestDb;

use crate::helpers::{TestApp, spawn_app, tenant_with_admin, write_and_settle};

const PASSWORD: &str = "correct horse battery";

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../clients/node")
}

/// Runs `script` against `app` as acme's administrator; its JSON report.
async fn run(script: &str, app: &TestApp) -> Value {
    run_with(script, app, &[]).await
}

/// [`run`] with extra environment variables.
async fn run_with(script: &str, app: &TestApp, env: &[(&str, &str)]) -> Value {
    let dir = clients_dir();
    assert!(
        dir.join("node_modules").is_dir(),
        "clients/node has no node_modules: run `npm ci` there (scripts/test.sh does)"
    );
    let out = tokio::process::Command::new("node")
        .arg(script)
        .current_dir(&dir)
        .env("STRATA_URL", &app.address)
        .env("STRATA_HOST", "acme.localhost")
        .env("STRATA_EMAIL", "admin@acme.test")
        .env("STRATA_PASSWORD", PASSWORD)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{script} printed no report ({e}): {stdout}"))
}

async fn server_clients(app: &TestApp) -> Vec<Value> {
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let res = app
        .on(
            "acme",
            reqwest::Method::GET,
            "/api/v1/clients?limit=500&order=name",
        )
        .bearer_auth(token)
        .send()
        .await
        .expect("list");
    let page: Value = res.json().await.expect("json");
    page["items"].as_array().cloned().unwrap_or_default()
}

fn by_name<'a>(list: &'a [Value], name: &str) -> Option<&'a Value> {
    list.iter().find(|c| c["name"] == name)
}

const SEED: &str = "INSERT INTO clients (id, name, status) \
    SELECT gen_random_uuid(), 'Seed ' || n, 'active' FROM generate_series(1, 5) n";

#[tokio::test]
async fn watermelondb_synchronizes_both_ways() {
    let db = TestDb::new(2).await;
    let tenant = tenant_with_admin(&db, "acme", PASSWORD).await;
    write_and_settle(&db, &tenant, SEED).await;
    let app = spawn_app(&db, 4).await;

    let report = run("watermelon.mjs", &app).await;
    assert_eq!(report["pulled"], 5, "{report}");
    assert_eq!(report["local"], 7, "{report}");
    // Its own pushed creates came back as updates: WatermelonDB found
    // nothing to flag.
    assert_eq!(report["diagnostics"], serde_json::json!([]), "{report}");

    let server = server_clients(&app).await;
    assert_eq!(server.len(), 7);
    for name in ["Melon A", "Melon B", "Melon C"] {
        assert!(
            by_name(&server, name).is_some(),
            "{name} reached the server"
        );
    }
    assert_eq!(
        by_name(&server, "Seed 1").expect("seed 1")["city"],
        "Edited offline"
    );
    assert!(
        by_name(&server, "Seed 2").is_none(),
        "the local delete reached the server"
    );
}

#[tokio::test]
async fn rxdb_replicates_both_ways() {
    let db = TestDb::new(2).await;
    let tenant = tenant_with_admin(&db, "acme", PASSWORD).await;
    write_and_settle(&db, &tenant, SEED).await;
    let app = spawn_app(&db, 4).await;

    let report = run("rxdb.mjs", &app).await;
    assert_eq!(report["pulled"], 5, "{report}");
    assert_eq!(report["local"], 6, "{report}");

    let server = server_clients(&app).await;
    assert_eq!(server.len(), 6);
    assert!(by_name(&server, "Rx A").is_some() && by_name(&server, "Rx B").is_some());
    assert_eq!(
        by_name(&server, "Seed 3").expect("seed 3")["city"],
        "Patched by RxDB"
    );
    assert!(by_name(&server, "Seed 4").is_none());

    // Neither of two successive edits of a `reject` model was lost.
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let id = report["task"]["id"].as_str().expect("task id");
    let task: Value = app
        .on("acme", reqwest::Method::GET, &format!("/api/v1/tasks/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("task")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (&task["title"], &task["status"]),
        (&Value::from("Call back"), &Value::from("in_progress")),
        "{task} / {report}"
    );
}

#[tokio::test]
async fn rxdb_initial_replication_pages_through_thousands() {
    let db = TestDb::new(2).await;
    let tenant = tenant_with_admin(&db, "acme", PASSWORD).await;
    write_and_settle(
        &db,
        &tenant,
        "INSERT INTO clients (id, name, status) \
         SELECT gen_random_uuid(), 'Client ' || n, 'active' FROM generate_series(1, 5000) n",
    )
    .await;
    let app = spawn_app(&db, 4).await;
    for batch in ["100", "1000"] {
        let report = run_with("rxdb-initial.mjs", &app, &[("STRATA_BATCH", batch)]).await;
        assert_eq!(report["pulled"], 5000, "batch {batch}: {report}");
        // The figures for docs/sync.md: `cargo test rxdb_initial -- --nocapture`.
        println!("RxDB initial replication of 5,000 documents: {report}");
    }
}
