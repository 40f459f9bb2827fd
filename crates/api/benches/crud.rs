//! CRM API benchmark: requests/s and p99 of list (50 rows), get and create
//! at 16 connections, on one tenant and spread over many, and the server's
//! resident memory under that load.
//!
//! Runs the release `strata-server` named by `SERVER_BIN` as its own
//! process (so its memory is its own); `just bench-crud` builds it. Access
//! tokens are signed with the configured secret for an administrator of
//! each tenant, so the run measures serving, not password hashing.
//! `BENCH_TENANTS` (default 1000) and `BENCH_SECONDS` (default 10) scale it.

mod common;

use api::auth::TokenKeys;
use api::configuration::Settings;
use common::{Req, Server, env_or, load};
use futures::StreamExt;
use reqwest::Method;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tenancy::testing::TestDb;
use tenancy::{NewTenant, Slug, TenantTx};
use uuid::Uuid;

/// One tenant of the run: its host, a token, and its client ids.
#[derive(Clone)]
struct Target {
    host: String,
    token: String,
    ids: Vec<Uuid>,
}

async fn tenant(db: &TestDb, keys: &TokenKeys, slug: &str) -> Target {
    let new =
        NewTenant::new(Slug::parse(slug).expect("slug"), slug, &[], "localhost").expect("tenant");
    let t = db.registry().create(&new).await.expect("create");
    let tx = TenantTx::begin(&db.db, &t).await.expect("tx");
    let rows = tx
        .conn()
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "INSERT INTO clients (id, name, status, email, city, country) \
             SELECT gen_random_uuid(), 'Client ' || n, 'active', 'c' || n || '@example.com', \
                    'Lisbon', 'PT' FROM generate_series(1, 60) n RETURNING id",
        ))
        .await
        .expect("clients");
    tx.commit().await.expect("commit");
    let ids = rows
        .iter()
        .map(|r| r.try_get_by_index::<Uuid>(0).expect("id"))
        .collect();
    let token = keys
        .issue(
            db.administrator(&t).await,
            t.id(),
            Uuid::now_v7(),
            1,
            vec!["Administrators".into()],
        )
        .expect("token");
    Target {
        host: format!("{slug}.localhost"),
        token,
        ids,
    }
}

fn list(targets: Vec<Target>) -> impl Fn(usize) -> Req {
    move |n| {
        let t = &targets[n % targets.len()];
        Req {
            method: Method::GET,
            host: t.host.clone(),
            path: "/api/v1/clients?limit=50".into(),
            token: Some(t.token.clone()),
            body: None,
        }
    }
}

fn get(targets: Vec<Target>) -> impl Fn(usize) -> Req {
    move |n| {
        let t = &targets[n % targets.len()];
        Req {
            method: Method::GET,
            host: t.host.clone(),
            path: format!(
                "/api/v1/clients/{}",
                t.ids[(n / targets.len()) % t.ids.len()]
            ),
            token: Some(t.token.clone()),
            body: None,
        }
    }
}

fn create(targets: Vec<Target>) -> impl Fn(usize) -> Req {
    move |n| {
        let t = &targets[n % targets.len()];
        Req {
            method: Method::POST,
            host: t.host.clone(),
            path: "/api/v1/clients".into(),
            token: Some(t.token.clone()),
            body: Some(serde_json::json!({
                "name": format!("New client {n}"),
                "status": "lead",
                "email": format!("new{n}@example.com"),
                "country": "PT",
            })),
        }
    }
}

#[tokio::main]
async fn main() {
    let tenants: usize = env_or("BENCH_TENANTS", 1000);
    let secs: u64 = env_or("BENCH_SECONDS", 10);
    let Ok(bin) = std::env::var("SERVER_BIN") else {
        eprintln!("SERVER_BIN is not set: run `just bench-crud`");
        return;
    };
    let settings: Settings = tenancy::config::load().expect("configuration");
    let keys = TokenKeys::new(&settings.auth.jwt_secret, 3600, 3600);
    let db = TestDb::new(8).await;
    println!("== CRM API benchmark ({tenants} tenants, {secs} s runs, 16 connections) ==");

    let targets: Vec<Target> = futures::stream::iter(0..tenants)
        .map(|i| {
            let (db, keys) = (&db, &keys);
            async move { tenant(db, keys, &format!("crud-{i:04}")).await }
        })
        .buffered(4)
        .collect()
        .await;
    let one = vec![targets[0].clone()];
    // A tenant whose journal triggers are off: the journal's cost on
    // creates, in the same run.
    let quiet = tenant(&db, &keys, "quiet").await;
    let t = db
        .registry()
        .get(&Slug::parse("quiet").expect("slug"))
        .await
        .expect("quiet tenant");
    let tx = TenantTx::begin(&db.db, &t).await.expect("tx");
    for op in ["insert", "update", "delete"] {
        tx.conn()
            .execute_unprepared(&format!(
                "ALTER TABLE clients DISABLE TRIGGER clients_journal_{op}"
            ))
            .await
            .expect("journal off");
    }
    tx.commit().await.expect("commit");

    common::settle(&db).await;
    let server = Server::start(&bin, &db, 16).await;
    let address = server.address.clone();
    let (rss, _) = server.memory();
    println!("server idle: {rss:.1} MiB resident");

    load(&address, 16, 2, list(one.clone())).await; // warm-up
    let s = load(&address, 16, secs, list(one.clone())).await;
    println!("list 50, one tenant:        {s}");
    let s = load(&address, 16, secs, get(one.clone())).await;
    println!("get, one tenant:            {s}");
    let off = load(&address, 16, secs, create(vec![quiet.clone()])).await;
    let s = load(&address, 16, secs, create(one.clone())).await;
    println!("create, one tenant:         {s}");
    println!("  with the journal off:     {off}");

    // A first pass over every tenant warms each PostgreSQL backend's
    // catalog caches and prepares each tenant's statements, as a
    // long-running server's would be; it is shown, not compared.
    let s = load(&address, 16, secs, list(targets.clone())).await;
    println!("  first pass, cold:         {s}");
    let s = load(&address, 16, secs, get(targets.clone())).await;
    println!("  first pass of get, cold:  {s}");
    let s = load(&address, 16, secs, list(targets.clone())).await;
    println!("list 50, {tenants} tenants:     {s}");
    let s = load(&address, 16, secs, get(targets.clone())).await;
    println!("get, {tenants} tenants:         {s}");
    let s = load(&address, 16, secs, create(targets.clone())).await;
    println!("create, {tenants} tenants:      {s}");
    // The same routes under wrk, an external load generator.
    let host = &one[0].host;
    let token = &one[0].token;
    let id = one[0].ids[0];
    for (what, path) in [
        ("list 50", "/api/v1/clients?limit=50".to_owned()),
        ("get", format!("/api/v1/clients/{id}")),
    ] {
        match common::wrk(&address, host, token, &path, secs) {
            Some(s) => println!("wrk -t2 -c16, {what}, one tenant: {s}"),
            None => println!("wrk not installed: no external figure for {what}"),
        }
    }
    let (rss, peak) = server.memory();
    println!("server under load: {rss:.1} MiB resident, peak {peak:.1} MiB");
    drop(server);

    // The references: the list statement (as the server sends it, its
    // page built as JSON) and a primary-key read, by PostgreSQL alone.
    common::print_statement_reference(
        &db.url,
        "a 50-row page of clients as JSON",
        "SELECT json_agg(t) FROM (SELECT * FROM t_crud_0000.clients \
         ORDER BY created_at, id LIMIT 51) t",
        secs,
    );
    common::print_pgbench_reference(&db.url, secs);
}
