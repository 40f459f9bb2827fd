//! Console benchmark: the sync-log page of a tenant with 10,000 log lines,
//! its first page and a page deep in the log, served by the release
//! `strata-server` (`SERVER_BIN`, built by `just bench-console`), one
//! request at a time: latency p50/p99 (session check, the page's query and
//! the render), and each page's weight compressed.
//! `BENCH_LINES` (default 10,000) and `BENCH_REQUESTS` (default 500) scale it.

mod common;

use std::time::Instant;

use common::{Server, env_or, quantile};
use sea_orm::ConnectionTrait;
use tenancy::testing::TestDb;
use tenancy::{FirstAdmin, NewTenant, Slug, TenantTx};

const PASSWORD: &str = "correct horse battery";

#[tokio::main]
async fn main() {
    let lines: usize = env_or("BENCH_LINES", 10_000);
    let requests: usize = env_or("BENCH_REQUESTS", 500);
    let bin = std::env::var("SERVER_BIN").expect("SERVER_BIN (just bench-console sets it)");
    let db = TestDb::new(4).await;
    let hash = domain::password::Password::parse(PASSWORD)
        .expect("password")
        .hash();
    let new = NewTenant::new(Slug::parse("acme").expect("slug"), "Acme", &[], "localhost")
        .expect("tenant")
        .with_admin(FirstAdmin {
            email: "admin@acme.test".into(),
            full_name: "Admin".into(),
            password_hash: hash,
        });
    let tenant = db.registry().create(&new).await.expect("create");
    let tx = TenantTx::begin(&db.db, &tenant).await.expect("tx");
    tx.conn()
        .execute_unprepared(&format!(
            "INSERT INTO sync_log (id, user_id, client_id, kind, models, counts, status, \
                                   duration_ms, error, created_at) \
             SELECT gen_random_uuid(), NULL, 'device-' || (g % 40), \
                    CASE WHEN g % 3 = 0 THEN 'push' ELSE 'pull' END, ARRAY['clients', 'tasks'], \
                    jsonb_build_object('clients', g % 50, 'tasks', g % 7), \
                    CASE WHEN g % 97 = 0 THEN 'failed' ELSE 'ok' END, (g % 300) / 10.0, \
                    CASE WHEN g % 97 = 0 THEN 'version conflict' END, \
                    now() - make_interval(secs => g * 30) \
               FROM generate_series(1, {lines}) g"
        ))
        .await
        .expect("log lines");
    tx.commit().await.expect("commit");
    db.db
        .execute_unprepared("VACUUM ANALYZE")
        .await
        .expect("vacuum");
    let server = Server::start(&bin, &db, 8).await;
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{}/api/v1/auth/token", server.address))
        .header(reqwest::header::HOST, "acme.localhost")
        .json(&serde_json::json!({ "email": "admin@acme.test", "password": PASSWORD }))
        .send()
        .await
        .expect("sign in");
    let body: serde_json::Value = res.json().await.expect("json");
    // A session's refresh token is what the console's cookie holds.
    let cookie = format!(
        "strata_console={}",
        body["refresh_token"].as_str().expect("refresh token")
    );
    // A position half-way down the log.
    let middle = db
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
                        || '_' || id FROM t_acme.sync_log ORDER BY created_at DESC, id DESC \
                 OFFSET {} LIMIT 1",
                lines / 2
            ),
        ))
        .await
        .expect("query")
        .expect("row")
        .try_get_by_index::<String>(0)
        .expect("position");
    println!("== console benchmark: the sync-log page, {lines} lines in the log ==");
    for (label, path) in [
        ("first page", "/console/sync-log".to_owned()),
        (
            "a page half-way down",
            format!(
                "/console/sync-log?before={}",
                middle.replace(':', "%3A").replace('+', "%2B")
            ),
        ),
        (
            "failed pushes and pulls only",
            "/console/sync-log?status=failed".to_owned(),
        ),
    ] {
        let mut latencies = Vec::with_capacity(requests);
        let mut weight = 0;
        for i in 0..requests + 20 {
            let started = Instant::now();
            let res = client
                .get(format!("{}{path}", server.address))
                .header(reqwest::header::HOST, "acme.localhost")
                .header(reqwest::header::COOKIE, &cookie)
                .header(reqwest::header::ACCEPT_ENCODING, "gzip")
                .send()
                .await
                .expect("page");
            assert_eq!(res.status(), 200, "{path}");
            let body = res.bytes().await.expect("body");
            if i >= 20 {
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            weight = body.len();
        }
        latencies.sort_by(f64::total_cmp);
        println!(
            "{label}: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {requests} \
             requests; {weight} bytes compressed",
            quantile(&latencies, 0.5),
            quantile(&latencies, 0.9),
            quantile(&latencies, 0.99),
            latencies.last().copied().unwrap_or(f64::NAN),
        );
    }
    let (rss, peak) = server.memory();
    println!("server RSS {rss:.0} MiB (peak {peak:.0} MiB)");
    common::print_pgbench_reference(&db.url, 5);
}
