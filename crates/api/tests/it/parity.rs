//! One rule, one place: the same input through REST, a native sync push and
//! a WatermelonDB push is stored identically or refused with the same field
//! errors, for every model and every field a client writes; and every role
//! gets the same answer from REST and sync for every model and operation,
//! row filters and server-owned fields included.
//!
//! The cases are generated from the models' descriptions in `domain`, so a
//! field added to an entity is covered here without a change.

use std::collections::{BTreeMap, BTreeSet};

use domain::record::{Format, Kind, Owner, Spec};
use reqwest::Method;
use serde_json::{Map, Value, json};
use tenancy::testing::TestDb;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app, tenant_with_admin};

const PASSWORD: &str = "correct horse battery";

struct Caller<'a> {
    app: &'a TestApp,
    token: String,
}

impl Caller<'_> {
    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut req = self.app.on("acme", method, path).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

/// What became of one input.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// Stored; the record as REST shows it, normalised.
    Stored(String),
    /// Refused with these (field, message) pairs.
    Refused(BTreeSet<(String, String)>),
}

/// A unique token per send, so values that must be unique (e-mails) differ
/// between paths yet compare equal.
struct Tokens(u32);

impl Tokens {
    fn next(&mut self) -> String {
        self.0 += 1;
        format!("zq{}zq", self.0)
    }
}

fn fill(value: &Value, token: &str) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace("{n}", token)),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), fill(v, token))).collect())
        }
        other => other.clone(),
    }
}

/// The stored record without what differs by construction between two
/// sends: ids, timestamps and the per-send token.
fn normalised(record: &Value, token: &str) -> String {
    let mut r = record.as_object().cloned().unwrap_or_default();
    for key in ["id", "created_at", "updated_at"] {
        r.remove(key);
    }
    if let Some(v) = r.get_mut("completed_at") {
        *v = Value::Bool(!v.is_null());
    }
    let text = Value::Object(r).to_string();
    text.replace(token, "{n}")
}

fn refusal(pairs: impl IntoIterator<Item = (String, String)>) -> Answer {
    Answer::Refused(pairs.into_iter().collect())
}

/// "field: message" as sync reports it.
fn split(errors: &Value) -> Answer {
    refusal(errors.as_array().into_iter().flatten().filter_map(|e| {
        let (f, m) = e.as_str()?.split_once(": ")?;
        Some((f.to_owned(), m.to_owned()))
    }))
}

struct World<'a> {
    admin: Caller<'a>,
    /// An existing record's id per referencing field.
    refs: BTreeMap<&'static str, String>,
    tokens: Tokens,
    mutation: i64,
}

