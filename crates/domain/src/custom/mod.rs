//! Custom fields: tenant-defined fields of clients, contacts and tasks,
//! grouped in field sets. A record carries their values in one `custom`
//! object; [`Custom`] (every definition of one model) checks that object on
//! every write path, through [`crate::check::input`], and turns a list's
//! `custom.<key>=value` parameter into a condition.
//!
//! A definition removed from a set while records still hold its values is
//! kept as *retired*: not required, not offered, but its values still
//! check (so a client sending back a record it pulled is not refused).

pub mod merge;
pub mod sets;

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DbErr};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::record::Spec;
use crate::store::stmt;
use crate::validation::FieldErrors;

/// Most definitions one model may have, over all its sets.
pub const MAX_FIELDS: usize = 200;
/// Most options of a choice field.
pub const MAX_OPTIONS: usize = 200;
/// Longest text value.
pub const MAX_TEXT: usize = 2_000;

/// What values a custom field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Number,
    /// `YYYY-MM-DD`.
    Date,
    Boolean,
    /// One of `options`.
    SingleChoice,
    /// A list of distinct `options`.
    MultipleChoice,
}

impl FieldType {
    fn has_options(self) -> bool {
        matches!(self, Self::SingleChoice | Self::MultipleChoice)
    }
}

/// One custom field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// The key of its value in `custom`: `a-z`, digits and `_`, starting
    /// with a letter, at most 63 characters.
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub required: bool,
    /// The value a record gets when it gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub default: Option<Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub help: String,
    /// Where it is shown among its set's fields (ascending).
    #[serde(default)]
    pub order: i32,
    /// The choices of `single_choice` and `multiple_choice` fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Removed while records still hold values: not required, not offered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retired: bool,
}

fn plain(value: &str, max: usize) -> Result<String, String> {
    crate::validation::text(value, 1, max)
}

impl Definition {
    /// The value to store for `value`, or why it is refused. `None` means
    /// no value (null or an empty text).
    pub fn check(&self, value: &Value) -> Result<Option<Value>, String> {
        if value.is_null() {
            return Ok(None);
        }
        match (self.kind, value) {
            // An empty text is no value (forms send "" for a cleared field).
            (FieldType::Text | FieldType::Date | FieldType::SingleChoice, Value::String(s))
                if s.trim().is_empty() =>
            {
                Ok(None)
            }
            (FieldType::Text, Value::String(s)) => plain(s, MAX_TEXT).map(|v| Some(v.into())),
            (FieldType::Number, Value::Number(_)) => Ok(Some(value.clone())),
            (FieldType::Date, Value::String(s)) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(|_| Some(value.clone()))
                .map_err(|_| "must be a date YYYY-MM-DD".into()),
            (FieldType::Boolean, Value::Bool(_)) => Ok(Some(value.clone())),
            (FieldType::SingleChoice, Value::String(s)) => {
                if self.options.iter().any(|o| o == s) {
                    Ok(Some(value.clone()))
                } else {
                    Err(self.not_an_option(s))
                }
            }
            (FieldType::MultipleChoice, Value::Array(items)) => {
                let mut chosen: Vec<&str> = Vec::with_capacity(items.len());
                for item in items {
                    let Value::String(s) = item else {
                        return Err("must be a list of strings".into());
                    };
                    if !self.options.iter().any(|o| o == s) {
                        return Err(self.not_an_option(s));
                    }
                    if chosen.contains(&s.as_str()) {
                        return Err(format!("lists `{s}` twice"));
                    }
                    chosen.push(s);
                }
                Ok(Some(value.clone()))
            }
            (kind, _) => Err(match kind {
                FieldType::Number => "must be a number".into(),
                FieldType::Boolean => "must be true or false".into(),
                FieldType::MultipleChoice => "must be a list of strings".into(),
                _ => "must be a string".into(),
            }),
        }
    }

    fn not_an_option(&self, s: &str) -> String {
        let shown: String = s.chars().take(64).collect();
        format!("`{shown}` is not one of: {}", self.options.join(", "))
    }

