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

use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, PostgresQueryBuilder, Query};
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

    /// The rows in scope, as a condition on alias `t`.
    pub fn condition(&self, model: &Spec, caller: Uuid) -> Condition {
        let Self::Some(any) = self else {
            return Condition::all();
        };
        let mut ors = Condition::any();
        for all in any {
            let mut ands = Condition::all();
            for f in all {
                // Filters name public fields only; anything else matches
                // nothing, so a stale filter hides rows rather than leaks them.
                if model.public_field(&f.field).is_none() {
                    ands = ands.add(Expr::cust("false"));
                    continue;
                }
                let col = Expr::col((Alias::new("t"), Alias::new(f.field.as_str())))
                    .cast_as(Alias::new("text"));
                let value = Self::resolve(f.value.as_deref(), caller);
                ands = ands.add(match f.operator {
                    Operator::IsNull => col.is_null(),
                    Operator::NotNull => col.is_not_null(),
                    Operator::Eq => col.eq(value),
                    Operator::Ne => match value {
                        Some(v) => col.clone().ne(v).or(col.is_null()),
                        None => col.is_not_null(),
                    },
                    Operator::In => col.is_in(
                        value
                            .unwrap_or_default()
                            .split(',')
                            .map(|s| Self::resolve(Some(s.trim()), caller).unwrap_or_default()),
                    ),
                });
            }
            ors = ors.add(ands);
        }
        if any.is_empty() {
            return Condition::all().add(Expr::cust("false"));
        }
        ors
    }

    /// [`Self::condition`] as SQL for a hand-written statement, its
    /// parameters appended to `values` and numbered after them.
    pub fn sql(&self, model: &Spec, caller: Uuid, values: &mut Vec<Value>) -> String {
        if matches!(self, Self::All) {
            return "true".into();
        }
        let (text, params) = Query::select()
            .expr(Expr::cust("1"))
            .cond_where(self.condition(model, caller))
            .build(PostgresQueryBuilder);
        let cond = text.split_once(" WHERE ").map_or("true", |(_, c)| c);
        let sql = format!("({})", crate::store::rebase(cond, values.len()));
        values.extend(params.0);
        sql
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

/// A role's grant on a model, with the role's filters on it.
#[derive(FromQueryResult)]
struct Grant {
    model: String,
    can_pull: bool,
    can_push: bool,
    /// `[{"field", "operator", "value"}]`.
    filters: String,
}

#[derive(Deserialize)]
struct StoredFilter {
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
        // One round trip: each grant with its role's filters on the model.
        let grants = Grant::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT p.model, p.can_pull, p.can_push, coalesce((\
                 SELECT json_agg(json_build_object('field', f.field, 'operator', f.operator, \
                                                   'value', f.value) ORDER BY f.created_at) \
                 FROM sync_filters f WHERE f.role_id = p.role_id AND f.model = p.model), \
               '[]')::text AS filters \
             FROM sync_permissions p JOIN roles r ON r.id = p.role_id \
             WHERE r.name = ANY($1::text[]) AND (p.can_pull OR p.can_push)",
            [roles.to_vec().into()],
        ))
        .all(conn)
        .await?;
        let mut perms = Self::default();
        for g in grants {
            let stored: Vec<StoredFilter> = serde_json::from_str(&g.filters)
                .map_err(|e| sea_orm::DbErr::Custom(format!("row filters: {e}")))?;
            let filters: Vec<RowFilter> = stored
                .into_iter()
                .filter_map(|f| {
                    Some(RowFilter {
                        operator: Operator::parse(&f.operator)?,
                        field: f.field,
                        value: f.value,
                    })
                })
                .collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::CLIENTS;

    fn filter(field: &str, operator: Operator, value: Option<&str>) -> RowFilter {
        RowFilter {
            field: field.into(),
            operator,
            value: value.map(str::to_owned),
        }
    }

    #[test]
    fn scopes_as_sql_and_in_memory() {
        let me = Uuid::new_v4();
        let mine = Scope::Some(vec![
            vec![filter("assigned_manager_id", Operator::Eq, Some(CALLER))],
            vec![
                filter("status", Operator::In, Some("lead, $user")),
                filter("city", Operator::Ne, Some("Oslo")),
            ],
        ]);
        let mut values = vec![Value::from(1)];
        let sql = mine.sql(&CLIENTS, me, &mut values);
        assert!(sql.contains("$2") && !sql.contains("$1"), "{sql}");
        assert_eq!(values.len(), 5, "{values:?}");
        assert_eq!(values[1], Value::from(me.to_string()));
        let row = |v: serde_json::Value| v.as_object().cloned().expect("object");
        assert!(mine.matches(&row(serde_json::json!({"assigned_manager_id": me})), me));
        assert!(mine.matches(
            &row(serde_json::json!({"status": "lead", "city": null})),
            me
        ));
        assert!(!mine.matches(
            &row(serde_json::json!({"status": "lead", "city": "Oslo"})),
            me
        ));
        // No conjunction reaches nothing; a filter on a private or unknown
        // field hides rows rather than leaking them.
        assert_eq!(
            Scope::Some(vec![]).sql(&CLIENTS, me, &mut vec![]),
            "(false)"
        );
        let stale = Scope::Some(vec![vec![filter("password_hash", Operator::IsNull, None)]]);
        assert!(stale.sql(&CLIENTS, me, &mut vec![]).contains("false"));
        assert_eq!(Scope::All.sql(&CLIENTS, me, &mut vec![]), "true");
    }
}
