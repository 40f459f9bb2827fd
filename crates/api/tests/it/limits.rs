//! Request limits: per-user, per-tenant and sign-up rates with RateLimit
//! headers, and fair sharing of the database between tenants.

use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tenancy::testing::TestDb;

use crate::helpers::{TestApp, spawn_with, tenant_with_admin};

const PASSWORD: &str = "correct horse battery";

fn header(res: &reqwest::Response, name: &str) -> Option<u64> {
    res.headers().get(name)?.to_str().ok()?.parse().ok()
}

async fn me(app: &TestApp, slug: &str, token: &str) -> reqwest::Response {
    app.on(slug, Method::GET, "/api/v1/auth/me")
        .bearer_auth(token)
        .send()
        .await
        .expect("me")
}

#[tokio::test]
async fn users_and_tenants_are_rate_limited_with_headers() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    tenant_with_admin(&db, "other", PASSWORD).await;
    let mut s = crate::helpers::settings(&db, 4);
    // One token a minute: none comes back while the test runs, however
    // slowly the machine answers.
    s.limits.user_per_minute = 1;
    s.limits.user_burst = 5;
    s.limits.tenant_per_minute = 1;
    s.limits.tenant_burst = 8;
    let app = spawn_with(&s, true).await;
    // Sign-ins are tenant requests too; two users, one per tenant budget.
    let (admin, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let res = app
        .on("acme", Method::POST, "/api/v1/users")
        .bearer_auth(&admin)
        .json(&json!({ "email": "second@acme.test", "full_name": "S", "password": PASSWORD }))
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), 201);
    let (second, _) = app.tokens("acme", "second@acme.test", PASSWORD).await;
    let (other, _) = app.tokens("other", "admin@other.test", PASSWORD).await;

    // The first user spends its burst: the answers count down, then 429.
    let mut remaining = Vec::new();
    let refused = loop {
        let res = me(&app, "acme", &admin).await;
        if res.status() == 429 {
            break res;
        }
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "ratelimit-limit"), Some(5));
        remaining.push(header(&res, "ratelimit-remaining").expect("remaining"));
        assert!(remaining.len() <= 5, "{remaining:?}");
    };
    assert!(remaining.windows(2).all(|w| w[1] < w[0]), "{remaining:?}");
    let retry = header(&refused, "retry-after").expect("retry-after");
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    assert_eq!(header(&refused, "ratelimit-remaining"), Some(0));
    crate::helpers::problem(refused).await;

    // Another user of the tenant still has a budget, until the tenant's
    // (8 requests, 6 already spent) runs out.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(me(&app, "acme", &second).await.status().as_u16());
    }
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // Another tenant is not touched.
    assert_eq!(me(&app, "other", &other).await.status(), 200);
}

#[tokio::test]
async fn sign_ups_are_limited_per_address() {
    let db = TestDb::new(2).await;
    let mut s = crate::helpers::settings(&db, 4);
    s.limits.signup_per_hour = 2;
    s.limits.signup_burst = 2;
    let app = spawn_with(&s, true).await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let res = app
            .client
            .post(format!("{}/api/v1/platform/signup", app.address))
            .header(reqwest::header::HOST, "localhost")
            .json(&json!({
                "slug": format!("newco-{i}"), "display_name": "NewCo",
                "admin_email": format!("boss@newco{i}.test"), "admin_password": PASSWORD,
            }))
            .send()
            .await
            .expect("signup");
        if res.status() == 429 {
            let retry = header(&res, "retry-after").expect("retry-after");
            // One sign-up every 30 minutes.
            assert!(retry > 60 && retry <= 1800, "retry-after {retry}");
        }
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [201, 201, 429, 429]);
}