    /// The problems of this definition itself, each as (field, message)
    /// under `at` (e.g. `fields[2]`).
    fn problems(&self, at: &str, errors: &mut FieldErrors) {
        let key_ok = self.key.len() <= 63
            && self.key.starts_with(|c: char| c.is_ascii_lowercase())
            && self
                .key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !key_ok {
            errors.add(
                &format!("{at}.key"),
                "must be a-z, digits and _, start with a letter, at most 63 characters",
            );
        }
        if let Err(m) = plain(&self.label, 200) {
            errors.add(&format!("{at}.label"), m);
        }
        if !self.help.is_empty()
            && let Err(m) = plain(&self.help, 1_000)
        {
            errors.add(&format!("{at}.help"), m);
        }
        if self.kind.has_options() {
            if self.options.is_empty() || self.options.len() > MAX_OPTIONS {
                errors.add(
                    &format!("{at}.options"),
                    format!("must list 1 to {MAX_OPTIONS} choices"),
                );
            }
            for (i, o) in self.options.iter().enumerate() {
                match plain(o, 100) {
                    Ok(t) if t != *o => errors.add(
                        &format!("{at}.options[{i}]"),
                        "must not start or end with spaces",
                    ),
                    Ok(_) if self.options[..i].contains(o) => {
                        errors.add(&format!("{at}.options[{i}]"), "is listed twice");
                    }
                    Ok(_) => {}
                    Err(m) => errors.add(&format!("{at}.options[{i}]"), m),
                }
            }
        } else if !self.options.is_empty() {
            errors.add(&format!("{at}.options"), "only choice fields have options");
        }
        if self.required && self.retired {
            errors.add(&format!("{at}.required"), "a retired field is not required");
        }
        if let Some(d) = &self.default {
            match self.check(d) {
                Ok(Some(_)) => {}
                Ok(None) => errors.add(&format!("{at}.default"), "must be a value (or left out)"),
                Err(m) => errors.add(&format!("{at}.default"), m),
            }
        }
    }
}

/// Parses the definitions of one set: each well formed, keys distinct.
pub fn parse_definitions(value: &Value) -> Result<Vec<Definition>, FieldErrors> {
    let mut errors = FieldErrors::new();
    let Value::Array(items) = value else {
        errors.add("fields", "must be a list of field definitions");
        return Err(errors);
    };
    if items.len() > MAX_FIELDS {
        errors.add("fields", format!("must list at most {MAX_FIELDS} fields"));
        return Err(errors);
    }
    let mut out: Vec<Definition> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("fields[{i}]");
        match Definition::deserialize(item) {
            Ok(d) => {
                d.problems(&at, &mut errors);
                if out.iter().any(|o| o.key == d.key) {
                    errors.add(&format!("{at}.key"), "is used twice");
                }
                out.push(d);
            }
            Err(e) => errors.add(&at, e.to_string()),
        }
    }
    errors.finish(|| out)
}

/// Every custom field definition of one model in one tenant.
#[derive(Debug, Clone, Default)]
pub struct Custom {
    definitions: Vec<Definition>,
}

/// The custom field definitions of every model of one tenant, read in
/// one statement. Servers keep them per tenant (they change rarely and are
/// needed by every list and write); see `api::rules`.
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    models: HashMap<String, Custom>,
}

/// The definitions of a model without any.
static NONE: Custom = Custom {
    definitions: Vec::new(),
};

impl Definitions {
    /// Every field set of the caller's tenant.
    pub async fn load(conn: &impl ConnectionTrait) -> Result<Self, DbErr> {
        let rows = conn
            .query_all_raw(stmt(
                "SELECT model, fields FROM field_sets ORDER BY model, name",
                [],
            ))
            .await?;
        let mut models: HashMap<String, Custom> = HashMap::new();
        for r in rows {
            let model: String = r.try_get_by_index(0)?;
            let fields: Value = r.try_get_by_index(1)?;
            let defs: Vec<Definition> = serde_json::from_value(fields)
                .map_err(|e| DbErr::Custom(format!("field_sets.fields: {e}")))?;
            models.entry(model).or_default().definitions.extend(defs);
        }
        Ok(Self { models })
    }

    /// The definitions of `spec`'s custom fields (none for models without
    /// custom fields).
    pub fn of(&self, spec: &Spec) -> &Custom {
        if !spec.has_custom() {
            return &NONE;
        }
        self.models.get(spec.table).unwrap_or(&NONE)
    }
}

/// Why a `custom` object was refused: (field, message) per problem, and
/// whether it was malformed (not an object, an unknown key).
#[derive(Debug)]
pub struct CustomRefusal {
    pub errors: Vec<(String, String)>,
    pub malformed: bool,
}

impl Custom {
    /// No custom fields (models without them, and tests).
    pub fn none() -> Self {
        Self::default()
    }

    pub fn new(definitions: Vec<Definition>) -> Self {
        Self { definitions }
    }

    pub fn definitions(&self) -> &[Definition] {
        &self.definitions
    }

    pub fn get(&self, key: &str) -> Option<&Definition> {
        self.definitions.iter().find(|d| d.key == key)
    }

