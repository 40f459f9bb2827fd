//! Checking a writer's input against a model's description: the one place
//! every path (REST, each sync protocol, jobs, imports) turns a JSON object
//! into the columns to write, or into field errors.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::custom::Custom;
use crate::record::{Check, Field, Format, Kind, Owner, Spec};
use crate::validation::{FieldErrors, country, email, text};

/// What the input is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

/// What to do with fields the server owns (version, timestamps, authors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerFields {
    /// Refuse them, naming each (REST: the caller wrote them on purpose).
    Refuse,
    /// Drop them (sync clients send back whole records they pulled).
    Ignore,
}

/// Why an input was refused: every bad field, and whether any was
/// malformed (an unknown field or a value of the wrong JSON type) rather
/// than merely invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub errors: FieldErrors,
    pub malformed: bool,
}

/// The columns to write, checked and normalised, keyed by column name.
pub type Checked = Map<String, Value>;

/// Checks `input` for `spec`, its `custom` object against `custom` (the
/// tenant's definitions for the model). On create, fills defaults,
/// requires the fields that have none, and sets author fields to `author`.
pub fn input(
    spec: &Spec,
    custom: &Custom,
    input: &Map<String, Value>,
    mode: Mode,
    server_fields: ServerFields,
    author: Option<Uuid>,
) -> Result<Checked, Refusal> {
    let mut out = Map::new();
    let mut errors = FieldErrors::new();
    let mut malformed = false;
    for (key, value) in input {
        let Some(field) = spec.public_field(key) else {
            errors.add(key, format!("is not a field of {}", spec.name()));
            malformed = true;
            continue;
        };
        match (field.owner, mode) {
            (Owner::Client, _) | (Owner::CreateOnly, Mode::Create) => {}
            (Owner::CreateOnly, Mode::Update) => {
                if server_fields == ServerFields::Refuse {
                    errors.add(key, "cannot be changed once the record exists");
                    malformed = true;
                }
                continue;
            }
            _ => {
                if server_fields == ServerFields::Refuse {
                    errors.add(key, "is set by the server");
                    malformed = true;
                }
                continue;
            }
        }
        if field.kind == Kind::Custom {
            custom_of(custom, field, value, &mut out, &mut errors, &mut malformed);
            continue;
        }
        match value_of(field, value) {
            Ok(v) => {
                out.insert(key.clone(), v);
            }
            Err((message, wrong_type)) => {
                errors.add(key, message);
                malformed |= wrong_type;
            }
        }
    }
    if mode == Mode::Create {
        for field in &spec.fields {
            if field.owner == Owner::Author {
                out.insert(field.name.to_owned(), author.map(|a| a.to_string()).into());
                continue;
            }
            let writable = matches!(field.owner, Owner::Client | Owner::CreateOnly);
            if !writable || input.contains_key(field.name) || field.nullable {
                continue;
            }
            if field.kind == Kind::Custom {
                let empty = Value::Object(Map::new());
                custom_of(custom, field, &empty, &mut out, &mut errors, &mut malformed);
                continue;
            }
            match field.initial {
                Some(v) => {
                    out.insert(field.name.to_owned(), v.json());
                }
                None => errors.add(field.name, "is required"),
            }
        }
        for check in spec.meta.checks {
            match check {
                Check::ExactlyOne(a, b) => {
                    let set = |f: &str| out.get(f).is_some_and(|v| !v.is_null());
                    let already = errors.errors.iter().any(|e| e.field == *a || e.field == *b);
                    if !already && set(a) == set(b) {
                        errors.add(a, format!("give exactly one of {a} and {b}"));
                    }
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Refusal { errors, malformed })
    }
}

/// Checks a `custom` object into `out`, or its problems into `errors`.
fn custom_of(
    custom: &Custom,
    field: &Field,
    value: &Value,
    out: &mut Checked,
    errors: &mut FieldErrors,
    malformed: &mut bool,
) {
    match custom.check(field.name, value) {
        Ok(v) => {
            out.insert(field.name.to_owned(), v);
        }
        Err(refusal) => {
            for (f, m) in refusal.errors {
                errors.add(&f, m);
            }
            *malformed |= refusal.malformed;
        }
    }
}

/// The value to store for `field`, or the message and whether the JSON
/// type was wrong.
fn value_of(field: &Field, value: &Value) -> Result<Value, (String, bool)> {
    if value.is_null() {
        return if field.nullable {
            Ok(Value::Null)
        } else {
            Err(("must not be null".into(), false))
        };
    }
    let wrong = |what: &str| Err((format!("must be {what}"), true));
    match (field.kind, value) {
        (Kind::Uuid, Value::String(s)) => Uuid::parse_str(s)
            .map(|u| u.to_string().into())
            .map_err(|_| ("must be a UUID".into(), false)),
        (Kind::Uuid, _) => wrong("a UUID string"),
        (Kind::Text { min, max, format }, Value::String(s)) => {
            let blank = s.trim().is_empty();
            if blank && field.nullable {
                return Ok(Value::Null);
            }
            let checked = match format {
                Format::Plain => text(s, min, max),
                Format::Email => text(s, min, max).and_then(|v| email(&v)),
                Format::Country => text(s, 0, 2).and_then(|v| country(&v)),
            };
            checked.map(Value::String).map_err(|m| (m, false))
        }
        (Kind::Text { .. } | Kind::Choice(_) | Kind::Date | Kind::Timestamp, v)
            if !v.is_string() =>
        {
            wrong("a string")
        }
        (Kind::Choice(set), Value::String(s)) => {
            if set.contains(&s.as_str()) {
                Ok(value.clone())
            } else {
                let shown: String = s.chars().take(64).collect();
                Err((format!("`{shown}` is not one of: {}", set.join(" ")), false))
            }
        }
        (Kind::Bool, Value::Bool(_)) => Ok(value.clone()),
        (Kind::Bool, _) => wrong("true or false"),
        (Kind::Date, Value::String(s)) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(|_| value.clone())
            .map_err(|_| ("must be a date YYYY-MM-DD".into(), false)),
        (Kind::Timestamp, Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|_| value.clone())
            .map_err(|_| ("must be an RFC 3339 timestamp".into(), false)),
        (Kind::Version, Value::Number(n)) if n.as_i64().is_some_and(|v| v > 0) => Ok(value.clone()),
        (Kind::Version, _) => wrong("a positive integer"),
        (Kind::Custom, Value::Object(_)) => Ok(value.clone()),
        (Kind::Custom, _) => wrong("an object"),
        (_, _) => wrong("a string"),
    }
}

/// A text that goes into SQL as a parameter (a search, a filter value, a
/// client id): at most `max` characters and no control characters, which
/// PostgreSQL would refuse (NUL) or a log would mangle.
pub fn parameter(value: &str, max: usize) -> Result<&str, String> {
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{CLIENTS, NOTES, TASKS, USERS};
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn normalises_defaults_and_refuses() {
        let ok = input(
            &CLIENTS,
            &Custom::none(),
            &obj(json!({"name": " Acme ", "email": "A@B.IO", "country": "no", "city": ""})),
            Mode::Create,
            ServerFields::Refuse,
            None,
        )
        .expect("valid");
        assert_eq!(ok["name"], "Acme");
        assert_eq!(ok["email"], "a@b.io");
        assert_eq!(ok["country"], "NO");
        assert_eq!(ok["city"], Value::Null);
        assert_eq!(ok["status"], "lead");

        let bad = input(
            &CLIENTS,
            &Custom::none(),
            &obj(json!({"name": "", "status": "weird", "colour": "red", "branch_id": 5})),
            Mode::Create,
            ServerFields::Refuse,
            None,
        )
        .expect_err("invalid");
        let fields: Vec<&str> = bad.errors.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["branch_id", "colour", "name", "status"]);
        assert!(bad.malformed);

        let nul = input(
            &CLIENTS,
            &Custom::none(),
            &obj(json!({"name": "a\u{0}b"})),
            Mode::Update,
            ServerFields::Refuse,
            None,
        )
        .expect_err("NUL");
        assert_eq!(nul.errors.errors[0].field, "name");
        assert!(!nul.malformed);
    }

    #[test]
    fn server_owned_and_private_fields() {
        let author = Uuid::new_v4();
        let t = input(
            &TASKS,
            &Custom::none(),
            &obj(json!({"title": "T", "created_by": Uuid::new_v4(), "version": 9})),
            Mode::Create,
            ServerFields::Ignore,
            Some(author),
        )
        .expect("ignored");
        assert_eq!(t["created_by"], author.to_string());
        assert!(t.get("version").is_none());
        let refused = input(
            &TASKS,
            &Custom::none(),
            &obj(json!({"completed_at": "2026-01-01T00:00:00Z"})),
            Mode::Update,
            ServerFields::Refuse,
            None,
        )
        .expect_err("server field");
        assert_eq!(refused.errors.errors[0].message, "is set by the server");
        let private = input(
            &USERS,
            &Custom::none(),
            &obj(json!({"password_hash": "x"})),
            Mode::Update,
            ServerFields::Ignore,
            None,
        )
        .expect_err("private");
        assert_eq!(private.errors.errors[0].field, "password_hash");
        let note = input(
            &NOTES,
            &Custom::none(),
            &obj(json!({"body": "x"})),
            Mode::Create,
            ServerFields::Refuse,
            None,
        )
        .expect_err("one parent");
        assert_eq!(note.errors.errors[0].field, "client_id");
        assert!(parameter("a\u{0}", 10).is_err());
    }
}