impl World<'_> {
    fn path(spec: &Spec) -> String {
        format!("/api/v1/{}", spec.name())
    }

    /// A valid value of `kind` for field `name`.
    fn valid(&self, name: &str, kind: Kind) -> Value {
        match kind {
            Kind::Uuid => self
                .refs
                .get(name)
                .cloned()
                .map_or(Value::Null, Value::String),
            Kind::Text {
                format: Format::Email,
                ..
            } => json!(" Ann.{n}@Example.COM "),
            Kind::Text {
                format: Format::Country,
                ..
            } => json!("no"),
            Kind::Text { .. } => json!("  Some {n} value "),
            Kind::Bool => json!(false),
            Kind::Date => json!("2026-12-01"),
            Kind::Choice(set) => json!(set[set.len() - 1]),
            Kind::Timestamp => json!("2026-12-01T10:00:00Z"),
            Kind::Version => json!(1),
            Kind::Custom => json!({}),
        }
    }

    /// The cases of one field: (label, value or absent).
    fn cases(&self, name: &str, kind: Kind) -> Vec<(String, Option<Value>)> {
        let mut out = vec![
            ("valid".to_owned(), Some(self.valid(name, kind))),
            ("null".to_owned(), Some(Value::Null)),
            ("missing".to_owned(), None),
        ];
        let wrong = match kind {
            Kind::Bool => json!("yes"),
            _ => json!(5),
        };
        out.push(("wrong type".into(), Some(wrong)));
        match kind {
            Kind::Uuid => out.push(("invalid".into(), Some(json!("not-a-uuid")))),
            Kind::Text { max, format, .. } => {
                let long = match format {
                    Format::Email => format!("{}@b.io", "a".repeat(max)),
                    _ => "x".repeat(max + 1),
                };
                out.push(("too long".into(), Some(json!(long))));
                out.push(("blank".into(), Some(json!("  "))));
                out.push(("NUL".into(), Some(json!("a\u{0}b"))));
                let invalid = match format {
                    Format::Email => json!("not an address"),
                    Format::Country => json!("Norway"),
                    Format::Plain => json!("tab\tand\u{7}bell"),
                };
                out.push(("invalid".into(), Some(invalid)));
            }
            Kind::Date => out.push(("invalid".into(), Some(json!("2026-13-01")))),
            Kind::Choice(_) => out.push(("unknown choice".into(), Some(json!("weird")))),
            Kind::Custom => {
                out.push(("unknown key".into(), Some(json!({"nope": 1}))));
                out.push(("NUL key".into(), Some(json!({"a\u{0}": 1}))));
            }
            _ => {}
        }
        out
    }

    /// A valid create body of `spec` without `skip`.
    fn base(&self, spec: &Spec, skip: &str) -> Map<String, Value> {
        let mut body = Map::new();
        for f in &spec.fields {
            let writable = matches!(f.owner, Owner::Client | Owner::CreateOnly);
            if f.name == skip || !writable || f.nullable || f.initial.is_some() {
                continue;
            }
            body.insert(f.name.to_owned(), self.valid(f.name, f.kind));
        }
        if spec.name() == "notes" && skip != "client_id" && skip != "task_id" {
            body.insert("client_id".into(), self.valid("client_id", Kind::Uuid));
        }
        body
    }

    async fn fetch(&self, spec: &Spec, id: &str, token: &str) -> Answer {
        let (s, record) = self
            .admin
            .send(Method::GET, &format!("{}/{id}", Self::path(spec)), None)
            .await;
        assert_eq!(s, 200, "{record}");
        Answer::Stored(normalised(&record, token))
    }

    async fn rest_create(&mut self, spec: &Spec, body: &Map<String, Value>) -> Answer {
        let token = self.tokens.next();
        let body = fill(&Value::Object(body.clone()), &token);
        let (s, res) = self
            .admin
            .send(Method::POST, &Self::path(spec), Some(&body))
            .await;
        match s {
            201 => {
                self.fetch(spec, res["id"].as_str().expect("id"), &token)
                    .await
            }
            400 | 422 => refusal(res["errors"].as_array().into_iter().flatten().map(|e| {
                (
                    e["field"].as_str().unwrap_or_default().to_owned(),
                    e["message"].as_str().unwrap_or_default().to_owned(),
                )
            })),
            _ => panic!("REST create {}: {s} {res}", spec.name()),
        }
    }

    async fn push_create(&mut self, spec: &Spec, body: &Map<String, Value>) -> Answer {
        let token = self.tokens.next();
        let id = Uuid::new_v4();
        self.mutation += 1;
        let mutation = json!({ "mutation_id": self.mutation, "op": "create", "model": spec.name(),
            "id": id, "fields": fill(&Value::Object(body.clone()), &token) });
        let (s, res) = self
            .admin
            .send(
                Method::POST,
                "/api/v1/sync/push",
                Some(&json!({ "client_id": "parity", "mutations": [mutation] })),
            )
            .await;
        assert_eq!(s, 200, "{res}");
        let result = &res["results"][0];
        match result["status"].as_str() {
            Some("created") => self.fetch(spec, &id.to_string(), &token).await,
            Some("failed") => split(&result["errors"]),
            _ => panic!("push create {}: {res}", spec.name()),
        }
    }

    async fn watermelon_create(&mut self, spec: &Spec, body: &Map<String, Value>) -> Answer {
        let token = self.tokens.next();
        let id = Uuid::new_v4();
        let mut record = fill(&Value::Object(body.clone()), &token);
        record["id"] = json!(id);
        let changes = json!({ spec.name(): { "created": [record], "updated": [], "deleted": [] } });
        let (s, res) = self
            .admin
            .send(
                Method::POST,
                "/api/v1/sync/watermelon/push",
                Some(&json!({ "changes": changes, "last_pulled_at": null })),
            )
            .await;
        match s {
            200 if res["rejected"].as_array().is_some_and(|r| !r.is_empty()) => {
                assert_eq!(
                    res["experimentalRejectedIds"][spec.name()],
                    json!([id]),
                    "{res}"
                );
                split(&res["rejected"][0]["errors"])
            }
            200 => self.fetch(spec, &id.to_string(), &token).await,
            _ => panic!("watermelon create {}: {s} {res}", spec.name()),
        }
    }

    /// A fresh record of `spec` made over REST with the send's `token`:
    /// (id, version).
    async fn record(&mut self, spec: &Spec, token: &str) -> (String, i64) {
        let body = fill(&Value::Object(self.base(spec, "")), token);
        let (s, res) = self
            .admin
            .send(Method::POST, &Self::path(spec), Some(&body))
            .await;
        assert_eq!(s, 201, "{res}");
        (
            res["id"].as_str().expect("id").to_owned(),
            res["version"].as_i64().expect("v"),
        )
    }

    async fn rest_update(&mut self, spec: &Spec, field: &str, value: &Value) -> Answer {
        let token = self.tokens.next();
        let (id, version) = self.record(spec, &token).await;
        let body = json!({ field: fill(value, &token), "version": version });
        let (s, res) = self
            .admin
            .send(
                Method::PATCH,
                &format!("{}/{id}", Self::path(spec)),
                Some(&body),
            )
            .await;
        match s {
            200 => self.fetch(spec, &id, &token).await,
            400 | 422 => refusal(res["errors"].as_array().into_iter().flatten().map(|e| {
                (
                    e["field"].as_str().unwrap_or_default().to_owned(),
                    e["message"].as_str().unwrap_or_default().to_owned(),
                )
            })),
            _ => panic!("REST update {}.{field}: {s} {res}", spec.name()),
        }
    }

    async fn push_update(&mut self, spec: &Spec, field: &str, value: &Value) -> Answer {
        let token = self.tokens.next();
        let (id, version) = self.record(spec, &token).await;
        self.mutation += 1;
        let mutation = json!({ "mutation_id": self.mutation, "op": "update", "model": spec.name(),
            "id": id, "base_version": version, "fields": { field: fill(value, &token) } });
        let (s, res) = self
            .admin
            .send(
                Method::POST,
                "/api/v1/sync/push",
                Some(&json!({ "client_id": "parity", "mutations": [mutation] })),
            )
            .await;
        assert_eq!(s, 200, "{res}");
        let result = &res["results"][0];
        match result["status"].as_str() {
            Some("updated") => self.fetch(spec, &id, &token).await,
            Some("failed") => split(&result["errors"]),
            _ => panic!("push update {}.{field}: {res}", spec.name()),
        }
    }
}

