//! Sync benchmark: push of 100,000 records (creates, then updates of the
//! same records) and pull of 100,000 records, in records per second, from
//! one device and from `BENCH_DEVICES` (default 4) devices at once, beside
//! PostgreSQL's own COPY of the same rows and the push statement run
//! straight on the database, in the same run; then webhook
//! deliveries of `BENCH_EVENTS` (default 20,000) events to a receiver in
//! this process, while the changes are pushed (with the lag) and as a
//! backlog released by resume.
//!
//! Runs the release `strata-server` named by `SERVER_BIN` as its own
//! process; `just bench-sync` builds it. `BENCH_RECORDS` (default 100000)
//! and `BENCH_BATCH` (default 5000) scale it.

mod common;

use std::time::{Duration, Instant};

use api::auth::TokenKeys;
use api::configuration::Settings;
use common::{Server, env_or};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use tenancy::testing::TestDb;
use tenancy::{FirstAdmin, NewTenant, Slug, TenantTx};
use uuid::Uuid;

#[derive(serde::Deserialize)]
struct PullPage {
    changes: PullChanges,
    cursor: String,
    has_more: bool,
}

#[derive(serde::Deserialize)]
struct PullChanges {
    clients: PullModel,
}

#[derive(serde::Deserialize)]
struct PullModel {
    created: Vec<serde::de::IgnoredAny>,
}

fn record(i: usize) -> Value {
    json!({
        "name": format!("Client {i}"),
        "status": "active",
        "email": format!("c{i}@example.com"),
        "city": "Lisbon",
        "country": "PT",
        "department": "Sales",
    })
}

/// A tenant with an administrator, and an access token of theirs.
async fn tenant(db: &TestDb, keys: &TokenKeys, slug: &str) -> (tenancy::Tenant, String) {
    let admin = FirstAdmin {
        email: format!("admin@{slug}.test"),
        full_name: "Admin".into(),
        password_hash: "not-used".into(),
    };
    let new = NewTenant::new(Slug::parse(slug).expect("slug"), slug, &[], "localhost")
        .expect("tenant")
        .with_admin(admin);
    let tenant = db.registry().create(&new).await.expect("create");
    let tx = TenantTx::begin(&db.db, &tenant).await.expect("tx");
    let admin_id: Uuid = tx
        .conn()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT id FROM users",
        ))
        .await
        .expect("user")
        .expect("row")
        .try_get_by_index(0)
        .expect("id");
    tx.commit().await.expect("commit");
    let token = keys
        .issue(
            admin_id,
            tenant.id(),
            Uuid::now_v7(),
            1,
            vec!["Administrators".into()],
        )
        .expect("token");
    (tenant, token)
}

/// Pushes to one tenant.
#[derive(Clone, Copy)]
struct Pusher<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    host: &'a str,
    token: &'a str,
    client_id: &'a str,
    batch: usize,
}

impl Pusher<'_> {
    /// Pushes `ids` in batches, as creates, or as updates of records at
    /// `base_version`; the seconds it took.
    async fn push(&self, ids: &[Uuid], base_version: Option<i64>, mutation: &mut i64) -> f64 {
        let started = Instant::now();
        for (c, chunk) in ids.chunks(self.batch).enumerate() {
            let mutations: Vec<Value> = chunk
                .iter()
                .enumerate()
                .map(|(j, id)| {
                    *mutation += 1;
                    match base_version {
                        None => json!({ "mutation_id": *mutation, "op": "create",
                                        "model": "clients", "id": id,
                                        "fields": record(c * self.batch + j) }),
                        Some(v) => json!({ "mutation_id": *mutation, "op": "update",
                                           "model": "clients", "id": id, "base_version": v,
                                           "fields": { "city": "Porto", "status": "inactive" } }),
                    }
                })
                .collect();
            let res = self
                .http
                .post(format!("{}/api/v1/sync/push", self.base))
                .header(reqwest::header::HOST, self.host)
                .bearer_auth(self.token)
                .json(&json!({ "client_id": self.client_id, "mutations": mutations }))
                .send()
                .await
                .expect("push");
            assert!(
                res.status().is_success(),
                "{}",
                res.text().await.unwrap_or_default()
            );
        }
        started.elapsed().as_secs_f64()
    }
}

