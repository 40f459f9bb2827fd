//! Lists of a model's records: query parameters checked against the
//! model's description, keyset pages ordered by any sortable field, rows
//! limited to the reader's scope, each page built as JSON in PostgreSQL.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::sea_query::extension::postgres::PgExpr;
use sea_orm::sea_query::{
    Alias, Expr, ExprTrait, NullOrdering, Order, PostgresQueryBuilder, Query as Select,
};
use sea_orm::{ConnectionTrait, DbErr, Value};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::access::Scope;
use crate::check::{self, Mode, ServerFields};
use crate::custom::Custom;
use crate::record::{Kind, ListFilter, Naming, Spec};
use crate::render;
use crate::store::stmt;

/// Column `name` of alias `t`.
fn col(name: &str) -> Expr {
    Expr::col((Alias::new("t"), Alias::new(name)))
}
use crate::validation::FieldErrors;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;
/// Longest search text or filter value accepted.
pub const MAX_PARAM: usize = 200;

/// Why a list query was refused.
#[derive(Debug)]
pub enum QueryError {
    /// A parameter the model does not take.
    Unknown(String),
    Invalid(FieldErrors),
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    /// The ordering the cursor belongs to.
    o: String,
    /// The sort value of the last row, as text.
    v: Option<String>,
    /// The id of the last row.
    i: Uuid,
}

/// A checked list query.
pub struct Query {
    conditions: Vec<Expr>,
    order: String,
    column: &'static str,
    sql_type: &'static str,
    desc: bool,
    cursor: Option<Cursor>,
    limit: u32,
}

/// Parses `params` (name, value) for `spec`: paging (`limit`, `cursor`,
/// `order`) and the model's filters, each value checked as its field.
pub fn parse(
    spec: &Spec,
    custom: &Custom,
    params: &[(String, String)],
) -> Result<Query, QueryError> {
    let mut errors = FieldErrors::new();
    let mut conditions = Vec::new();
    let (mut limit, mut order, mut cursor) = (None, None, None);
    for (name, value) in params {
        match name.as_str() {
            "limit" => limit = Some(value.as_str()),
            "order" => order = Some(value.as_str()),
            "cursor" => cursor = Some(value.as_str()),
            _ if spec.has_custom() && name.starts_with("custom.") => {
                let key = &name["custom.".len()..];
                let json = check::parameter(value, MAX_PARAM).and_then(|v| custom.filter(key, v));
                match json {
                    Ok(j) => conditions.push(Expr::cust_with_values(
                        "t.custom @> $1::jsonb",
                        [Value::from(j.to_string())],
                    )),
                    Err(m) => errors.add(name, m),
                }
            }
            _ => {
                let Some(filter) = spec.meta.filters.iter().find(|f| f.param() == name) else {
                    return Err(QueryError::Unknown(name.clone()));
                };
                match condition(spec, *filter, value) {
                    Ok(c) => conditions.push(c),
                    Err(m) => errors.add(name, m),
                }
            }
        }
    }
    let limit = match limit.map(str::parse::<u32>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            errors.add("limit", format!("must be 1 to {MAX_LIMIT}"));
            DEFAULT_LIMIT
        }
    };
    let order = order.unwrap_or("created_at").to_owned();
    let (desc, name) = match order.strip_prefix('-') {
        Some(c) => (true, c),
        None => (false, order.as_str()),
    };
    let sort = spec
        .meta
        .sorts
        .iter()
        .find(|s| **s == name)
        .and_then(|s| spec.field(s));
    if sort.is_none() {
        errors.add(
            "order",
            format!(
                "must be one of {} (prefix - for descending)",
                spec.meta.sorts.join(", ")
            ),
        );
    }
    let cursor = match cursor {
        None => None,
        Some(raw) => match URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|b| serde_json::from_slice::<Cursor>(&b).ok())
            .filter(|c| c.v.as_deref().is_none_or(|v| !v.contains('\0')))
        {
            Some(c) if c.o == order => Some(c),
            Some(_) => {
                errors.add("cursor", "belongs to another ordering");
                None
            }
            None => {
                errors.add("cursor", "is not a cursor this server issued");
                None
            }
        },
    };
    let (column, sql_type) = sort.map_or(("created_at", "timestamptz"), |f| (f.name, f.kind.sql()));
    errors
        .finish(|| Query {
            conditions,
            order,
            column,
            sql_type,
            desc,
            cursor,
            limit,
        })
        .map_err(QueryError::Invalid)
}

/// The condition of one filter.
fn condition(spec: &Spec, filter: ListFilter, value: &str) -> Result<Expr, String> {
    let value = check::parameter(value, MAX_PARAM)?;
    match filter {
        ListFilter::Eq(name) => {
            let field = spec.public_field(name).ok_or("is not a field")?;
            let json = match field.kind {
                Kind::Bool => match value {
                    "true" => Json::Bool(true),
                    "false" => Json::Bool(false),
                    _ => return Err("must be true or false".into()),
                },
                _ => Json::String(value.to_owned()),
            };
            let input = serde_json::Map::from_iter([(name.to_owned(), json)]);
            let checked = check::input(
                spec,
                &Custom::none(),
                &input,
                Mode::Update,
                ServerFields::Ignore,
                None,
            )
            .map_err(|r| {
                r.errors
                    .errors
                    .into_iter()
                    .next()
                    .map_or_else(|| "is invalid".into(), |e| e.message)
            })?;
            let v = match checked.get(name) {
                Some(Json::Bool(b)) => Value::from(*b),
                Some(Json::String(s)) => Value::from(s.clone()),
                _ => return Err("must not be blank".into()),
            };
            Ok(col(name).eq(Expr::val(v).cast_as(Alias::new(field.kind.sql()))))
        }
        ListFilter::Search(exprs) => {
            let needle = format!(
                "%{}%",
                value
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            let any = exprs
                .iter()
                .map(|e| Expr::cust(*e).ilike(needle.as_str()))
                .reduce(ExprTrait::or)
                .unwrap_or_else(|| Expr::cust("false"));
            Ok(any)
        }
        ListFilter::OnOrBefore(_, column) | ListFilter::OnOrAfter(_, column) => {
            let date = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .map_err(|_| "must be a date YYYY-MM-DD")?;
            Ok(if matches!(filter, ListFilter::OnOrBefore(..)) {
                col(column).lte(date)
            } else {
                col(column).gte(date)
            })
        }
        ListFilter::HasRole => Ok(Expr::cust_with_values(
            "EXISTS (SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
             WHERE ur.user_id = t.id AND r.name = $1)",
            [value],
        )),
    }
}

