//! No request, under any concurrency, sees another tenant's rows.

use futures::StreamExt;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tenancy::TenantTx;
use tenancy::testing::TestDb;

use crate::helpers::{admin_token, spawn_app};

const TENANTS: usize = 50;
const REQUESTS: usize = 2_000;
const IN_FLIGHT: usize = 128;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_over_many_tenants_never_leak() {
    let db = TestDb::new(4).await;
    // Tenant i holds i + 1 marker branches named after it, so a count or a
    // name from any other tenant is a leak.
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
        slugs.push((slug, admin_token(&db, &tenant).await));
    }

    // A pool of 5 connections for 128 requests in flight: connections are
    // reused across tenants all the time.
    let app = spawn_app(&db, 5).await;
    let leaks = futures::stream::iter(0..REQUESTS)
        .map(|n| {
            // A cheap deterministic shuffle of tenants.
            let i = (n * 7919 + n / 3) % TENANTS;
            let (slug, token) = &slugs[i];
            let app = &app;
            async move {
                let res = app
                    .get_as(&format!("{slug}.localhost"), "/api/v1/tenant/stats", token)
                    .await;
                assert_eq!(res.status(), 200, "{slug}");
                let body: serde_json::Value = res.json().await.expect("json");
                let expected_schema = format!("t_{}", slug.replace('-', "_"));
                let ok = body["tenant"] == slug.as_str()
                    && body["schema"] == expected_schema.as_str()
                    && body["tables"]["branches"] == i as i64 + 1;
                usize::from(!ok)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .fold(0, |acc, leak| async move { acc + leak })
        .await;
    assert_eq!(
        leaks, 0,
        "{leaks} of {REQUESTS} responses showed another tenant"
    );
}