/// `pushers[i]` pushes `sets[i]`, all at once; records per second overall.
async fn push_at_once(
    pushers: &[Pusher<'_>],
    sets: &[Vec<Uuid>],
    base_version: Option<i64>,
) -> f64 {
    let started = Instant::now();
    let runs = pushers.iter().zip(sets).map(|(p, ids)| async move {
        let mut mutation = i64::from(base_version.is_some()) * 1_000_000;
        p.push(ids, base_version, &mut mutation).await
    });
    futures::future::join_all(runs).await;
    sets.iter().map(Vec::len).sum::<usize>() as f64 / started.elapsed().as_secs_f64()
}

/// A full initial sync of `clients` in pages of 10,000; the records pulled.
async fn pull_all(http: &reqwest::Client, base: &str, host: &str, token: &str) -> usize {
    let mut cursor: Option<String> = None;
    let mut pulled = 0usize;
    loop {
        let res = http
            .post(format!("{base}/api/v1/sync/pull"))
            .header(reqwest::header::HOST, host)
            .bearer_auth(token)
            .json(&json!({ "cursor": cursor, "models": ["clients"], "limit": 10_000 }))
            .send()
            .await
            .expect("pull");
        // Counted, not parsed into values: the client's own cost stays small.
        let body: PullPage =
            serde_json::from_slice(&res.bytes().await.expect("body")).expect("json");
        pulled += body.changes.clients.created.len();
        cursor = Some(body.cursor);
        if !body.has_more {
            return pulled;
        }
    }
}

/// The push's own insert, with the table's triggers, run straight on the
/// database in batches of `batch` (one transaction each): what one stream
/// of pushes costs PostgreSQL alone, without HTTP or the server.
async fn database_floor(db: &TestDb, tenant: &tenancy::Tenant, n: usize, batch: usize) -> f64 {
    use domain::store::{self, Returning};
    let spec = domain::record::model("clients").expect("clients");
    let rows: Vec<Value> = (0..n)
        .map(|i| {
            let Value::Object(fields) = record(i) else {
                unreachable!("a record is an object")
            };
            store::row(Uuid::new_v4(), None, &fields)
        })
        .collect();
    let cols = ["name", "status", "email", "city", "country", "department"];
    let started = Instant::now();
    for chunk in rows.chunks(batch) {
        let tx = TenantTx::begin(&db.db, tenant).await.expect("tx");
        tx.conn()
            .execute_unprepared("SELECT set_config('strata.device', 'floor', true)")
            .await
            .expect("device");
        let written = store::insert(tx.conn(), spec, chunk, &cols, Returning::Ids)
            .await
            .expect("insert");
        assert_eq!(written.len(), chunk.len());
        tx.commit().await.expect("commit");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let n: usize = env_or("BENCH_RECORDS", 100_000);
    let batch: usize = env_or("BENCH_BATCH", 5_000);
    let devices: usize = env_or("BENCH_DEVICES", 4);
    let Ok(bin) = std::env::var("SERVER_BIN") else {
        eprintln!("SERVER_BIN is not set: run `just bench-sync`");
        return;
    };
    let settings: Settings = tenancy::config::load().expect("configuration");
    let keys = TokenKeys::new(&settings.auth.jwt_secret, 3600, 3600);
    let db = TestDb::new(4).await;
    let (_, token) = tenant(&db, &keys, "bench").await;
    // The same pushes to a tenant whose journal triggers are off: the
    // journal's cost, measured in the same run.
    let (quiet, quiet_token) = tenant(&db, &keys, "quiet").await;
    let tx = TenantTx::begin(&db.db, &quiet).await.expect("tx");
    for op in ["insert", "update", "delete"] {
        tx.conn()
            .execute_unprepared(&format!(
                "ALTER TABLE clients DISABLE TRIGGER clients_journal_{op}"
            ))
            .await
            .expect("journal off");
    }
    tx.commit().await.expect("commit");
    // Several devices of one tenant pushing and pulling at once.
    let (_, many_token) = tenant(&db, &keys, "many").await;
    let (floor, _) = tenant(&db, &keys, "floor").await;

    let server = Server::start_with(
        &bin,
        &db,
        10,
        &[("STRATA__EVENTS__ALLOW_TARGETS", "127.0.0.1/32")],
    )
    .await;
    let base = server.address.clone();
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .header(reqwest::header::HOST, "bench.localhost")
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    println!("== sync benchmark ({n} records, push batches of {batch}) ==");

    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let quiet_ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let mut mutation = 0i64;
    let bench = Pusher {
        http: &http,
        base: &base,
        host: "bench.localhost",
        token: &token,
        client_id: "bench",
        batch,
    };
    let off = Pusher {
        host: "quiet.localhost",
        token: &quiet_token,
        ..bench
    };
    let rate = |secs: f64| n as f64 / secs;
    let quiet_creates = rate(off.push(&quiet_ids, None, &mut mutation).await);
    let creates = rate(bench.push(&ids, None, &mut mutation).await);
    println!(
        "push, creates: {creates:.0} records/s; with the journal off {quiet_creates:.0} \
         ({:+.0} %)",
        (creates / quiet_creates - 1.0) * 100.0
    );
    let quiet_updates = rate(off.push(&quiet_ids, Some(1), &mut mutation).await);
    let updates = rate(bench.push(&ids, Some(1), &mut mutation).await);
    println!(
        "push, updates: {updates:.0} records/s; with the journal off {quiet_updates:.0} \
         ({:+.0} %)",
        (updates / quiet_updates - 1.0) * 100.0
    );
    let names: Vec<String> = (0..devices).map(|d| format!("device-{d}")).collect();
    let pushers: Vec<Pusher> = names
        .iter()
        .map(|name| Pusher {
            host: "many.localhost",
            token: &many_token,
            client_id: name,
            ..bench
        })
        .collect();
    let sets: Vec<Vec<Uuid>> = (0..devices)
        .map(|_| (0..n / devices).map(|_| Uuid::new_v4()).collect())
        .collect();
    let creates = push_at_once(&pushers, &sets, None).await;
    let updates = push_at_once(&pushers, &sets, Some(1)).await;
    println!(
        "push from {devices} devices at once: creates {creates:.0} records/s, \
         updates {updates:.0} records/s"
    );
    let floor = database_floor(&db, &floor, n, batch).await;
    println!(
        "reference, the push's insert (with its triggers) straight on the database, one \
         stream: {floor:.0} records/s"
    );

    // Pull: a full initial sync, in pages of 10,000.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let pulled = pull_all(&http, &base, "bench.localhost", &token).await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "pull, initial sync: {:.0} records/s ({pulled} in {secs:.2} s)",
        pulled as f64 / secs
    );
    let started = Instant::now();
    let pulls = (0..devices).map(|_| pull_all(&http, &base, "bench.localhost", &token));
    let pulled: usize = futures::future::join_all(pulls).await.into_iter().sum();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "pull, initial sync of {devices} devices at once: {:.0} records/s ({pulled} in {secs:.2} s)",
        pulled as f64 / secs
    );

    // Event deliveries: an endpoint for `client.updated` on a receiver in
    // this process, then updates of `events` records, each one event.
    let events = env_or("BENCH_EVENTS", 20_000usize).min(n / 2);
    let (hook, seen) = receiver().await;
    let res = post(
        "/api/v1/webhooks",
        json!({ "url": hook, "event_types": ["client.updated"] }),
    )
    .await
    .expect("endpoint");
    assert!(
        res.status().is_success(),
        "{}",
        res.text().await.unwrap_or_default()
    );
    let push_updates = |from: usize,
                        count: usize,
                        per: usize,
                        base: i64,
                        city: &'static str,
                        mutation: &mut i64| {
        let mut bodies = Vec::new();
        for chunk in ids[from..from + count].chunks(per) {
            let mutations: Vec<Value> = chunk
                .iter()
                .map(|id| {
                    *mutation += 1;
                    json!({ "mutation_id": *mutation, "op": "update", "model": "clients",
                            "id": id, "base_version": base, "fields": { "city": city } })
                })
                .collect();
            bodies.push(json!({ "client_id": "bench", "mutations": mutations }));
        }
        bodies
    };
    let wait_for = async |count: usize| {
        let deadline = Instant::now() + Duration::from_secs(300);
        while seen.lock().expect("seen").len() < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };

    // While changes are made: the dispatcher keeps up with the pushes.
    let started = Instant::now();
    for body in push_updates(0, events, 1_000, 2, "Faro", &mut mutation) {
        let res = post("/api/v1/sync/push", body).await.expect("push");
        assert!(res.status().is_success());
    }
    let pushed = started.elapsed().as_secs_f64();
    wait_for(events).await;
    let secs = started.elapsed().as_secs_f64();
    let mut lags: Vec<f64> = seen.lock().expect("seen").clone();
    lags.sort_by(f64::total_cmp);
    println!(
        "event deliveries while pushing: {:.0} deliveries/s ({} of {events} in {secs:.2} s \
         from the first push; the pushes alone took {pushed:.2} s)",
        lags.len() as f64 / secs,
        lags.len(),
    );
    println!(
        "delivery lag (received − change made): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        common::quantile(&lags, 0.5),
        common::quantile(&lags, 0.99),
        common::quantile(&lags, 1.0),
    );

    // A backlog: paused while the changes are made, then resumed; the
    // dispatcher's own rate.
    let res = post("/api/v1/events/pause", json!({}))
        .await
        .expect("pause");
    assert!(
        res.status().is_success(),
        "{}",
        res.text().await.unwrap_or_default()
    );
    for body in push_updates(events, events, 1_000, 2, "Braga", &mut mutation) {
        let res = post("/api/v1/sync/push", body).await.expect("push");
        assert!(res.status().is_success());
    }
    seen.lock().expect("seen").clear();
    let started = Instant::now();
    let res = post("/api/v1/events/resume", json!({}))
        .await
        .expect("resume");
    assert!(res.status().is_success());
    wait_for(events).await;
    let secs = started.elapsed().as_secs_f64();
    let got = seen.lock().expect("seen").len();
    println!(
        "event deliveries of a backlog after resume: {:.0} deliveries/s ({got} of {events} \
         in {secs:.2} s)",
        got as f64 / secs,
    );

    // A steady 2,000 changes a second (100 every 50 ms) for five seconds:
    // the lag at the rate deliveries must sustain.
    let paced = (events / 2).min(10_000);
    seen.lock().expect("seen").clear();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    for body in push_updates(0, paced, 100, 3, "Evora", &mut mutation) {
        tick.tick().await;
        let res = post("/api/v1/sync/push", body).await.expect("push");
        assert!(res.status().is_success());
    }
    wait_for(paced).await;
    let mut lags: Vec<f64> = seen.lock().expect("seen").clone();
    lags.sort_by(f64::total_cmp);
    println!(
        "delivery lag at a steady 2,000 changes/s ({} of {paced}): p50 {:.0} ms, p99 {:.0} ms, \
         max {:.0} ms",
        lags.len(),
        common::quantile(&lags, 0.5),
        common::quantile(&lags, 0.99),
        common::quantile(&lags, 1.0),
    );
    let (rss, peak) = server.memory();
    println!("server memory: {rss:.0} MiB resident, {peak:.0} MiB peak");

    // The reference: COPY of the same rows into a plain table.
    let pool = db.db.get_postgres_connection_pool();
    sqlx_copy(pool, n).await;
}

