//! The model registry: which tables sync, under which names, which fields
//! each exposes (private fields such as password hashes never leave the
//! server), and how each settles conflicting writes.

use serde::Serialize;

/// The type of a synced field, as JSON carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Uuid,
    Text {
        max: usize,
    },
    Bool,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339.
    Timestamp,
    /// One of a closed set of strings.
    Choice(&'static [&'static str]),
}

impl FieldType {
    /// The PostgreSQL type of the column.
    pub fn sql(self) -> &'static str {
        match self {
            Self::Uuid => "uuid",
            Self::Text { .. } | Self::Choice(_) => "text",
            Self::Bool => "boolean",
            Self::Date => "date",
            Self::Timestamp => "timestamptz",
        }
    }
}

/// A field a model exposes.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
    pub nullable: bool,
    /// Clients may set it (otherwise the server does).
    pub writable: bool,
}

const fn f(name: &'static str, ty: FieldType, nullable: bool) -> Field {
    Field {
        name,
        ty,
        nullable,
        writable: true,
    }
}

const fn read_only(name: &'static str, ty: FieldType) -> Field {
    Field {
        name,
        ty,
        nullable: true,
        writable: false,
    }
}

/// How a write made against an old version is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Refuse it and return the server's copy (the default).
    Reject,
    /// Keep the server's copy; report it.
    ServerWins,
    /// Apply the client's fields regardless.
    ClientWins,
    /// Apply the client's fields the server has not changed since the
    /// client's base version; keep the server's for the rest.
    Merge,
}

/// A synced table.
#[derive(Debug)]
pub struct Model {
    /// The name clients use.
    pub name: &'static str,
    /// The seed package's `app.Model` name, for its clients.
    pub legacy_name: &'static str,
    pub table: &'static str,
    /// Exposed fields besides `id`, `version`, `created_at`, `updated_at`.
    pub fields: &'static [Field],
    pub strategy: Strategy,
}

impl Model {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// `json_build_object(...)` of the exposed columns of alias `t`.
    pub fn json_sql(&self) -> String {
        let mut parts = vec![
            "'id', t.id".to_owned(),
            "'version', t.version".to_owned(),
            "'created_at', t.created_at".to_owned(),
            "'updated_at', t.updated_at".to_owned(),
        ];
        parts.extend(self.fields.iter().map(|f| format!("'{0}', t.{0}", f.name)));
        format!("json_build_object({})", parts.join(", "))
    }
}

const UUID: FieldType = FieldType::Uuid;
const BOOL: FieldType = FieldType::Bool;
const fn text(max: usize) -> FieldType {
    FieldType::Text { max }
}

pub static MODELS: &[Model] = &[
    Model {
        name: "branches",
        legacy_name: "crm.Branch",
        table: "branches",
        fields: &[
            f("name", text(200), false),
            f("code", text(32), true),
            f("address", text(500), true),
            f("city", text(100), true),
            f("country", text(2), true),
            f("phone", text(50), true),
            f("is_active", BOOL, false),
        ],
        strategy: Strategy::ServerWins,
    },
    Model {
        name: "users",
        legacy_name: "crm.User",
        table: "users",
        fields: &[
            f("email", text(254), false),
            f("full_name", text(200), false),
            f("phone", text(50), true),
            f("branch_id", UUID, true),
            f("is_active", BOOL, false),
            read_only("last_login_at", FieldType::Timestamp),
        ],
        strategy: Strategy::Reject,
    },
    Model {
        name: "clients",
        legacy_name: "crm.Client",
        table: "clients",
        fields: &[
            f("name", text(200), false),
            f(
                "status",
                FieldType::Choice(&["lead", "prospect", "active", "inactive", "archived"]),
                false,
            ),
            f("department", text(100), true),
            f("assigned_manager_id", UUID, true),
            f("branch_id", UUID, true),
            f("email", text(254), true),
            f("phone", text(50), true),
            f("website", text(300), true),
            f("address", text(500), true),
            f("city", text(100), true),
            f("country", text(2), true),
            f("tax_id", text(50), true),
        ],
        strategy: Strategy::Merge,
    },
    Model {
        name: "contacts",
        legacy_name: "crm.Contact",
        table: "contacts",
        fields: &[
            f("client_id", UUID, false),
            f("first_name", text(100), false),
            f("last_name", text(100), false),
            f("email", text(254), true),
            f("phone", text(50), true),
            f("position", text(100), true),
            f("is_primary", BOOL, false),
        ],
        strategy: Strategy::Merge,
    },
    Model {
        name: "tasks",
        legacy_name: "crm.Task",
        table: "tasks",
        fields: &[
            f("title", text(300), false),
            f("description", text(20_000), true),
            f(
                "status",
                FieldType::Choice(&["open", "in_progress", "done", "cancelled"]),
                false,
            ),
            f(
                "priority",
                FieldType::Choice(&["low", "normal", "high", "urgent"]),
                false,
            ),
            f("due_date", FieldType::Date, true),
            f("assignee_id", UUID, true),
            f("client_id", UUID, true),
            f("created_by", UUID, true),
            f("completed_at", FieldType::Timestamp, true),
        ],
        strategy: Strategy::Reject,
    },
    Model {
        name: "notes",
        legacy_name: "crm.Note",
        table: "notes",
        fields: &[
            f("body", text(20_000), false),
            f("client_id", UUID, true),
            f("task_id", UUID, true),
            f("author_id", UUID, true),
        ],
        strategy: Strategy::ClientWins,
    },
];

/// The model called `name` (its sync name or its legacy `app.Model` name).
pub fn model(name: &str) -> Option<&'static Model> {
    MODELS
        .iter()
        .find(|m| m.name == name || m.legacy_name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_no_private_fields() {
        assert_eq!(model("clients").map(|m| m.table), Some("clients"));
        assert_eq!(model("crm.Client").map(|m| m.name), Some("clients"));
        assert!(model("nope").is_none());
        let users = model("users").expect("users");
        assert!(users.field("password_hash").is_none());
        assert!(users.json_sql().contains("'email', t.email"));
        assert!(!users.json_sql().contains("password"));
    }
}
