//! How a platform field set lands in a tenant: installed where the tenant
//! has no copy, and otherwise by the distribution's strategy (skip,
//! overwrite, or a three-way merge against the version last distributed).
//!
//! The merge works per definition (by key) and, within a definition, per
//! attribute. A change made on one side only is taken; a change made on
//! both sides to different values is a conflict, settled by these rules
//! and reported:
//! - an attribute both sides changed: the platform's value;
//! - a definition the platform removed and the tenant edited: kept, as the
//!   tenant has it;
//! - a definition the tenant removed and the platform changed: stays
//!   removed;
//! - options of a choice field merge as sets: each side's additions are
//!   added and each side's removals removed, so they never conflict.

use std::collections::BTreeSet;

use sea_orm::ConnectionTrait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Definition;
use super::sets::{self, Draft, Origin};
use crate::store::StoreError;

/// How a distribution treats a tenant that already has the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Leave the tenant's copy alone.
    Skip,
    /// Replace the tenant's copy with the platform's.
    Overwrite,
    /// Three-way merge against the version last distributed.
    Merge,
}

impl Strategy {
    pub const ALL: [Self; 3] = [Self::Skip, Self::Overwrite, Self::Merge];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Overwrite => "overwrite",
            Self::Merge => "merge",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s.to_ascii_lowercase())
    }
}

/// A field set as the platform authors it, at one version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlatformSet {
    pub id: Uuid,
    pub version: i32,
    pub model: String,
    pub name: String,
    pub label: String,
    pub fields: Vec<Definition>,
}

/// Both sides changed one attribute of one definition differently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Conflict {
    pub key: String,
    /// The attribute, or `definition` for a removal against an edit.
    pub attribute: String,
    #[schema(value_type = Object)]
    pub tenant: Value,
    #[schema(value_type = Object)]
    pub platform: Value,
    /// What was kept: `platform`, `tenant` or `removed`.
    pub kept: String,
}

/// What landing a set did (or, in a dry run, would do) in one tenant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Outcome {
    /// `installed`, `skipped`, `overwritten`, `merged` or `unchanged`.
    pub action: String,
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Removed definitions kept as retired: records hold their values.
    pub retired: Vec<String>,
    pub conflicts: Vec<Conflict>,
    /// The tenant's set revision after the write (none when unchanged).
    pub revision: Option<i64>,
}

/// The attributes of a definition, as JSON, for the per-attribute merge.
fn attributes(d: &Definition) -> serde_json::Map<String, Value> {
    match serde_json::to_value(d) {
        Ok(Value::Object(mut m)) => {
            for a in ["default", "help", "options", "retired"] {
                m.entry(a).or_insert(Value::Null);
            }
            m
        }
        _ => serde_json::Map::new(),
    }
}

fn options_merge(base: &Value, tenant: &Value, platform: &Value) -> Value {
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (b, t, p) = (list(base), list(tenant), list(platform));
    let b_set: BTreeSet<&String> = b.iter().collect();
    let removed: BTreeSet<&String> = b
        .iter()
        .filter(|o| !t.contains(o) || !p.contains(o))
        .collect();
    let mut out: Vec<String> = Vec::new();
    for o in p.iter().chain(t.iter()) {
        let added_or_kept = !b_set.contains(o) || !removed.contains(o);
        if added_or_kept && !out.contains(o) {
            out.push(o.clone());
        }
    }
    if out.is_empty() {
        Value::Null
    } else {
        out.into()
    }
}

/// Merges one definition both sides have; `base` is None when both added
/// it independently.
fn merge_one(
    base: Option<&Definition>,
    tenant: &Definition,
    platform: &Definition,
    conflicts: &mut Vec<Conflict>,
) -> Definition {
    let b = base.map(attributes).unwrap_or_default();
    let t = attributes(tenant);
    let p = attributes(platform);
    let mut out = serde_json::Map::new();
    for (name, pv) in &p {
        let tv = t.get(name).unwrap_or(&Value::Null);
        let bv = b.get(name);
        let value = if name == "options" {
            options_merge(bv.unwrap_or(&Value::Null), tv, pv)
        } else if tv == pv || bv == Some(tv) {
            pv.clone()
        } else if bv == Some(pv) {
            tv.clone()
        } else {
            conflicts.push(Conflict {
                key: platform.key.clone(),
                attribute: name.clone(),
                tenant: tv.clone(),
                platform: pv.clone(),
                kept: "platform".into(),
            });
            pv.clone()
        };
        if !value.is_null() {
            out.insert(name.clone(), value);
        }
    }
    serde_json::from_value(Value::Object(out)).unwrap_or_else(|_| platform.clone())
}

/// The three-way merge of a tenant's definitions with the platform's,
/// against `base` (what was last distributed), and the conflicts.
pub fn merge(
    base: &[Definition],
    tenant: &[Definition],
    platform: &[Definition],
) -> (Vec<Definition>, Vec<Conflict>) {
    let find = |list: &[Definition], key: &str| list.iter().find(|d| d.key == key).cloned();
    let mut out = Vec::new();
    let mut conflicts = Vec::new();
    for p in platform {
        let b = find(base, &p.key);
        match (find(tenant, &p.key), b) {
            (Some(t), b) => out.push(merge_one(b.as_ref(), &t, p, &mut conflicts)),
            // Added on the platform.
            (None, None) => out.push(p.clone()),
            // Removed by the tenant: stays removed, reported if the
            // platform changed it meanwhile.
            (None, Some(b)) => {
                if &b != p {
                    conflicts.push(Conflict {
                        key: p.key.clone(),
                        attribute: "definition".into(),
                        tenant: Value::Null,
                        platform: serde_json::to_value(p).unwrap_or_default(),
                        kept: "removed".into(),
                    });
                }
            }
        }
    }
    for t in tenant.iter().filter(|t| find(platform, &t.key).is_none()) {
        match find(base, &t.key) {
            // A tenant-local addition.
            None => out.push(t.clone()),
            // Removed on the platform: goes, unless the tenant edited it.
            Some(b) if &b == t => {}
            Some(_) => {
                conflicts.push(Conflict {
                    key: t.key.clone(),
                    attribute: "definition".into(),
                    tenant: serde_json::to_value(t).unwrap_or_default(),
                    platform: Value::Null,
                    kept: "tenant".into(),
                });
                out.push(t.clone());
            }
        }
    }
    (out, conflicts)
}