/// A webhook receiver answering 204; the lag of each delivery in ms, from
/// the event's time to its arrival.
async fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<f64>>>) {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    let server = HttpServer::new(move || {
        let log = std::sync::Arc::clone(&log);
        App::new().default_service(web::to(move |body: web::Bytes| {
            let log = std::sync::Arc::clone(&log);
            async move {
                #[derive(serde::Deserialize)]
                struct Event {
                    at: chrono::DateTime<chrono::Utc>,
                }
                let now = chrono::Utc::now();
                if let Ok(e) = serde_json::from_slice::<Event>(&body) {
                    let lag = (now - e.at).num_microseconds().unwrap_or(0) as f64 / 1000.0;
                    log.lock().expect("seen").push(lag);
                }
                HttpResponse::NoContent().finish()
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

async fn sqlx_copy(pool: &sea_orm::sqlx::PgPool, n: usize) {
    use sea_orm::sqlx::Executor;
    let mut conn = pool.acquire().await.expect("connection");
    conn.execute(
        "CREATE TABLE public.bench_copy (id uuid PRIMARY KEY, name text, status text, email text, \
         city text, country text, department text)",
    )
    .await
    .expect("table");
    let mut csv = String::with_capacity(n * 100);
    for i in 0..n {
        csv.push_str(&format!(
            "{},Client {i},active,c{i}@example.com,Lisbon,PT,Sales\n",
            Uuid::new_v4()
        ));
    }
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw("COPY public.bench_copy FROM STDIN (FORMAT csv)")
        .await
        .expect("copy");
    copy.send(csv.as_bytes()).await.expect("send");
    copy.finish().await.expect("finish");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "reference, COPY into a plain table: {:.0} rows/s ({n} in {secs:.2} s)",
        n as f64 / secs
    );
    let started = Instant::now();
    let rows: Vec<(String,)> =
        sea_orm::sqlx::query_as("SELECT row_to_json(b)::text FROM public.bench_copy b")
            .fetch_all(&mut *conn)
            .await
            .expect("select");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "reference, SELECT of the same rows as JSON: {:.0} rows/s",
        rows.len() as f64 / secs
    );
}