#[tokio::test]
async fn every_writer_stores_or_refuses_alike() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let admin = Caller { app: &app, token };

    // Records that reference fields point at.
    let (_, me) = admin.send(Method::GET, "/api/v1/auth/me", None).await;
    let mut refs = BTreeMap::new();
    let user = me["id"].as_str().expect("id").to_owned();
    refs.insert("assigned_manager_id", user.clone());
    refs.insert("assignee_id", user);
    let (_, branch) = admin
        .send(
            Method::POST,
            "/api/v1/branches",
            Some(&json!({ "name": "HQ" })),
        )
        .await;
    refs.insert("branch_id", branch["id"].as_str().expect("id").to_owned());
    let (_, client) = admin
        .send(
            Method::POST,
            "/api/v1/clients",
            Some(&json!({ "name": "Initech" })),
        )
        .await;
    refs.insert("client_id", client["id"].as_str().expect("id").to_owned());
    let (_, task) = admin
        .send(
            Method::POST,
            "/api/v1/tasks",
            Some(&json!({ "title": "Call" })),
        )
        .await;
    refs.insert("task_id", task["id"].as_str().expect("id").to_owned());

    let mut world = World {
        admin,
        refs,
        tokens: Tokens(0),
        mutation: 0,
    };
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for spec in domain::models() {
        for field in spec
            .fields
            .iter()
            .filter(|f| matches!(f.owner, Owner::Client | Owner::CreateOnly))
        {
            for (label, value) in world.cases(field.name, field.kind) {
                let mut body = world.base(spec, field.name);
                if let Some(v) = &value {
                    body.insert(field.name.to_owned(), v.clone());
                }
                let rest = world.rest_create(spec, &body).await;
                let native = world.push_create(spec, &body).await;
                let melon = world.watermelon_create(spec, &body).await;
                for (path, answer) in [("native push", &native), ("watermelon push", &melon)] {
                    compared += 1;
                    if *answer != rest {
                        mismatches.push(format!(
                            "create {}.{} ({label}): REST {rest:?} but {path} {answer:?}",
                            spec.name(),
                            field.name
                        ));
                    }
                }
                let Some(value) = value.filter(|_| field.owner == Owner::Client) else {
                    continue;
                };
                let rest = world.rest_update(spec, field.name, &value).await;
                let native = world.push_update(spec, field.name, &value).await;
                compared += 1;
                if native != rest {
                    mismatches.push(format!(
                        "update {}.{} ({label}): REST {rest:?} but native push {native:?}",
                        spec.name(),
                        field.name
                    ));
                }
            }
        }
    }
    assert!(compared > 300, "{compared} comparisons");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[tokio::test]