/// Lands `set` in the caller's tenant by `strategy`, in the caller's
/// transaction. A dry run is this inside a transaction rolled back.
pub async fn land(
    conn: &impl ConnectionTrait,
    set: &PlatformSet,
    strategy: Strategy,
) -> Result<Outcome, StoreError> {
    // Before reading the copy: two distributions landing in one tenant at
    // once would otherwise both see none.
    sets::lock(conn).await?;
    let current = sets::by_origin(conn, set.id).await?;
    let origin = Origin {
        id: set.id,
        version: set.version,
        base: set.fields.clone(),
    };
    let (id, fields, mut outcome) = match (&current, strategy) {
        (None, _) => (
            None,
            set.fields.clone(),
            Outcome {
                action: "installed".into(),
                added: set.fields.iter().map(|d| d.key.clone()).collect(),
                ..Outcome::default()
            },
        ),
        (Some(_), Strategy::Skip) => {
            return Ok(Outcome {
                action: "skipped".into(),
                ..Outcome::default()
            });
        }
        (Some((copy, _)), Strategy::Overwrite) => (
            Some(copy),
            set.fields.clone(),
            Outcome {
                action: "overwritten".into(),
                ..Outcome::default()
            },
        ),
        (Some((copy, base)), Strategy::Merge) => {
            let base = base.as_deref().unwrap_or(&[]);
            let (fields, conflicts) = merge(base, &copy.fields, &set.fields);
            (
                Some(copy),
                fields,
                Outcome {
                    action: "merged".into(),
                    conflicts,
                    ..Outcome::default()
                },
            )
        }
    };
    if let Some(copy) = id {
        let live: Vec<&Definition> = copy.fields.iter().collect();
        for d in &fields {
            match live.iter().find(|o| o.key == d.key) {
                None => outcome.added.push(d.key.clone()),
                Some(o) if *o != d => outcome.changed.push(d.key.clone()),
                Some(_) => {}
            }
        }
        for o in &live {
            if !fields.iter().any(|d| d.key == o.key) && !o.retired {
                outcome.removed.push(o.key.clone());
            }
        }
        let same = fields == copy.fields
            && copy.label == set.label
            && copy.base_version == Some(set.version);
        if same {
            outcome.action = "unchanged".into();
            return Ok(outcome);
        }
    }
    let draft = Draft {
        model: set.model.clone(),
        name: set.name.clone(),
        label: set.label.clone(),
        fields: serde_json::to_value(&fields).unwrap_or_default(),
    };
    let saved = sets::save(conn, id.map(|c| (c.id, c.revision)), &draft, Some(&origin)).await?;
    outcome.retired = saved.retired;
    outcome.removed.retain(|k| !outcome.retired.contains(k));
    outcome.revision = saved.set.map(|s| s.revision);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::custom::parse_definitions;
    use serde_json::json;

    fn defs(v: Value) -> Vec<Definition> {
        parse_definitions(&v).expect("valid")
    }

    #[test]
    fn three_way() {
        let base = defs(json!([
            {"key": "a", "label": "A", "type": "text"},
            {"key": "b", "label": "B", "type": "text"},
            {"key": "c", "label": "C", "type": "single_choice", "options": ["x", "y"]},
            {"key": "gone", "label": "Gone", "type": "text"},
        ]));
        // The tenant relabels a, renames b's label, drops option y of c and
        // adds its own field.
        let tenant = defs(json!([
            {"key": "a", "label": "A (ours)", "type": "text"},
            {"key": "b", "label": "B (ours)", "type": "text"},
            {"key": "c", "label": "C", "type": "single_choice", "options": ["x"]},
            {"key": "gone", "label": "Gone", "type": "text"},
            {"key": "local", "label": "Local", "type": "boolean"},
        ]));
        // The platform makes a required, relabels b too, adds option z,
        // removes `gone` and adds `new`.
        let platform = defs(json!([
            {"key": "a", "label": "A", "type": "text", "required": true},
            {"key": "b", "label": "B (platform)", "type": "text"},
            {"key": "c", "label": "C", "type": "single_choice", "options": ["x", "y", "z"]},
            {"key": "new", "label": "New", "type": "number"},
        ]));
        let (out, conflicts) = merge(&base, &tenant, &platform);
        let keys: Vec<&str> = out.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c", "new", "local"]);
        assert_eq!(out[0].label, "A (ours)");
        assert!(out[0].required);
        assert_eq!(out[1].label, "B (platform)");
        assert_eq!(out[2].options, ["x", "z"]);
        assert_eq!(
            conflicts,
            [Conflict {
                key: "b".into(),
                attribute: "label".into(),
                tenant: json!("B (ours)"),
                platform: json!("B (platform)"),
                kept: "platform".into(),
            }]
        );
        // Nothing changed on either side: the merge is the base.
        assert_eq!(merge(&base, &base, &base), (base.clone(), vec![]));
        assert_eq!(Strategy::parse("MERGE"), Some(Strategy::Merge));
    }
}
