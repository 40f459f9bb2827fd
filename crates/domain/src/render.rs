//! Records as JSON, for REST and sync pulls alike: the public columns of a
//! model read in their binary form and written out as JSON text in one
//! pass, driven by the model's description (no per-model struct, no
//! intermediate values).

use std::fmt::Write;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use sea_orm::{DbErr, QueryResult};
use uuid::Uuid;

use crate::record::{Kind, Spec};

/// How many columns [`Spec::columns`] selects.
pub fn width(spec: &Spec) -> usize {
    spec.fields.iter().filter(|f| f.public()).count() + spec.meta.computed.len()
}

fn text(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("a string always serialises"));
}

/// How object fields (`custom`) are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objects {
    /// As JSON objects.
    Nested,
    /// As JSON text in a string, for clients whose columns hold only
    /// scalars (WatermelonDB).
    AsText,
}

/// The record in `row`, read from column `at` on ([`Spec::columns`] order).
pub fn record(spec: &Spec, row: &QueryResult, at: usize) -> Result<String, DbErr> {
    record_with(spec, row, at, Objects::Nested)
}

/// [`record`], writing object fields as `objects` says.
pub fn record_with(
    spec: &Spec,
    row: &QueryResult,
    at: usize,
    objects: Objects,
) -> Result<String, DbErr> {
    let mut out = String::with_capacity(64 * spec.fields.len());
    out.push('{');
    let mut i = at;
    for f in spec.fields.iter().filter(|f| f.public()) {
        if i > at {
            out.push(',');
        }
        text(&mut out, f.name);
        out.push(':');
        match f.kind {
            Kind::Uuid => match row.try_get_by_index::<Option<Uuid>>(i)? {
                Some(u) => {
                    let _ = write!(out, "\"{u}\"");
                }
                None => out.push_str("null"),
            },
            Kind::Text { .. } | Kind::Choice(_) => {
                match row.try_get_by_index::<Option<String>>(i)? {
                    Some(s) => text(&mut out, &s),
                    None => out.push_str("null"),
                }
            }
            Kind::Bool => match row.try_get_by_index::<Option<bool>>(i)? {
                Some(b) => out.push_str(if b { "true" } else { "false" }),
                None => out.push_str("null"),
            },
            Kind::Date => match row.try_get_by_index::<Option<NaiveDate>>(i)? {
                Some(d) => {
                    let _ = write!(out, "\"{}\"", d.format("%Y-%m-%d"));
                }
                None => out.push_str("null"),
            },
            Kind::Timestamp => match row.try_get_by_index::<Option<DateTime<Utc>>>(i)? {
                Some(t) => {
                    let _ = write!(
                        out,
                        "\"{}\"",
                        t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
                    );
                }
                None => out.push_str("null"),
            },
            Kind::Custom => match row.try_get_by_index::<Option<serde_json::Value>>(i)? {
                Some(v) if objects == Objects::AsText => text(&mut out, &v.to_string()),
                Some(v) => out.push_str(&v.to_string()),
                None => out.push_str("null"),
            },
            Kind::Version => match row.try_get_by_index::<Option<i64>>(i)? {
                Some(v) => {
                    let _ = write!(out, "{v}");
                }
                None => out.push_str("null"),
            },
        }
        i += 1;
    }
    for (name, _) in spec.meta.computed {
        out.push(',');
        text(&mut out, name);
        out.push(':');
        let list: Vec<String> = row.try_get_by_index(i)?;
        out.push_str(&serde_json::to_string(&list).expect("strings always serialise"));
        i += 1;
    }
    out.push('}');
    Ok(out)
}
