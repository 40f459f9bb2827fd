//! No request, under any concurrency, sees another tenant's rows.

use futures::StreamExt;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tenancy::TenantTx;
use tenancy::testing::TestDb;

use crate::helpers::{TestApp, admin_token, spawn_app};

const TENANTS: usize = 50;
const REQUESTS: usize = 2_000;
const IN_FLIGHT: usize = 128;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_over_many_tenants_never_leak() {
    let db = TestDb::new(4).await;
    // Tenant i holds i + 1 marker branches named after it, so a count or a
    // name from any other tenant is a leak.
    let slugs = marked_tenants(&db).await;

    // A pool of 5 connections for 128 requests in flight: connections are
    // reused across tenants all the time.
    let app = spawn_app(&db, 5).await;
    let started = std::time::Instant::now();
    let (errors, wrong) = mixed_requests(&db, &app, &slugs).await;
    eprintln!("direct: {REQUESTS} requests in {:?}", started.elapsed());
    assert_eq!(
        (errors, wrong),
        (0, 0),
        "errors, wrong answers of {REQUESTS}"
    );
}

/// Tenants `iso-000`… with i + 1 marker branches each, and a token each.
pub async fn marked_tenants(db: &TestDb) -> Vec<(String, String)> {
    let mut slugs = Vec::with_capacity(TENANTS);
    for i in 0..TENANTS {
        let slug = format!("iso-{i:03}");
        let tenant = db.create_tenant(&slug).await;
        let tx = TenantTx::begin(&db.db, &tenant).await.expect("begin");
        tx.conn()
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO branches (id, name) \
                 SELECT gen_random_uuid(), $1 || '-' || n FROM generate_series(1, $2) n",
                [slug.clone().into(), (i as i32 + 1).into()],
            ))
            .await
            .expect("markers");
        tx.commit().await.expect("commit");
        slugs.push((slug, admin_token(db, &tenant).await));
    }
    slugs
}

