//! A tenant change reaches every server instance within a second.

use std::time::{Duration, Instant};

use tenancy::Slug;
use tenancy::testing::TestDb;

use crate::helpers::{TestApp, spawn_app};

/// Polls `app` until `host` answers `want`; the time it took.
async fn until_status(app: &TestApp, host: &str, want: u16) -> Duration {
    let started = Instant::now();
    loop {
        let got = app.get(host, "/api/v1/tenant").await.status().as_u16();
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{host} still answers {got}, want {want}, after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn suspension_and_deletion_reach_every_instance_within_a_second() {
    let db = TestDb::new(2).await;
    db.create_tenant("acme").await;
    let one = spawn_app(&db, 2).await;
    let two = spawn_app(&db, 2).await;
    let host = "acme.localhost";
    // Warm both caches.
    for app in [&one, &two] {
        for _ in 0..3 {
            assert_eq!(app.get(host, "/api/v1/tenant").await.status(), 200);
        }
    }
    let registry = db.registry();
    let slug = Slug::parse("acme").expect("slug");

    registry.suspend(&slug).await.expect("suspend");
    for app in [&one, &two] {
        until_status(app, host, 403).await;
    }
    let res = one.get(host, "/api/v1/tenant").await;
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["code"], "tenant_suspended");

    registry.resume(&slug).await.expect("resume");
    for app in [&one, &two] {
        until_status(app, host, 200).await;
    }

    registry.delete(&slug).await.expect("delete");
    for app in [&one, &two] {
        until_status(app, host, 404).await;
    }

    // A newly created tenant is not hidden by a cached "unknown host".
    assert_eq!(
        one.get("fresh.localhost", "/api/v1/tenant").await.status(),
        404
    );
    db.create_tenant("fresh").await;
    until_status(&one, "fresh.localhost", 200).await;
}