async fn completion_and_searches_follow_one_rule() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let admin = Caller { app: &app, token };

    // A task pushed as done is completed, as over REST; leaving done clears it.
    let id = Uuid::new_v4();
    let (s, res) = admin
        .send(
            Method::POST,
            "/api/v1/sync/push",
            Some(&json!({ "client_id": "c1", "mutations": [
                { "mutation_id": 1, "op": "create", "model": "tasks", "id": id,
                  "fields": { "title": "Done already", "status": "done",
                              "completed_at": null, "created_by": Uuid::new_v4() } }
            ] })),
        )
        .await;
    assert_eq!(
        (s, res["results"][0]["status"].clone()),
        (200, json!("created")),
        "{res}"
    );
    let (_, task) = admin
        .send(Method::GET, &format!("/api/v1/tasks/{id}"), None)
        .await;
    assert!(task["completed_at"].is_string(), "{task}");
    let (_, me) = admin.send(Method::GET, "/api/v1/auth/me", None).await;
    assert_eq!(task["created_by"], me["id"], "the author is the pusher");
    let first = task["completed_at"].clone();
    // Saving it again as done keeps the completion time.
    let (s, res) = admin
        .send(
            Method::POST,
            "/api/v1/sync/push",
            Some(&json!({ "client_id": "c1", "mutations": [
                { "mutation_id": 2, "op": "update", "model": "tasks", "id": id, "base_version": 1,
                  "fields": { "status": "done", "title": "Done, renamed" } },
                { "mutation_id": 3, "op": "update", "model": "tasks", "id": id, "base_version": 2,
                  "fields": { "status": "open" } }
            ] })),
        )
        .await;
    assert_eq!(s, 200, "{res}");
    assert_eq!(res["summary"]["tasks"]["updated"], 2, "{res}");
    let (_, task) = admin
        .send(Method::GET, &format!("/api/v1/tasks/{id}"), None)
        .await;
    assert!(task["completed_at"].is_null(), "{task}");
    let (_, task) = admin
        .send(
            Method::PATCH,
            &format!("/api/v1/tasks/{id}"),
            Some(&json!({ "status": "done", "version": 3 })),
        )
        .await;
    assert!(
        task["completed_at"].is_string() && task["completed_at"] != first,
        "{task}"
    );

    // `%` and `_` match themselves in every search.
    for name in ["50% off", "50 percent off", "a_b", "axb"] {
        let (s, _) = admin
            .send(
                Method::POST,
                "/api/v1/clients",
                Some(&json!({ "name": name })),
            )
            .await;
        assert_eq!(s, 201);
        let (s, _) = admin
            .send(
                Method::POST,
                "/api/v1/users",
                Some(
                    &json!({ "email": format!("{}@x.io", name.replace([' ', '%'], "")),
                              "full_name": name }),
                ),
            )
            .await;
        assert_eq!(s, 201);
    }
    for (path, q, want) in [
        ("/api/v1/clients", "50%25", "50% off"),
        ("/api/v1/clients", "a_b", "a_b"),
        ("/api/v1/users", "50%25", "50% off"),
        ("/api/v1/users", "a_b", "a_b"),
    ] {
        let (s, page) = admin
            .send(Method::GET, &format!("{path}?q={q}"), None)
            .await;
        assert_eq!(s, 200, "{page}");
        let names: Vec<&str> = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|r| r["name"].as_str().or(r["full_name"].as_str()))
            .collect();
        assert_eq!(names, [want], "{path}?q={q}");
    }
}

