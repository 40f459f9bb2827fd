//! Checking pushed fields against a model's field list.

use serde_json::{Map, Value};

use crate::models::{FieldType, Model};

/// Keys a client may send that the server sets itself; they are ignored.
const SERVER_KEYS: &[&str] = &[
    "id",
    "version",
    "created_at",
    "updated_at",
    "_model",
    "_status",
    "_changed",
];

/// Checks `fields` for `model`: every key known and writable, every value of
/// the field's type. With `create`, fills defaults and requires the
/// non-nullable fields. Returns the fields to write, or every problem.
pub fn fields(
    model: &Model,
    input: &Map<String, Value>,
    create: bool,
) -> Result<Map<String, Value>, Vec<String>> {
    let mut out = Map::new();
    let mut errors = Vec::new();
    for (key, value) in input {
        if SERVER_KEYS.contains(&key.as_str()) {
            continue;
        }
        let Some(field) = model.field(key) else {
            errors.push(format!("{key}: unknown field of {}", model.name));
            continue;
        };
        if !field.writable {
            errors.push(format!("{key}: is set by the server"));
            continue;
        }
        if value.is_null() {
            if field.nullable {
                out.insert(key.clone(), Value::Null);
            } else {
                errors.push(format!("{key}: must not be null"));
            }
            continue;
        }
        let ok = match (field.ty, value) {
            (FieldType::Uuid, Value::String(s)) => uuid::Uuid::parse_str(s).is_ok(),
            (FieldType::Text { max }, Value::String(s)) => s.chars().count() <= max,
            (FieldType::Bool, Value::Bool(_)) => true,
            (FieldType::Date, Value::String(s)) => {
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
            }
            (FieldType::Timestamp, Value::String(s)) => {
                chrono::DateTime::parse_from_rfc3339(s).is_ok()
            }
            (FieldType::Choice(set), Value::String(s)) => set.contains(&s.as_str()),
            _ => false,
        };
        if ok {
            out.insert(key.clone(), value.clone());
        } else {
            errors.push(format!("{key}: {}", expected(field.ty)));
        }
    }
    if create {
        for field in model.fields {
            if input.contains_key(field.name) || field.nullable || !field.writable {
                continue;
            }
            match default(model.name, field.name) {
                Some(v) => {
                    out.insert(field.name.to_owned(), v);
                }
                None => errors.push(format!("{}: is required", field.name)),
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn expected(ty: FieldType) -> String {
    match ty {
        FieldType::Uuid => "must be a UUID string".into(),
        FieldType::Text { max } => format!("must be a string of at most {max} characters"),
        FieldType::Bool => "must be true or false".into(),
        FieldType::Date => "must be a date YYYY-MM-DD".into(),
        FieldType::Timestamp => "must be an RFC 3339 timestamp".into(),
        FieldType::Choice(set) => format!("must be one of {}", set.join(", ")),
    }
}

/// Defaults of non-nullable fields, as the tables define them.
fn default(model: &str, field: &str) -> Option<Value> {
    Some(match (model, field) {
        (_, "is_active") => Value::Bool(true),
        (_, "is_primary") => Value::Bool(false),
        ("clients", "status") => "lead".into(),
        ("tasks", "status") => "open".into(),
        ("tasks", "priority") => "normal".into(),
        ("contacts", "last_name") => "".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::model;
    use serde_json::json;

    #[test]
    fn checks_types_and_names() {
        let clients = model("clients").expect("clients");
        let input =
            json!({"name": "A", "status": "weird", "colour": "red", "branch_id": 5, "id": "x"});
        let errs = fields(clients, input.as_object().expect("object"), true).expect_err("bad");
        assert_eq!(errs.len(), 3, "{errs:?}");
        let ok = fields(
            clients,
            json!({"name": "A"}).as_object().expect("object"),
            true,
        )
        .expect("ok");
        assert_eq!(ok["status"], "lead");
        let errs = fields(clients, json!({}).as_object().expect("object"), true)
            .expect_err("name required");
        assert_eq!(errs, ["name: is required"]);
        let users = model("users").expect("users");
        let errs = fields(
            users,
            json!({"password_hash": "x"}).as_object().expect("object"),
            false,
        )
        .expect_err("private");
        assert!(errs[0].starts_with("password_hash: unknown"));
    }
}
