//! Sign-in, rotation, reuse detection, logout across instances, and every
//! kind of bad token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use tenancy::testing::TestDb;

use crate::helpers::{TestApp, problem, spawn_app, tenant_with_admin};

const PASSWORD: &str = "correct horse battery";

async fn me(app: &TestApp, slug: &str, token: &str) -> reqwest::Response {
    app.on(slug, Method::GET, "/api/v1/auth/me")
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

async fn refresh(app: &TestApp, slug: &str, token: &str) -> reqwest::Response {
    app.on(slug, Method::POST, "/api/v1/auth/refresh")
        .json(&serde_json::json!({ "refresh_token": token }))
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn login_me_refresh_and_reuse_detection() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;

    let (access, refresh1) = app.tokens("acme", "Admin@Acme.test", PASSWORD).await;
    let res = me(&app, "acme", &access).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["email"], "admin@acme.test");
    assert_eq!(body["roles"], serde_json::json!(["Administrators"]));
    assert!(body.get("password_hash").is_none());

    // Rotation: the new refresh token works, once.
    let res = refresh(&app, "acme", &refresh1).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    let refresh2 = body["refresh_token"].as_str().expect("refresh").to_owned();
    let access2 = body["access_token"].as_str().expect("access").to_owned();
    assert_ne!(refresh1, refresh2);
    assert_eq!(me(&app, "acme", &access2).await.status(), 200);

    // Presenting the rotated token again revokes the whole family.
    let res = refresh(&app, "acme", &refresh1).await;
    assert_eq!(res.status(), 401);
    problem(res).await;
    assert_eq!(refresh(&app, "acme", &refresh2).await.status(), 401);
    assert_eq!(me(&app, "acme", &access2).await.status(), 401);
    assert_eq!(me(&app, "acme", &access).await.status(), 401);

    // A new sign-in is a new session and works.
    let (access3, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    assert_eq!(me(&app, "acme", &access3).await.status(), 200);
}

#[tokio::test]
async fn repeated_failures_are_throttled() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    for _ in 0..5 {
        let res = app.login("acme", "admin@acme.test", "wrong password").await;
        assert_eq!(res.status(), 401);
    }
    let res = app.login("acme", "admin@acme.test", PASSWORD).await;
    assert_eq!(res.status(), 429, "locked even with the right password");
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry > 0 && retry <= 900);
    problem(res).await;
    // Unknown accounts fail the same way as wrong passwords.
    let res = app.login("acme", "nobody@acme.test", PASSWORD).await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn logout_revokes_the_session_on_every_instance() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let one = spawn_app(&db, 2).await;
    let two = spawn_app(&db, 2).await;
    let (access, refresh_token) = one.tokens("acme", "admin@acme.test", PASSWORD).await;
    assert_eq!(me(&two, "acme", &access).await.status(), 200);

    let res = two
        .on("acme", Method::POST, "/api/v1/auth/logout")
        .json(&serde_json::json!({ "refresh_token": refresh_token }))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 204);
    // Every instance refuses as soon as the change notice reaches it
    // (milliseconds; bounded here at 5 s for a loaded machine).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    for app in [&one, &two] {
        while me(app, "acme", &access).await.status() != 401 {
            assert!(std::time::Instant::now() < deadline, "still admitted");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    assert_eq!(refresh(&one, "acme", &refresh_token).await.status(), 401);
}

fn sign(
    header: &serde_json::Value,
    claims: &serde_json::Value,
    alg: jsonwebtoken::Algorithm,
    secret: &str,
) -> String {
    let mut h = jsonwebtoken::Header::new(alg);
    if let Some(kid) = header.get("kid").and_then(|k| k.as_str()) {
        h.kid = Some(kid.to_owned());
    }
    jsonwebtoken::encode(
        &h,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    tenant_with_admin(&db, "other", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let (access, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let secret = tenancy::config::load::<api::configuration::Settings>()
        .expect("settings")
        .auth
        .jwt_secret;

    let parts: Vec<&str> = access.split('.').collect();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
    let now = chrono::Utc::now().timestamp();

    let mut expired = claims.clone();
    expired["exp"] = (now - 120).into();
    let mut tampered_claims = claims.clone();
    tampered_claims["roles"] = serde_json::json!(["Administrators", "Root"]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&tampered_claims).expect("json")),
        parts[2]
    );
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    let cases = [
        (
            "expired",
            sign(
                &serde_json::json!({}),
                &expired,
                jsonwebtoken::Algorithm::HS256,
                &secret,
            ),
        ),
        ("tampered", tampered),
        ("alg none", none),
        (
            "HS512",
            sign(
                &serde_json::json!({}),
                &claims,
                jsonwebtoken::Algorithm::HS512,
                &secret,
            ),
        ),
        (
            "other secret",
            sign(
                &serde_json::json!({}),
                &claims,
                jsonwebtoken::Algorithm::HS256,
                "another-secret-another-secret-another",
            ),
        ),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (what, token) in cases {
        let res = me(&app, "acme", &token).await;
        assert_eq!(res.status(), 401, "{what}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        problem(res).await;
    }
    // No token at all.
    let res = app
        .on("acme", Method::GET, "/api/v1/auth/me")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 401);
    // A token issued on tenant acme's host, sent to tenant other's host.
    assert_eq!(me(&app, "other", &access).await.status(), 401);
    assert_eq!(me(&app, "acme", &access).await.status(), 200);
}