/// A page: each record's JSON, and the cursor of the next page if any.
pub struct Page {
    pub items: Vec<String>,
    pub next_cursor: Option<String>,
}

impl Page {
    /// `{"items": [...], "next_cursor": ...}` without re-parsing the records.
    pub fn to_json(&self) -> String {
        let len: usize = self.items.iter().map(|i| i.len() + 1).sum();
        let mut out = String::with_capacity(len + 64);
        out.push_str("{\"items\":[");
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(item);
        }
        out.push_str("],\"next_cursor\":");
        match &self.next_cursor {
            Some(c) => out.push_str(&Json::String(c.clone()).to_string()),
            None => out.push_str("null"),
        }
        out.push('}');
        out
    }
}

/// One page of `spec`'s records in `scope` matching `query`.
pub async fn page(
    conn: &impl ConnectionTrait,
    spec: &Spec,
    naming: Naming<'_>,
    scope: &Scope,
    caller: Uuid,
    query: Query,
) -> Result<Page, DbErr> {
    let Query {
        conditions: filters,
        order,
        column,
        sql_type: ty,
        desc,
        cursor,
        limit,
    } = query;
    let (dir, nulls) = if desc {
        (Order::Desc, NullOrdering::First)
    } else {
        (Order::Asc, NullOrdering::Last)
    };
    let mut q = Select::select();
    q.expr(Expr::cust(spec.columns().to_owned()))
        .expr(col(column).cast_as(Alias::new("text")))
        .expr(col("id"));
    match naming {
        Naming::Path => q.from_as(Alias::new(spec.table), Alias::new("t")),
        Naming::Schema(s) => q.from_as((Alias::new(s), Alias::new(spec.table)), Alias::new("t")),
    }
    .cond_where(scope.condition(spec, caller))
    .cond_where(scope.condition(spec, caller))
    .order_by_with_nulls((Alias::new("t"), Alias::new(column)), dir.clone(), nulls)
    .order_by((Alias::new("t"), Alias::new("id")), dir)
    .limit(u64::from(limit) + 1);
    for c in filters {
        q.and_where(c);
    }
    if let Some(c) = cursor {
        // NULL sort values come last ascending, first descending.
        let after = |a: Expr, b: Expr| if desc { a.lt(b) } else { a.gt(b) };
        q.and_where(match c.v {
            Some(v) => {
                let past = after(
                    Expr::tuple([col(column), col("id")]),
                    Expr::tuple([Expr::val(v).cast_as(Alias::new(ty)), Expr::val(c.i)]),
                );
                if desc {
                    past.or(col(column).is_null())
                } else {
                    past
                }
            }
            None => col(column).is_null().and(after(col("id"), Expr::val(c.i))),
        });
    }
    let (sql, values) = q.build(PostgresQueryBuilder);
    let rows = conn.query_all_raw(stmt(&sql, values.0)).await?;
    let mut items = Vec::with_capacity(rows.len().min(limit as usize));
    let mut last = None;
    let w = render::width(spec);
    for row in rows.iter().take(limit as usize) {
        items.push(render::record(spec, row, 0)?);
        last = Some((
            row.try_get_by_index::<Option<String>>(w)?,
            row.try_get_by_index::<Uuid>(w + 1)?,
        ));
    }
    let next_cursor = match last {
        Some((v, i)) if rows.len() > limit as usize => {
            let c = Cursor { o: order, v, i };
            let bytes = serde_json::to_vec(&c).expect("a cursor always serialises");
            Some(URL_SAFE_NO_PAD.encode(bytes))
        }
        _ => None,
    };
    Ok(Page { items, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{CLIENTS, USERS};

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn checks_parameters() {
        assert!(matches!(
            parse(&CLIENTS, &Custom::none(), &p(&[("colour", "red")])),
            Err(QueryError::Unknown(_))
        ));
        let Err(QueryError::Invalid(e)) = parse(
            &CLIENTS,
            &Custom::none(),
            &p(&[
                ("status", "weird"),
                ("limit", "0"),
                ("order", "x"),
                ("q", "a\0"),
            ]),
        ) else {
            panic!("invalid")
        };
        assert_eq!(e.errors.len(), 4);
        let q = parse(
            &USERS,
            &Custom::none(),
            &p(&[("q", "50%_off"), ("role", "Sales")]),
        )
        .expect("valid");
        let mut select = Select::select();
        select.expr(Expr::cust("1"));
        for c in q.conditions {
            select.and_where(c);
        }
        let (sql, values) = select.build(PostgresQueryBuilder);
        assert!(
            str::contains(&sql, "((email) ILIKE $1) OR ((full_name) ILIKE $2)"),
            "{sql}"
        );
        assert!(str::contains(&sql, "r.name = $3"), "{sql}");
        assert_eq!(values.0[0], Value::from("%50\\%\\_off%".to_owned()));
    }
}
