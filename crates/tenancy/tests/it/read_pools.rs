//! Read pools close connections whose backends grew past their bound.

use sea_orm::ConnectionTrait;
use tenancy::config::DatabaseSettings;
use tenancy::db::ReadPools;
use tenancy::testing::TestDb;

/// One read pool of one connection on `db`, looking at a connection it
/// gets back once every `every_ms`.
fn settings(db: &TestDb, max_mib: u64, every_ms: u64) -> DatabaseSettings {
    DatabaseSettings {
        url: db.url.clone(),
        pool_size: 1,
        acquire_timeout_ms: 5000,
        prepared_statements: true,
        statement_cache: 100,
        read_pools: 1,
        read_pool_size: 1,
        read_plan_cache_mode: "force_generic_plan".into(),
        read_pool_spill: false,
        read_connection_max_mib: max_mib,
        read_connection_check_ms: every_ms,
        statistics_refresh_ms: 0,
        listen_url: None,
    }
}

/// The backend of each of six reads of tenant `acme` through the pools.
async fn backends(db: &TestDb, max_mib: u64, every_ms: u64) -> Vec<i32> {
    let tenant = db
        .registry()
        .find_by_slug(&tenancy::Slug::parse("acme").expect("slug"))
        .await
        .expect("registry")
        .expect("tenant");
    let pools = ReadPools::connect(&settings(db, max_mib, every_ms))
        .await
        .expect("pools");
    let mut pids = Vec::new();
    for _ in 0..6 {
        let row = pools
            .for_tenant(&tenant)
            .query_one_raw(tenancy::stmt(
                "SELECT pg_backend_pid(), (SELECT count(*) FROM t_acme.clients)",
                [],
            ))
            .await
            .expect("read")
            .expect("a row");
        pids.push(row.try_get_by_index(0).expect("pid"));
    }
    pids
}

fn distinct(pids: &[i32]) -> usize {
    pids.iter().collect::<std::collections::HashSet<_>>().len()
}

#[tokio::test]
async fn a_read_connection_grown_past_its_bound_is_replaced() {
    let db = TestDb::new(2).await;
    db.create_tenant("acme").await;
    // Every backend holds more than 1 MiB: each one looked at is closed.
    let every_one = backends(&db, 1, 0).await;
    assert_eq!(distinct(&every_one), 6, "{every_one:?}");
    // Looked at once an hour: the first, closed, then not again.
    let hourly = backends(&db, 1, 3_600_000).await;
    assert_eq!(distinct(&hourly), 2, "{hourly:?}");
    assert_eq!(hourly[1..].iter().collect::<Vec<_>>(), [&hourly[1]; 5]);
    // Under the bound, or with none, the connection stays.
    assert_eq!(distinct(&backends(&db, 1 << 20, 0).await), 1);
    assert_eq!(distinct(&backends(&db, 0, 0).await), 1);
}

/// `url` with its user replaced by `user`.
fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}@{host}")
}

#[tokio::test]
async fn a_role_that_may_not_see_backend_memory_keeps_its_read_connections() {
    let mut db = TestDb::new(2).await;
    db.create_tenant("acme").await;
    let role = format!("strata_reader_{}", uuid::Uuid::new_v4().simple());
    let conn = db.db.clone();
    let sql = move |q: String| {
        let conn = conn.clone();
        async move { conn.execute_unprepared(&q).await.expect(&q) }
    };
    sql(format!("CREATE ROLE {role} LOGIN")).await;
    sql(format!("GRANT USAGE ON SCHEMA t_acme TO {role}")).await;
    sql(format!("GRANT SELECT ON t_acme.clients TO {role}")).await;
    let superuser_url = db.url.clone();
    db.url = as_user(&superuser_url, &role);
    // Every connection would be looked at and be over the bound; none can
    // be, so the one connection serves every read.
    let pids = backends(&db, 1, 0).await;
    db.url = superuser_url;
    sql(format!("DROP OWNED BY {role}")).await;
    sql(format!("DROP ROLE {role}")).await;
    assert_eq!(distinct(&pids), 1, "{pids:?}");
}

/// The backends of two reads of `tenant` made at once, each holding its
/// connection for a moment, after a read of `other` has left a connection
/// idle in its pool.
async fn two_at_once(
    pools: &ReadPools,
    tenant: &tenancy::Tenant,
    other: &tenancy::Tenant,
) -> [i32; 2] {
    let pid = |t: &tenancy::Tenant, sql: &'static str| {
        let db = pools.for_tenant(t);
        async move {
            let row = db
                .query_one_raw(tenancy::stmt(sql, []))
                .await
                .expect("read")
                .expect("a row");
            row.try_get_by_index::<i32>(0).expect("pid")
        }
    };
    pid(other, "SELECT pg_backend_pid()").await;
    let slow = "SELECT pg_backend_pid() FROM pg_sleep(0.3)";
    let first = pid(tenant, slow);
    // The second read is routed once the first holds its pool's connection.
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        pid(tenant, slow).await
    };
    let (a, b) = tokio::join!(first, second);
    [a, b]
}

#[tokio::test]
async fn a_tenant_s_reads_stay_on_its_own_pool_unless_spilling_is_on() {
    let db = TestDb::new(2).await;
    // Two tenants whose reads belong to different pools of two.
    let tenant = db.create_tenant("acme").await;
    let mut other = db.create_tenant("bravo").await;
    for slug in ["charlie", "delta", "echo", "foxtrot", "golf", "hotel"] {
        if other.id().as_u128() % 2 != tenant.id().as_u128() % 2 {
            break;
        }
        other = db.create_tenant(slug).await;
    }
    assert_ne!(other.id().as_u128() % 2, tenant.id().as_u128() % 2);
    let mut strict = settings(&db, 0, 0);
    strict.read_pools = 2;
    strict.read_pool_spill = false;
    let pools = ReadPools::connect(&strict).await.expect("pools");
    let [a, b] = two_at_once(&pools, &tenant, &other).await;
    assert_eq!(a, b, "the second read waited for its own pool's connection");
    let spilling = DatabaseSettings {
        read_pool_spill: true,
        ..strict
    };
    let pools = ReadPools::connect(&spilling).await.expect("pools");
    let [a, b] = two_at_once(&pools, &tenant, &other).await;
    assert_ne!(
        a, b,
        "the second read took the other pool's idle connection"
    );
}