/// Reads and writes spread over every tenant, many in flight: (requests
/// that failed, answers that showed another tenant's data). Afterwards each
/// tenant must hold exactly the clients sent to it.
pub async fn mixed_requests(
    db: &TestDb,
    app: &TestApp,
    slugs: &[(String, String)],
) -> (usize, usize) {
    let outcomes: Vec<(usize, Option<usize>, usize, usize)> = futures::stream::iter(0..REQUESTS)
        .map(|n| {
            // A cheap deterministic shuffle of tenants.
            let i = (n * 7919 + n / 3) % TENANTS;
            let (slug, token) = &slugs[i];
            async move {
                let host = format!("{slug}.localhost");
                match n % 3 {
                    0 => {
                        let res = app.get_as(&host, "/api/v1/tenant/stats", token).await;
                        if res.status() != 200 {
                            return (1, None, 0, i);
                        }
                        let body: serde_json::Value = res.json().await.expect("json");
                        let expected_schema = format!("t_{}", slug.replace('-', "_"));
                        let ok = body["tenant"] == slug.as_str()
                            && body["schema"] == expected_schema.as_str()
                            && body["tables"]["branches"] == i as i64 + 1;
                        (0, None, usize::from(!ok), i)
                    }
                    1 => {
                        let res = app.get_as(&host, "/api/v1/branches?limit=100", token).await;
                        if res.status() != 200 {
                            return (1, None, 0, i);
                        }
                        let body: serde_json::Value = res.json().await.expect("json");
                        let names: Vec<&str> = body["items"]
                            .as_array()
                            .map(|a| a.iter().filter_map(|b| b["name"].as_str()).collect())
                            .unwrap_or_default();
                        let ok = names.len() == i + 1
                            && names.iter().all(|n| n.starts_with(&format!("{slug}-")));
                        (0, None, usize::from(!ok), i)
                    }
                    _ => {
                        let res = app
                            .on(slug, reqwest::Method::POST, "/api/v1/clients")
                            .bearer_auth(token)
                            .json(&serde_json::json!({ "name": format!("{slug} client {n}"), "status": "lead" }))
                            .send()
                            .await
                            .expect("create");
                        if res.status() != 201 {
                            return (1, None, 0, i);
                        }
                        (0, Some(i), 0, i)
                    }
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let errors = outcomes.iter().map(|o| o.0).sum();
    let mut wrong: usize = outcomes.iter().map(|o| o.2).sum();
    let registry = db.registry();
    for (i, (slug, _)) in slugs.iter().enumerate() {
        let sent = outcomes.iter().filter(|o| o.1 == Some(i)).count() as i64;
        let tenant = registry
            .get(&tenancy::Slug::parse(slug).expect("slug"))
            .await
            .expect("tenant");
        let tx = TenantTx::begin(&db.db, &tenant).await.expect("begin");
        let row = tx
            .conn()
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT count(*), count(*) FILTER (WHERE starts_with(name, $1)) FROM clients",
                [format!("{slug} client ").into()],
            ))
            .await
            .expect("count")
            .expect("row");
        let all: i64 = row.try_get_by_index(0).expect("all");
        let own: i64 = row.try_get_by_index(1).expect("own");
        tx.commit().await.expect("commit");
        if all != sent || own != sent {
            wrong += 1;
        }
    }
    (errors, wrong)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_transaction_pooling_pgbouncer_nothing_leaks_or_fails() {
    let db = TestDb::new(4).await;
    let slugs = marked_tenants(&db).await;
    // 4 server connections for 128 requests in flight over a pool of 16
    // client connections: every server connection serves every tenant.
    let bouncer = crate::helpers::OwnPgBouncer::start(&db.url, 4);
    let mut s = crate::helpers::settings(&db, 16);
    s.database.url = bouncer.url_for(&db.url);
    s.database.listen_url = Some(db.url.clone());
    s.database.prepared_statements = false;
    let app = crate::helpers::spawn_with(&s, true).await;
    let started = std::time::Instant::now();
    let (errors, wrong) = mixed_requests(&db, &app, &slugs).await;
    eprintln!(
        "through PgBouncer: {REQUESTS} requests in {:?}, {errors} errors, {wrong} wrong answers",
        started.elapsed()
    );
    assert_eq!(
        (errors, wrong),
        (0, 0),
        "errors, wrong answers of {REQUESTS}"
    );
}

/// Reads name the tenant's schema: a schema dropped behind the registry's
/// back is an error for lists, records and stats, never another schema's
/// rows.
#[tokio::test]
async fn a_schema_dropped_behind_the_registry_is_an_error_for_reads() {
    let db = TestDb::new(2).await;
    let tenant = crate::helpers::tenant_with_admin(&db, "acme", "correct horse battery").await;
    let app = spawn_app(&db, 2).await;
    let token = admin_token(&db, &tenant).await;
    let get = |path: &'static str| {
        let req = app
            .on("acme", reqwest::Method::GET, path)
            .bearer_auth(&token);
        async move {
            let res = req.send().await.expect("request");
            (res.status().as_u16(), res.text().await.unwrap_or_default())
        }
    };
    for path in ["/api/v1/clients", "/api/v1/tenant/stats"] {
        assert_eq!(get(path).await.0, 200, "{path}");
    }
    db.db
        .execute_unprepared("DROP SCHEMA t_acme CASCADE")
        .await
        .expect("drop");
    for path in [
        "/api/v1/clients",
        "/api/v1/tenant/stats",
        "/api/v1/clients/01a20d22-7f98-7625-a9b9-3ff6dff3a50e",
    ] {
        let (status, body) = get(path).await;
        assert_eq!(status, 500, "{path}: {body}");
        assert!(
            !body.contains("t_acme"),
            "{path}: says nothing internal: {body}"
        );
    }
}