/// p99 of `xs` (sorted here).
fn p99(xs: &mut [Duration]) -> Duration {
    xs.sort();
    xs[((xs.len() - 1) as f64 * 0.99).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heavy_tenant_does_not_slow_another() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "heavy", PASSWORD).await;
    tenant_with_admin(&db, "light", PASSWORD).await;
    // The default cap: one request per core per tenant (pool of 8).
    // Without it (8 in flight) this p99 was 135-265 ms.
    let app = spawn_with(&crate::helpers::settings(&db, 8), true).await;
    let (heavy, _) = app.tokens("heavy", "admin@heavy.test", PASSWORD).await;
    let (light, _) = app.tokens("light", "admin@light.test", PASSWORD).await;
    let res = app
        .on("light", Method::POST, "/api/v1/clients")
        .bearer_auth(&light)
        .json(&json!({ "name": "Only", "status": "lead" }))
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), 201);
    // The light tenant is measured from a thread and runtime of its own,
    // so the time the load generator spends building bodies is not counted.
    let (address, light_token) = (app.address.clone(), light.clone());
    let lists = move |n: usize| {
        let (address, token) = (address.clone(), light_token.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let client = reqwest::Client::new();
                let mut took = Vec::new();
                for _ in 0..n {
                    let started = Instant::now();
                    let res = client
                        .get(format!("{address}/api/v1/clients?limit=1"))
                        .header(reqwest::header::HOST, "light.localhost")
                        .bearer_auth(&token)
                        .send()
                        .await
                        .expect("list");
                    assert_eq!(res.status(), 200);
                    took.push(started.elapsed());
                }
                took
            })
        })
    };
    let mut quiet = lists(50).join().expect("quiet run");

    // Bounded load: 8 concurrent pushes of 500 new records each, again
    // and again, while the light tenant lists one row at a time.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let push = |round: usize| {
        let (app, heavy, stop) = (&app, &heavy, &stop);
        async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mutations: Vec<Value> = (0..500)
                    .map(|i| {
                        json!({ "mutation_id": n * 500 + i + 1, "op": "create", "model": "clients",
                                "id": uuid::Uuid::now_v7(),
                                "fields": { "name": format!("C{round}-{n}-{i}"), "status": "lead" } })
                    })
                    .collect();
                let res = app
                    .on("heavy", Method::POST, "/api/v1/sync/push")
                    .bearer_auth(heavy)
                    .json(&json!({ "client_id": format!("device-{round}"),
                                   "mutations": mutations }))
                    .send()
                    .await
                    .expect("push");
                assert!(
                    res.status().is_success() || res.status() == 503,
                    "push answered {}",
                    res.status()
                );
                n += 1;
            }
            n
        }
    };
    let load = futures::stream::iter(0..8)
        .map(push)
        .buffer_unordered(8)
        .collect::<Vec<_>>();
    let measure = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let run = lists(200);
        while !run.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        run.join().expect("busy run")
    };
    let (pushes, mut busy) = tokio::join!(load, measure);
    let (quiet, busy) = (p99(&mut quiet), p99(&mut busy));
    eprintln!(
        "light tenant one-row list p99: {quiet:?} alone, {busy:?} beside {} pushes of 500",
        pushes.iter().sum::<usize>()
    );
    assert!(busy < Duration::from_millis(100), "p99 {busy:?}");
}

