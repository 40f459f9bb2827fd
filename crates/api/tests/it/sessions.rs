//! Sessions end when they should, on every instance: demoted, disabled and
//! deleted users and changed passwords; revocations that outlive Redis;
//! operator sessions.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tenancy::testing::TestDb;

use crate::helpers::{OwnRedis, TestApp, spawn_app, tenant_with_admin};

const PASSWORD: &str = "correct horse battery";

async fn me(app: &TestApp, token: &str) -> u16 {
    app.on("acme", Method::GET, "/api/v1/auth/me")
        .bearer_auth(token)
        .send()
        .await
        .expect("me")
        .status()
        .as_u16()
}

/// Creating a user is for Administrators only.
async fn create_user(app: &TestApp, token: &str, email: &str, roles: &[&str]) -> (u16, Value) {
    let res = app
        .on("acme", Method::POST, "/api/v1/users")
        .bearer_auth(token)
        .json(&json!({ "email": email, "full_name": email, "password": PASSWORD, "roles": roles }))
        .send()
        .await
        .expect("create user");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Waits until `check` yields `want`; how long it took. Changes reach
/// other instances when the change's transaction commits; the wait only
/// covers the notification's trip.
async fn refused_within<F, Fut>(want: u16, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let started = Instant::now();
    loop {
        let got = check().await;
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still {got} after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn demoted_disabled_and_deleted_users_are_refused_at_once_on_another_instance() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let one = spawn_app(&db, 2).await;
    let two = spawn_app(&db, 2).await;
    let (admin, _) = one.tokens("acme", "admin@acme.test", PASSWORD).await;

    let mut ids = Vec::new();
    let mut versions = Vec::new();
    for email in [
        "demoted@acme.test",
        "disabled@acme.test",
        "deleted@acme.test",
    ] {
        let (status, body) = create_user(&one, &admin, email, &["Administrators"]).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().expect("id").to_owned());
        versions.push(body["version"].clone());
    }
    let mut tokens = Vec::new();
    for email in [
        "demoted@acme.test",
        "disabled@acme.test",
        "deleted@acme.test",
    ] {
        tokens.push(one.tokens("acme", email, PASSWORD).await.0);
    }
    // Instance two has seen (and cached) all three.
    for token in &tokens {
        assert_eq!(me(&two, token).await, 200);
    }
    let (status, _) = create_user(&two, &tokens[0], "made@acme.test", &["Users"]).await;
    assert_eq!(status, 201);

    // Demoted on instance one: instance two refuses administrator work.
    let res = one
        .on(
            "acme",
            Method::PUT,
            &format!("/api/v1/users/{}/roles", ids[0]),
        )
        .bearer_auth(&admin)
        .json(&json!({ "roles": ["Users"] }))
        .send()
        .await
        .expect("demote");
    assert_eq!(res.status(), 200);
    let took = refused_within(403, || async {
        create_user(&two, &tokens[0], "again@acme.test", &["Administrators"])
            .await
            .0
    })
    .await;
    eprintln!("demotion reached the other instance in {took:?}");
    // Nor can it promote itself back.
    let res = two
        .on(
            "acme",
            Method::PUT,
            &format!("/api/v1/users/{}/roles", ids[0]),
        )
        .bearer_auth(&tokens[0])
        .json(&json!({ "roles": ["Administrators"] }))
        .send()
        .await
        .expect("promote");
    assert_eq!(res.status(), 403);

    // Disabled, then deleted, on instance one: 401 on instance two.
    let res = one
        .on("acme", Method::PATCH, &format!("/api/v1/users/{}", ids[1]))
        .bearer_auth(&admin)
        .json(&json!({ "is_active": false, "version": versions[1] }))
        .send()
        .await
        .expect("disable");
    assert_eq!(res.status(), 200);
    let took = refused_within(401, || me(&two, &tokens[1])).await;
    eprintln!("disabling reached the other instance in {took:?}");

    let res = one
        .on("acme", Method::DELETE, &format!("/api/v1/users/{}", ids[2]))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 204);
    let took = refused_within(401, || me(&two, &tokens[2])).await;
    eprintln!("deletion reached the other instance in {took:?}");

    // The others are untouched.
    assert_eq!(me(&two, &admin).await, 200);
}

#[tokio::test]
async fn a_new_password_ends_every_session_of_the_account() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let one = spawn_app(&db, 2).await;
    let two = spawn_app(&db, 2).await;
    let (admin, _) = one.tokens("acme", "admin@acme.test", PASSWORD).await;
    let (status, body) = create_user(&one, &admin, "reset@acme.test", &["Users"]).await;
    assert_eq!(status, 201);
    let (access, refresh) = one.tokens("acme", "reset@acme.test", PASSWORD).await;
    assert_eq!(me(&two, &access).await, 200);

    let res = one
        .on(
            "acme",
            Method::PATCH,
            &format!("/api/v1/users/{}", body["id"].as_str().expect("id")),
        )
        .bearer_auth(&admin)
        .json(&json!({ "password": "a brand new password", "version": body["version"] }))
        .send()
        .await
        .expect("reset");
    assert_eq!(res.status(), 200);
    refused_within(401, || me(&two, &access)).await;
    // The old refresh token no longer rotates.
    let res = two
        .on("acme", Method::POST, "/api/v1/auth/refresh")
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await
        .expect("refresh");
    assert_eq!(res.status(), 401);
    // The new password signs in.
    let (fresh, _) = two
        .tokens("acme", "reset@acme.test", "a brand new password")
        .await;
    assert_eq!(me(&one, &fresh).await, 200);
    assert_eq!(me(&one, &admin).await, 200);
}

