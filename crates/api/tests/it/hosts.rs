//! Host → tenant resolution, including hostile hosts.

use tenancy::testing::TestDb;
use tenancy::{NewTenant, Slug};

use crate::helpers::{problem, settings, spawn_app, spawn_with};

#[tokio::test]
async fn subdomains_custom_domains_and_the_platform_domain() {
    let db = TestDb::new(2).await;
    let new = NewTenant::new(
        Slug::parse("acme").expect("slug"),
        "Acme Corp",
        &["crm.acme.io".to_owned()],
        "localhost",
    )
    .expect("tenant");
    db.registry().create(&new).await.expect("create");
    let app = spawn_app(&db, 2).await;

    for host in ["acme.localhost", "ACME.localhost:8080", "crm.acme.io"] {
        let res = app.get(host, "/api/v1/tenant").await;
        assert_eq!(res.status(), 200, "{host}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["slug"], "acme");
        assert_eq!(body["display_name"], "Acme Corp");
        assert_eq!(body["domains"][0]["host"], "crm.acme.io");
        assert_eq!(body["domains"][0]["is_primary"], true);
    }

    // The bare base domain serves platform routes only.
    let res = app.get("localhost", "/api/v1/tenant").await;
    assert_eq!(res.status(), 404);
    let body = problem(res).await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("platform"))
    );

    let res = app.get("nobody.localhost", "/api/v1/tenant").await;
    assert_eq!(res.status(), 404);
    assert_eq!(problem(res).await["code"], "tenant_not_found");
}

#[tokio::test]
async fn hostile_hosts_get_clear_client_errors() {
    let db = TestDb::new(2).await;
    let acme = db.create_tenant("acme").await;
    let app = spawn_app(&db, 2).await;
    let long = format!("{}.localhost", "a".repeat(300));
    let hosts = [
        "a\";drop schema public;--.localhost",
        "pg_catalog.localhost",
        "public.localhost",
        "information_schema.localhost",
        "t_acme.localhost",
        "ACME\u{0301}.localhost",
        "xn--caf-dma.localhost",
        "acme.localhost:notaport",
        "a.localhost",
        "",
        long.as_str(),
    ];
    for host in hosts {
        let res = app
            .client
            .get(format!("{}/api/v1/tenant/stats", app.address))
            .header(reqwest::header::HOST, host.as_bytes())
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        assert!(status == 400 || status == 404, "{host:?} answered {status}");
        let body = problem(res).await;
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            !detail.contains("SQL") && !detail.contains("syntax"),
            "{detail}"
        );
    }
    // The tenant is intact after all that.
    assert_eq!(
        app.get_as(
            "acme.localhost",
            "/api/v1/tenant/stats",
            &crate::helpers::admin_token(&db, &acme).await
        )
        .await
        .status(),
        200
    );
}

#[tokio::test]
async fn tenant_header_only_when_enabled() {
    let db = TestDb::new(2).await;
    db.create_tenant("acme").await;
    let off = spawn_app(&db, 2).await;
    let res = off
        .client
        .get(format!("{}/api/v1/tenant", off.address))
        .header(reqwest::header::HOST, "localhost")
        .header("x-tenant", "acme")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 404);

    let mut s = settings(&db, 2);
    s.tenancy.allow_tenant_header = true;
    let on = spawn_with(&s, true).await;
    let res = on
        .client
        .get(format!("{}/api/v1/tenant", on.address))
        .header(reqwest::header::HOST, "localhost")
        .header("x-tenant", "acme")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
}
