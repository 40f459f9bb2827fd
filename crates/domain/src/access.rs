//! The access policy of every path: who may read and write which model,
//! and which rows. REST lists, gets, creates, updates and deletes answer
//! from it exactly as sync pulls and pushes do.
//!
//! It is the tenant's matrix of roles by models (`sync_permissions`:
//! `can_pull` is read, `can_push` is write) with optional row filters per
//! role and model (`sync_filters`). A caller may read (write) a model if
//! any of their roles may. The rows they reach are those any such role
//! reaches; a role with no filters on a model reaches every row, otherwise
//! a row must pass all its filters. Administrators reach everything: their
//! row of the matrix is not theirs to lose, so a tenant cannot lock itself
//! out.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::record::Spec;
use crate::roles::ADMINISTRATORS;

/// A caller's roles do not allow an action on a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("your roles may not {action} `{model}`")]
pub struct Denied {
    pub action: &'static str,
    pub model: &'static str,
}

/// The value of a filter that stands for the caller's user id.
pub const CALLER: &str = "$user";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    Eq,
    Ne,
    In,
    IsNull,
    NotNull,
}

impl Operator {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "in" => Self::In,
            "is_null" => Self::IsNull,
            "not_null" => Self::NotNull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::In => "in",
            Self::IsNull => "is_null",
            Self::NotNull => "not_null",
        }
    }
}

/// One condition on a row: `field operator value`.
#[derive(Debug, Clone)]
pub struct RowFilter {
    pub field: String,
    pub operator: Operator,
    pub value: Option<String>,
}

/// The rows of a model a caller reaches.
#[derive(Debug, Clone)]
pub enum Scope {
    All,
    /// Any of these conjunctions.
    Some(Vec<Vec<RowFilter>>),
}

impl Scope {
    fn resolve(value: Option<&str>, caller: Uuid) -> Option<String> {
        value.map(|v| {
            if v == CALLER {
                caller.to_string()
            } else {
                v.to_owned()
            }
        })
    }

    /// A SQL condition on alias `t`, appending its parameters to `values`.
    pub fn sql(&self, model: &Spec, caller: Uuid, values: &mut Vec<Value>) -> String {
        let Self::Some(any) = self else {
            return "true".into();
        };
        let mut ors = Vec::new();
        for all in any {
            let mut ands = Vec::new();
            for f in all {
                // Filters name exposed fields only; anything else matches
                // nothing, so a stale filter hides rows rather than leaks them.
                if model.public_field(&f.field).is_none() {
                    ands.push("false".to_owned());
                    continue;
                }
                let col = format!("t.{}::text", f.field);
                let value = Self::resolve(f.value.as_deref(), caller);
                ands.push(match f.operator {
                    Operator::IsNull => format!("{col} IS NULL"),
                    Operator::NotNull => format!("{col} IS NOT NULL"),
                    Operator::Eq => {
                        values.push(value.into());
                        format!("{col} = ${}", values.len())
                    }
                    Operator::Ne => {
                        values.push(value.into());
                        format!("{col} IS DISTINCT FROM ${}", values.len())
                    }
                    Operator::In => {
                        let list: Vec<String> = value
                            .unwrap_or_default()
                            .split(',')
                            .map(|s| {
                                if s.trim() == CALLER {
                                    caller.to_string()
                                } else {
                                    s.trim().to_owned()
                                }
                            })
                            .collect();
                        values.push(list.into());
                        format!("{col} = ANY(${}::text[])", values.len())
                    }
                });
            }
            ors.push(if ands.is_empty() {
                "true".to_owned()
            } else {
                format!("({})", ands.join(" AND "))
            });
        }
        if ors.is_empty() {
            "false".into()
        } else {
            format!("({})", ors.join(" OR "))
        }
    }