#[tokio::test]
async fn revocations_survive_a_redis_restart_and_need_no_redis() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let Some(mut redis) = OwnRedis::start() else {
        panic!("redis-server could not be started (scripts/test.sh installs it)");
    };
    let mut s = crate::helpers::settings(&db, 2);
    s.redis.url.clone_from(&redis.url);
    let one = crate::helpers::spawn_with(&s, true).await;
    let two = crate::helpers::spawn_with(&s, true).await;
    let (first, first_refresh) = one.tokens("acme", "admin@acme.test", PASSWORD).await;
    let (second, second_refresh) = one.tokens("acme", "admin@acme.test", PASSWORD).await;
    let logout = |app: &TestApp, refresh: &str| {
        app.on("acme", Method::POST, "/api/v1/auth/logout")
            .json(&json!({ "refresh_token": refresh }))
            .send()
    };
    assert_eq!(
        logout(&one, &first_refresh).await.expect("logout").status(),
        204
    );
    refused_within(401, || me(&two, &first)).await;

    // Redis restarts empty (no persistence, as the shipped compose runs it).
    redis.stop();
    // A logout while Redis is down still takes effect everywhere.
    assert_eq!(
        logout(&two, &second_refresh)
            .await
            .expect("logout")
            .status(),
        204
    );
    refused_within(401, || me(&one, &second)).await;
    let _back = redis.restarted();
    for app in [&one, &two] {
        assert_eq!(me(app, &first).await, 401);
        assert_eq!(me(app, &second).await, 401);
    }
    // A fresh instance, which never saw either logout, refuses them too.
    let three = crate::helpers::spawn_with(&s, true).await;
    assert_eq!(me(&three, &first).await, 401);
    assert_eq!(me(&three, &second).await, 401);
}

/// A test database with operator `ops@strata.test`.
async fn with_operator() -> TestDb {
    let db = TestDb::new(2).await;
    let hash = domain::password::Password::parse(PASSWORD)
        .expect("password")
        .hash();
    tenancy::operators::create(&db.db, "ops@strata.test", &hash)
        .await
        .expect("operator");
    db
}

/// An access token of operator `ops@strata.test`, signed in on `app`.
async fn operator_token(app: &TestApp) -> String {
    let res = app
        .client
        .post(format!("{}/api/v1/platform/auth/token", app.address))
        .header(reqwest::header::HOST, "localhost")
        .json(&json!({ "email": "ops@strata.test", "password": PASSWORD }))
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    body["access_token"].as_str().expect("token").to_owned()
}

/// An operator who signs out is refused at once by the server that signed
/// them out, before any notification: here its listener hears another
/// database, so none ever arrives.
#[tokio::test]
async fn an_operator_signed_out_is_refused_at_once_by_the_same_server() {
    let db = with_operator().await;
    let settings = crate::helpers::settings_hearing_nothing(&db, 2);
    let app = crate::helpers::spawn_with(&settings, true).await;
    let token = operator_token(&app).await;
    // Cached by this request.
    let res = app
        .get_as("localhost", "/api/v1/platform/tenants", &token)
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .post(format!("{}/api/v1/platform/auth/logout", app.address))
        .header(reqwest::header::HOST, "localhost")
        .bearer_auth(&token)
        .send()
        .await
        .expect("logout");
    assert_eq!(res.status(), 204);
    let res = app
        .get_as("localhost", "/api/v1/platform/tenants", &token)
        .await;
    assert_eq!(res.status(), 401, "a signed-out operator's token");
}

#[tokio::test]
async fn operator_sessions_can_be_revoked() {
    let db = with_operator().await;
    let one = spawn_app(&db, 2).await;
    let two = spawn_app(&db, 2).await;
    let sign_in = |app: &TestApp| {
        let app = app.clone();
        async move { operator_token(&app).await }
    };
    let tenants = |app: &TestApp, token: String| {
        let app = app.clone();
        async move {
            app.get_as("localhost", "/api/v1/platform/tenants", &token)
                .await
                .status()
                .as_u16()
        }
    };
    let first = sign_in(&one).await;
    let second = sign_in(&one).await;
    assert_eq!(tenants(&two, first.clone()).await, 200);

    // Signing out ends that session only.
    let res = one
        .client
        .post(format!("{}/api/v1/platform/auth/logout", one.address))
        .header(reqwest::header::HOST, "localhost")
        .bearer_auth(&first)
        .send()
        .await
        .expect("logout");
    assert_eq!(res.status(), 204);
    refused_within(401, || tenants(&two, first.clone())).await;
    assert_eq!(tenants(&two, second.clone()).await, 200);

    // `migrator operator revoke` ends all of them.
    assert!(
        tenancy::operators::revoke(&db.db, "ops@strata.test", false)
            .await
            .expect("revoke")
    );
    refused_within(401, || tenants(&two, second.clone())).await;
    let third = sign_in(&two).await;
    assert_eq!(tenants(&one, third.clone()).await, 200);
    // With --disable the operator cannot sign in again either.
    tenancy::operators::revoke(&db.db, "ops@strata.test", true)
        .await
        .expect("disable");
    refused_within(401, || tenants(&one, third.clone())).await;
}
