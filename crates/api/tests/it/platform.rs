//! Platform operators sign in on the bare base domain only, and their
//! tokens are worthless on tenant hosts (and the other way round).

use reqwest::Method;
use serde_json::json;
use tenancy::testing::TestDb;

use crate::helpers::{spawn_app, tenant_with_admin};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn operators_and_tenant_users_stay_apart() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let hash = domain::password::Password::parse(PASSWORD)
        .expect("password")
        .hash();
    tenancy::operators::create(&db.db, "ops@strata.test", &hash)
        .await
        .expect("operator");
    let app = spawn_app(&db, 2).await;
    let login = |host: &'static str, email: &'static str| {
        app.client
            .post(format!("{}/api/v1/platform/auth/token", app.address))
            .header(reqwest::header::HOST, host)
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
    };

    let res = login("localhost", "ops@strata.test")
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    let op_token = body["access_token"].as_str().expect("token").to_owned();
    assert!(body.get("refresh_token").is_none());

    let list = |host: &'static str, token: String| {
        app.client
            .get(format!("{}/api/v1/platform/tenants", app.address))
            .header(reqwest::header::HOST, host)
            .bearer_auth(token)
            .send()
    };
    let res = list("localhost", op_token.clone()).await.expect("request");
    assert_eq!(res.status(), 200);
    let tenants: serde_json::Value = res.json().await.expect("json");
    assert_eq!(tenants[0]["slug"], "acme");

    // Operators cannot sign in on a tenant host, nor use their token there.
    assert_eq!(
        login("acme.localhost", "ops@strata.test")
            .await
            .expect("request")
            .status(),
        404
    );
    let res = app
        .on("acme", Method::GET, "/api/v1/auth/me")
        .bearer_auth(&op_token)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 401);
    // A tenant user is not an operator.
    let (user_token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    assert_eq!(
        list("localhost", user_token)
            .await
            .expect("request")
            .status(),
        401
    );
    // A tenant user's credentials do not sign in on the platform.
    assert_eq!(
        login("localhost", "admin@acme.test")
            .await
            .expect("request")
            .status(),
        401
    );
}