/// How a path answered an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Allowed,
    Forbidden,
    NotVisible,
}

fn rest_access(status: u16, body: &Value) -> Access {
    match status {
        200..=299 => Access::Allowed,
        403 => Access::Forbidden,
        404 => Access::NotVisible,
        _ => panic!("unexpected REST answer {status}: {body}"),
    }
}

fn push_access(status: u16, body: &Value) -> Access {
    match (status, body["results"][0]["status"].as_str()) {
        (403, _) => Access::Forbidden,
        (200, Some("created" | "updated" | "deleted")) => Access::Allowed,
        (200, Some("failed")) if body["results"][0]["errors"][0] == "no such record" => {
            Access::NotVisible
        }
        _ => panic!("unexpected push answer {status}: {body}"),
    }
}

impl Caller<'_> {
    async fn push_one(&self, client: &str, mutation: Value) -> (u16, Value) {
        self.send(
            Method::POST,
            "/api/v1/sync/push",
            Some(&json!({ "client_id": client, "mutations": [mutation] })),
        )
        .await
    }

    /// Ids of `model` the caller reads over REST (every page).
    async fn rest_ids(&self, model: &str) -> BTreeSet<String> {
        let (s, page) = self
            .send(Method::GET, &format!("/api/v1/{model}?limit=500"), None)
            .await;
        assert_eq!(s, 200, "{page}");
        page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect()
    }

    /// Ids of `model` a full pull delivers.
    async fn pulled_ids(&self, model: &str) -> BTreeSet<String> {
        let (s, page) = self
            .send(
                Method::POST,
                "/api/v1/sync/pull",
                Some(&json!({ "models": [model], "limit": 10000 })),
            )
            .await;
        assert_eq!(s, 200, "{page}");
        page["changes"][model]["created"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                page["changes"][model]["updated"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            )
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect()
    }
}