#[tokio::test]
async fn sign_ups_can_wait_for_e_mail_verification() {
    use sea_orm::ConnectionTrait;

    let db = TestDb::new(2).await;
    let mut s = crate::helpers::settings(&db, 4);
    s.signup.verify_email = true;
    let app = spawn_with(&s, true).await;
    let platform = |path: &str, body: Value| {
        app.client
            .post(format!("{}{path}", app.address))
            .header(reqwest::header::HOST, "localhost")
            .json(&body)
            .send()
    };
    let res = platform(
        "/api/v1/platform/signup",
        json!({ "slug": "newco", "display_name": "NewCo",
                "admin_email": "boss@newco.test", "admin_password": PASSWORD }),
    )
    .await
    .expect("signup");
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["status"], "unverified");

    // Not served, and its name is taken, until verified.
    assert_eq!(
        app.login("newco", "boss@newco.test", PASSWORD)
            .await
            .status(),
        404
    );
    let again = platform(
        "/api/v1/platform/signup",
        json!({ "slug": "newco", "display_name": "Squatter",
                "admin_email": "x@x.test", "admin_password": PASSWORD }),
    )
    .await
    .expect("signup");
    assert_eq!(again.status(), 409);

    // The message waits in the outbox, with the token.
    let row = db
        .db
        .query_one_raw(tenancy::stmt(
            "SELECT recipient, body FROM public.mail_outbox WHERE sent_at IS NULL",
            [],
        ))
        .await
        .expect("outbox")
        .expect("a message");
    let recipient: String = row.try_get_by_index(0).expect("recipient");
    let text: String = row.try_get_by_index(1).expect("body");
    assert_eq!(recipient, "boss@newco.test");
    let token = text
        .split("token=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .expect("a link with the token")
        .to_owned();

    let wrong = platform("/api/v1/platform/signup/verify", json!({ "token": "nope" }))
        .await
        .expect("verify");
    assert_eq!(wrong.status(), 404);
    let res = platform("/api/v1/platform/signup/verify", json!({ "token": token }))
        .await
        .expect("verify");
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.expect("json")["status"], "active");
    assert_eq!(
        app.login("newco", "boss@newco.test", PASSWORD)
            .await
            .status(),
        200
    );
    // A token works once.
    let reused = platform("/api/v1/platform/signup/verify", json!({ "token": token }))
        .await
        .expect("verify");
    assert_eq!(reused.status(), 404);

    // An unverified sign-up whose token expired is removed, name and all.
    let res = platform(
        "/api/v1/platform/signup",
        json!({ "slug": "lapsed", "display_name": "Lapsed",
                "admin_email": "l@lapsed.test", "admin_password": PASSWORD }),
    )
    .await
    .expect("signup");
    assert_eq!(res.status(), 202);
    db.db
        .execute_unprepared(
            "UPDATE public.signup_verifications SET expires_at = now() - interval '1 s'",
        )
        .await
        .expect("expire");
    assert_eq!(db.registry().purge_unverified().await.expect("purge"), 1);
    let slugs: Vec<String> = db
        .registry()
        .list()
        .await
        .expect("list")
        .iter()
        .map(|t| t.slug().to_string())
        .collect();
    assert_eq!(slugs, ["newco"]);
}

#[tokio::test]
async fn instances_share_one_budget_even_with_leases() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let mut s = crate::helpers::settings(&db, 4);
    // 100 requests/s with bursts of 40: each instance leases 4 at a time.
    s.limits.user_per_minute = 6_000;
    s.limits.user_burst = 40;
    let one = spawn_with(&s, true).await;
    let two = spawn_with(&s, true).await;
    let (token, _) = one.tokens("acme", "admin@acme.test", PASSWORD).await;
    let started = Instant::now();
    let mut allowed = 0;
    for n in 0..120 {
        let app = if n % 2 == 0 { &one } else { &two };
        match me(app, "acme", &token).await.status().as_u16() {
            200 => allowed += 1,
            429 => {}
            other => panic!("answered {other}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Never more than the burst and what refilled meanwhile (the sign-in
    // took one too), and not starved either.
    let most = 40 + (100.0 * elapsed).ceil() as usize;
    eprintln!("{allowed} of 120 admitted in {elapsed:.2} s (at most {most})");
    assert!(allowed <= most, "{allowed} admitted, at most {most}");
    assert!(allowed >= 30, "only {allowed} admitted");
}

#[tokio::test]
async fn concurrent_requests_do_not_waste_the_budget() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let mut s = crate::helpers::settings(&db, 8);
    // The defaults: 100 requests/s, bursts of 300 (leases of 10).
    s.limits.user_per_minute = 6_000;
    s.limits.user_burst = 300;
    let app = spawn_with(&s, true).await;
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let statuses: Vec<u16> = futures::stream::iter(0..250)
        .map(|_| {
            let (app, token) = (&app, &token);
            async move { me(app, "acme", token).await.status().as_u16() }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(refused, 0, "{refused} of 250 refused within a burst of 300");
}