    /// Whether a record with these JSON `fields` is in scope.
    pub fn matches(
        &self,
        fields: &serde_json::Map<String, serde_json::Value>,
        caller: Uuid,
    ) -> bool {
        let Self::Some(any) = self else {
            return true;
        };
        let text = |name: &str| -> Option<String> {
            match fields.get(name) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(v) => Some(v.to_string()),
            }
        };
        any.iter().any(|all| {
            all.iter().all(|f| {
                let have = text(&f.field);
                let want = Self::resolve(f.value.as_deref(), caller);
                match f.operator {
                    Operator::IsNull => have.is_none(),
                    Operator::NotNull => have.is_some(),
                    Operator::Eq => have.is_some() && have == want,
                    Operator::Ne => have != want,
                    Operator::In => have.is_some_and(|h| {
                        want.unwrap_or_default().split(',').any(|w| {
                            let w = w.trim();
                            (if w == CALLER {
                                caller.to_string()
                            } else {
                                w.to_owned()
                            }) == h
                        })
                    }),
                }
            })
        })
    }
}

/// What a caller may read and write.
#[derive(Debug, Default)]
pub struct Permissions {
    /// Administrators: everything.
    all: bool,
    read: HashMap<String, Scope>,
    write: HashMap<String, Scope>,
}

#[derive(FromQueryResult)]
struct Grant {
    role_id: Uuid,
    model: String,
    can_pull: bool,
    can_push: bool,
}

#[derive(FromQueryResult)]
struct FilterRow {
    role_id: Uuid,
    model: String,
    field: String,
    operator: String,
    value: Option<String>,
}

fn add(map: &mut HashMap<String, Scope>, model: &str, filters: Vec<RowFilter>) {
    let entry = map
        .entry(model.to_owned())
        .or_insert_with(|| Scope::Some(Vec::new()));
    match entry {
        Scope::All => {}
        Scope::Some(_) if filters.is_empty() => *entry = Scope::All,
        Scope::Some(any) => any.push(filters),
    }
}

impl Permissions {
    /// The permissions of a caller holding `roles`.
    pub async fn load(
        conn: &impl ConnectionTrait,
        roles: &[String],
    ) -> Result<Self, sea_orm::DbErr> {
        if roles.iter().any(|r| r == ADMINISTRATORS) {
            return Ok(Self {
                all: true,
                ..Self::default()
            });
        }
        let grants = Grant::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT p.role_id, p.model, p.can_pull, p.can_push FROM sync_permissions p \
             JOIN roles r ON r.id = p.role_id WHERE r.name = ANY($1::text[])",
            [roles.to_vec().into()],
        ))
        .all(conn)
        .await?;
        let filters = FilterRow::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT f.role_id, f.model, f.field, f.operator, f.value FROM sync_filters f \
             JOIN roles r ON r.id = f.role_id WHERE r.name = ANY($1::text[])",
            [roles.to_vec().into()],
        ))
        .all(conn)
        .await?;
        let mut by_role: HashMap<(Uuid, String), Vec<RowFilter>> = HashMap::new();
        for f in filters {
            let Some(operator) = Operator::parse(&f.operator) else {
                continue;
            };
            by_role
                .entry((f.role_id, f.model))
                .or_default()
                .push(RowFilter {
                    field: f.field,
                    operator,
                    value: f.value,
                });
        }
        let mut perms = Self::default();
        for g in grants {
            let filters = by_role
                .get(&(g.role_id, g.model.clone()))
                .cloned()
                .unwrap_or_default();
            if g.can_pull {
                add(&mut perms.read, &g.model, filters.clone());
            }
            if g.can_push {
                add(&mut perms.write, &g.model, filters);
            }
        }
        Ok(perms)
    }

    /// The rows of `model` the caller may read (pull), or why not.
    pub fn read(&self, model: &Spec) -> Result<&Scope, Denied> {
        self.scope(&self.read, model, "read")
    }

    /// The rows of `model` the caller may write (push), or why not.
    pub fn write(&self, model: &Spec) -> Result<&Scope, Denied> {
        self.scope(&self.write, model, "write")
    }

    fn scope<'a>(
        &'a self,
        map: &'a HashMap<String, Scope>,
        model: &Spec,
        action: &'static str,
    ) -> Result<&'a Scope, Denied> {
        static ALL: Scope = Scope::All;
        if self.all {
            return Ok(&ALL);
        }
        map.get(model.name()).ok_or(Denied {
            action,
            model: model.name(),
        })
    }
}