#[tokio::test]
async fn rest_and_sync_answer_every_role_alike() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let admin = Caller { app: &app, token };
    let (_, me) = admin.send(Method::GET, "/api/v1/auth/me", None).await;
    let (_, client) = admin
        .send(
            Method::POST,
            "/api/v1/clients",
            Some(&json!({ "name": "Initech" })),
        )
        .await;
    let mut world = World {
        admin,
        refs: BTreeMap::from([
            ("client_id", client["id"].as_str().expect("id").to_owned()),
            (
                "assigned_manager_id",
                me["id"].as_str().expect("id").to_owned(),
            ),
            ("assignee_id", me["id"].as_str().expect("id").to_owned()),
        ]),
        tokens: Tokens(0),
        mutation: 0,
    };

    let mut callers = Vec::new();
    for (i, role) in domain::roles::SEEDED.iter().enumerate() {
        let email = format!("role{i}@acme.test");
        let (s, body) = world
            .admin
            .send(
                Method::POST,
                "/api/v1/users",
                Some(&json!({ "email": email, "full_name": role, "password": PASSWORD, "roles": [role] })),
            )
            .await;
        assert_eq!(s, 201, "{body}");
        let (token, _) = app.tokens("acme", &email, PASSWORD).await;
        callers.push((*role, Caller { app: &app, token }));
    }

    let mut differences = Vec::new();
    let mut checked = 0;
    for (role, caller) in &callers {
        for spec in domain::models() {
            let name = spec.name();
            let path = World::path(spec);
            let mut compare = |op: &str, rest: Access, sync: Access| {
                checked += 1;
                if rest != sync {
                    differences.push(format!("{role} {op} {name}: REST {rest:?}, sync {sync:?}"));
                }
            };
            // Read: a list against a pull.
            let (s, body) = caller.send(Method::GET, &path, None).await;
            let rest = rest_access(s, &body);
            let (s, body) = caller
                .send(
                    Method::POST,
                    "/api/v1/sync/pull",
                    Some(&json!({ "models": [name] })),
                )
                .await;
            let sync = match s {
                200 => Access::Allowed,
                403 => Access::Forbidden,
                _ => panic!("pull {s}: {body}"),
            };
            compare("read", rest, sync);

            // Create.
            let token = world.tokens.next();
            let body = fill(&Value::Object(world.base(spec, "")), &token);
            let (s, res) = caller.send(Method::POST, &path, Some(&body)).await;
            let rest = rest_access(s, &res);
            let token = world.tokens.next();
            let fields = fill(&Value::Object(world.base(spec, "")), &token);
            let (s, res) = caller
                .push_one(
                    role,
                    json!({ "mutation_id": world.mutation + 1, "op": "create", "model": name,
                            "id": Uuid::new_v4(), "fields": fields }),
                )
                .await;
            world.mutation += 1;
            compare("create", rest, push_access(s, &res));

            // Update and delete, each on a fresh record the admin made.
            for op in ["update", "delete"] {
                let token = world.tokens.next();
                let (a, va) = world.record(spec, &token).await;
                let token = world.tokens.next();
                let (b, vb) = world.record(spec, &token).await;
                let item = format!("{path}/{a}");
                let (s, res) = if op == "update" {
                    caller
                        .send(Method::PATCH, &item, Some(&json!({ "version": va })))
                        .await
                } else {
                    caller.send(Method::DELETE, &item, None).await
                };
                let rest = rest_access(s, &res);
                world.mutation += 1;
                let (s, res) = caller
                    .push_one(
                        role,
                        json!({ "mutation_id": world.mutation, "op": op, "model": name,
                                "id": b, "base_version": vb }),
                    )
                    .await;
                compare(op, rest, push_access(s, &res));
            }
        }
    }
    assert!(checked >= 7 * 6 * 4, "{checked}");
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[tokio::test]
async fn row_filters_and_server_owned_fields_hold_on_every_path() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let admin = Caller { app: &app, token };
    let (s, sales) = admin
        .send(
            Method::POST,
            "/api/v1/users",
            Some(&json!({ "email": "sam@acme.test", "full_name": "Sam", "password": PASSWORD, "roles": ["Sales"] })),
        )
        .await;
    assert_eq!(s, 201, "{sales}");
    let sales_id = sales["id"].as_str().expect("id").to_owned();
    let (token, _) = app.tokens("acme", "sam@acme.test", PASSWORD).await;
    let sam = Caller { app: &app, token };

    // Sales reach only the clients they manage, and no notes at all.
    let (s, body) = admin
        .send(
            Method::POST,
            "/api/v1/sync/filters",
            Some(&json!({ "role": "Sales", "model": "clients", "field": "assigned_manager_id", "operator": "eq", "value": "$user" })),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = admin
        .send(
            Method::PUT,
            "/api/v1/sync/permissions",
            Some(&json!([{ "role": "Sales", "model": "notes", "can_pull": false, "can_push": false }])),
        )
        .await;
    assert_eq!(s, 200, "{body}");

    let (_, mine) = admin
        .send(
            Method::POST,
            "/api/v1/clients",
            Some(&json!({ "name": "Mine", "assigned_manager_id": sales_id })),
        )
        .await;
    let (_, theirs) = admin
        .send(
            Method::POST,
            "/api/v1/clients",
            Some(&json!({ "name": "Theirs" })),
        )
        .await;
    let (mine, theirs) = (
        mine["id"].as_str().expect("id").to_owned(),
        theirs["id"].as_str().expect("id").to_owned(),
    );

    // Lists and pulls show the same rows.
    let listed = sam.rest_ids("clients").await;
    assert_eq!(listed, BTreeSet::from([mine.clone()]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let pulled = sam.pulled_ids("clients").await;
        if pulled == listed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pulled {pulled:?}, listed {listed:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // A colleague's client is not there, on any path.
    let (s, _) = sam
        .send(Method::GET, &format!("/api/v1/clients/{theirs}"), None)
        .await;
    assert_eq!(s, 404);
    let (s, _) = sam
        .send(
            Method::PATCH,
            &format!("/api/v1/clients/{theirs}"),
            Some(&json!({ "name": "Hijacked", "version": 1 })),
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = sam
        .send(Method::DELETE, &format!("/api/v1/clients/{theirs}"), None)
        .await;
    assert_eq!(s, 404);
    let (s, res) = sam
        .push_one(
            "sam-1",
            json!({ "mutation_id": 1, "op": "update", "model": "clients", "id": theirs,
                    "base_version": 1, "fields": { "name": "Hijacked" } }),
        )
        .await;
    assert_eq!(push_access(s, &res), Access::NotVisible, "{res}");

    // Creating outside the rows, or moving a row out of them, is refused
    // alike.
    let outside = json!({ "name": "Not mine" });
    let (s, rest) = sam
        .send(Method::POST, "/api/v1/clients", Some(&outside))
        .await;
    assert_eq!(s, 422, "{rest}");
    let (_, sync) = sam
        .push_one(
            "sam-1",
            json!({ "mutation_id": 2, "op": "create", "model": "clients", "id": Uuid::new_v4(), "fields": outside }),
        )
        .await;
    let rest_msg = format!(
        "{}: {}",
        rest["errors"][0]["field"].as_str().unwrap_or_default(),
        rest["errors"][0]["message"].as_str().unwrap_or_default()
    );
    assert_eq!(sync["results"][0]["errors"][0], json!(rest_msg), "{sync}");
    let (s, rest) = sam
        .send(
            Method::PATCH,
            &format!("/api/v1/clients/{mine}"),
            Some(&json!({ "assigned_manager_id": null, "version": 1 })),
        )
        .await;
    assert_eq!(s, 422, "{rest}");
    let (_, sync) = sam
        .push_one(
            "sam-1",
            json!({ "mutation_id": 3, "op": "update", "model": "clients", "id": mine,
                    "base_version": 1, "fields": { "assigned_manager_id": null } }),
        )
        .await;
    assert_eq!(sync["results"][0]["errors"][0], json!(rest_msg), "{sync}");
    assert_eq!(
        sam.rest_ids("clients").await,
        BTreeSet::from([mine.clone()])
    );

    // Notes switched off for Sales: off on every path.
    let (s, _) = sam.send(Method::GET, "/api/v1/notes", None).await;
    assert_eq!(s, 403);
    let (s, _) = sam
        .send(
            Method::POST,
            "/api/v1/notes",
            Some(&json!({ "body": "x", "client_id": mine })),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = sam
        .send(
            Method::POST,
            "/api/v1/sync/pull",
            Some(&json!({ "models": ["notes"] })),
        )
        .await;
    assert_eq!(s, 403);

    // Server-owned fields: REST refuses them, sync drops them; either way
    // the server's value is stored.
    let forged = Uuid::new_v4();
    let (s, res) = sam
        .send(
            Method::POST,
            "/api/v1/tasks",
            Some(&json!({ "title": "T", "created_by": forged, "completed_at": "2020-01-01T00:00:00Z" })),
        )
        .await;
    assert_eq!(s, 400, "{res}");
    let task = Uuid::new_v4();
    let (_, res) = sam
        .push_one(
            "sam-1",
            json!({ "mutation_id": 4, "op": "create", "model": "tasks", "id": task,
                    "fields": { "title": "T", "created_by": forged, "completed_at": "2020-01-01T00:00:00Z",
                                "version": 40, "updated_at": "2020-01-01T00:00:00Z" } }),
        )
        .await;
    assert_eq!(res["results"][0]["status"], "created", "{res}");
    let (_, stored) = sam
        .send(Method::GET, &format!("/api/v1/tasks/{task}"), None)
        .await;
    assert_eq!(stored["created_by"], json!(sales_id), "{stored}");
    assert_eq!(stored["completed_at"], Value::Null);
    assert_eq!(stored["version"], 1);

    // The last administrator stays, whichever path tries to disable it.
    let (_, me) = admin.send(Method::GET, "/api/v1/auth/me", None).await;
    let admin_id = me["id"].as_str().expect("id");
    let (s, rest) = admin
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{admin_id}"),
            Some(&json!({ "is_active": false, "version": me["version"] })),
        )
        .await;
    assert_eq!(s, 409, "{rest}");
    let (_, sync) = admin
        .push_one(
            "admin-1",
            json!({ "mutation_id": 1, "op": "update", "model": "users", "id": admin_id,
                    "base_version": me["version"], "fields": { "is_active": false } }),
        )
        .await;
    assert_eq!(sync["results"][0]["errors"][0], rest["detail"], "{sync}");
    let (s, _) = admin
        .push_one(
            "admin-1",
            json!({ "mutation_id": 2, "op": "delete", "model": "users", "id": admin_id }),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = admin.send(Method::GET, "/api/v1/auth/me", None).await;
    assert_eq!(s, 200, "the only administrator is still there");
}

#[tokio::test]
async fn a_column_added_to_an_entity_reaches_every_path() {
    let db = TestDb::new(2).await;
    tenant_with_admin(&db, "acme", PASSWORD).await;
    let app = spawn_app(&db, 4).await;
    let (token, _) = app.tokens("acme", "admin@acme.test", PASSWORD).await;
    let admin = Caller { app: &app, token };

    // `clients.industry`: a migration, the entity's field and its rule.
    let (s, made) = admin
        .send(
            Method::POST,
            "/api/v1/clients",
            Some(&json!({ "name": "Acme Freight", "industry": " Logistics " })),
        )
        .await;
    assert_eq!((s, &made["industry"]), (201, &json!("Logistics")), "{made}");
    let (s, bad) = admin
        .send(
            Method::POST,
            "/api/v1/clients",
            Some(&json!({ "name": "X", "industry": "x".repeat(101) })),
        )
        .await;
    assert_eq!((s, &bad["errors"][0]["field"]), (422, &json!("industry")));
    let pushed = Uuid::new_v4();
    let (_, res) = admin
        .push_one(
            "c1",
            json!({ "mutation_id": 1, "op": "create", "model": "clients", "id": pushed,
                    "fields": { "name": "Pushed", "industry": "Retail" } }),
        )
        .await;
    assert_eq!(res["results"][0]["status"], "created", "{res}");
    let (_, page) = admin
        .send(Method::GET, "/api/v1/clients?industry=Retail", None)
        .await;
    assert_eq!(page["items"][0]["id"], json!(pushed), "{page}");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, pulled) = admin
            .send(
                Method::POST,
                "/api/v1/sync/pull",
                Some(&json!({ "models": ["clients"] })),
            )
            .await;
        let created = pulled["changes"]["clients"]["created"].to_string();
        if created.contains("\"industry\":\"Logistics\"") && created.contains("Retail") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{pulled}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