    /// The `custom` object to store for `value`: every key checked against
    /// its definition, empty values dropped, defaults filled in, required
    /// fields required. `value` replaces the record's whole object.
    pub fn check(&self, field: &str, value: &Value) -> Result<Value, CustomRefusal> {
        let Value::Object(given) = value else {
            return Err(CustomRefusal {
                errors: vec![(field.to_owned(), "must be an object".into())],
                malformed: true,
            });
        };
        let mut out = Map::new();
        let mut errors = Vec::new();
        let mut malformed = false;
        for (key, v) in given {
            let name = format!("{field}.{key}");
            let Some(def) = self.get(key) else {
                errors.push((name, "is not a custom field".into()));
                malformed = true;
                continue;
            };
            match def.check(v) {
                Ok(Some(v)) => {
                    out.insert(key.clone(), v);
                }
                Ok(None) => {}
                Err(m) => errors.push((name, m)),
            }
        }
        for def in self.definitions.iter().filter(|d| !d.retired) {
            if out.contains_key(&def.key) {
                continue;
            }
            match (&def.default, def.required) {
                (Some(d), _) => {
                    out.insert(def.key.clone(), d.clone());
                }
                (None, true)
                    if !errors
                        .iter()
                        .any(|(f, _)| f == &format!("{field}.{}", def.key)) =>
                {
                    errors.push((format!("{field}.{}", def.key), "is required".into()));
                }
                (None, _) => {}
            }
        }
        if errors.is_empty() {
            Ok(Value::Object(out))
        } else {
            Err(CustomRefusal { errors, malformed })
        }
    }

    /// The containment (`custom @> …`) a list parameter `custom.<key>=raw`
    /// stands for.
    pub fn filter(&self, key: &str, raw: &str) -> Result<Value, String> {
        let def = self.get(key).ok_or("is not a custom field")?;
        let value = match def.kind {
            FieldType::Number => raw
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or("must be a number")?,
            FieldType::Boolean => match raw {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err("must be true or false".into()),
            },
            FieldType::MultipleChoice => {
                def.check(&Value::Array(vec![raw.into()]))?;
                Value::Array(vec![raw.into()])
            }
            _ => def
                .check(&Value::String(raw.to_owned()))?
                .ok_or("must not be blank")?,
        };
        Ok(Value::Object(Map::from_iter([(key.to_owned(), value)])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs() -> Custom {
        Custom::new(
            parse_definitions(&json!([
                {"key": "industry", "label": "Industry", "type": "single_choice",
                 "options": ["energy", "retail"], "required": true},
                {"key": "employees", "label": "Employees", "type": "number", "default": 1},
                {"key": "tags", "label": "Tags", "type": "multiple_choice", "options": ["a", "b"]},
                {"key": "since", "label": "Since", "type": "date"},
                {"key": "old", "label": "Old", "type": "text", "retired": true},
            ]))
            .expect("valid"),
        )
    }

    #[test]
    fn values_follow_their_definitions() {
        let c = defs();
        let ok = c
            .check(
                "custom",
                &json!({"industry": "energy", "tags": ["b"], "old": "x", "since": ""}),
            )
            .expect("valid");
        assert_eq!(
            ok,
            json!({"industry": "energy", "tags": ["b"], "old": "x", "employees": 1})
        );
        let bad = c
            .check(
                "custom",
                &json!({"industry": "oil", "tags": ["a", "a"], "since": "May", "x": 1, "employees": "3"}),
            )
            .expect_err("invalid");
        let fields: Vec<&str> = bad.errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "custom.employees",
                "custom.industry",
                "custom.since",
                "custom.tags",
                "custom.x"
            ]
        );
        assert!(bad.malformed);
        let missing = c.check("custom", &json!({})).expect_err("required");
        assert_eq!(missing.errors[0].0, "custom.industry");
        assert!(c.check("custom", &json!("x")).is_err());
        assert!(
            c.check("custom", &json!({"old": "a\u{0}b", "industry": "energy"}))
                .is_err()
        );
    }

    #[test]
    fn filters_and_definitions() {
        let c = defs();
        assert_eq!(
            c.filter("industry", "energy"),
            Ok(json!({"industry": "energy"}))
        );
        assert_eq!(c.filter("employees", "12"), Ok(json!({"employees": 12.0})));
        assert_eq!(c.filter("tags", "a"), Ok(json!({"tags": ["a"]})));
        assert!(c.filter("industry", "oil").is_err());
        assert!(c.filter("nope", "x").is_err());
        let bad = parse_definitions(&json!([
            {"key": "Bad Key", "label": "", "type": "single_choice"},
            {"key": "n", "label": "N", "type": "number", "default": "x", "options": ["a"]},
            {"key": "n", "label": "N", "type": "number"},
            {"key": "z", "label": "Z", "type": "colour"},
        ]))
        .expect_err("invalid");
        let fields: Vec<&str> = bad.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "fields[0].key",
                "fields[0].label",
                "fields[0].options",
                "fields[1].options",
                "fields[1].default",
                "fields[2].key",
                "fields[3]"
            ]
        );
    }
}
