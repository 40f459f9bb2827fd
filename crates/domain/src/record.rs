//! One description per CRM model, derived from its sea-orm entity.
//!
//! A model's field list, names and nullability come from the entity's
//! column enum; what each column accepts and who owns it is an exhaustive
//! `match` over that enum ([`Describe::rule`]), so a column added to an
//! entity does not compile until its rule is written. REST, the OpenAPI
//! document, the sync model registry and every writer read this description
//! and nothing else.

use std::sync::LazyLock;

use sea_orm::{ColumnTrait, EntityTrait, IdenStatic, Iterable};
use serde::Serialize;

use crate::entity;
use crate::status::{ClientStatus, TaskPriority, TaskStatus};

/// How a text field's value is normalised and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Trimmed, no control characters but newline and tab.
    Plain,
    /// An e-mail address, lower-cased.
    Email,
    /// A two-letter ISO 3166 country code, upper-cased.
    Country,
}

/// What values a field takes, as JSON carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Uuid,
    Text {
        min: usize,
        max: usize,
        format: Format,
    },
    Bool,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339.
    Timestamp,
    /// The record's version: a positive integer.
    Version,
    /// One of a closed set of strings.
    Choice(&'static [&'static str]),
    /// The values of the tenant's custom fields: an object checked against
    /// its field sets ([`crate::custom`]).
    Custom,
}

impl Kind {
    /// The PostgreSQL type of the column.
    pub fn sql(self) -> &'static str {
        match self {
            Self::Uuid => "uuid",
            Self::Text { .. } | Self::Choice(_) => "text",
            Self::Bool => "boolean",
            Self::Date => "date",
            Self::Timestamp => "timestamptz",
            Self::Version => "bigint",
            Self::Custom => "jsonb",
        }
    }
}

/// Who writes a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The record's id: a client may mint it on create, never change it.
    Key,
    /// Clients, on create and update.
    Client,
    /// Clients on create; fixed afterwards.
    CreateOnly,
    /// The writing user, on create; fixed afterwards.
    Author,
    /// The server alone (versions, timestamps, derived fields).
    Server,
    /// Nobody outside the server: never shown, never accepted.
    Private,
}

/// A value a field takes on create when the input leaves it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initial {
    Bool(bool),
    Text(&'static str),
}

impl Initial {
    pub fn json(self) -> serde_json::Value {
        match self {
            Self::Bool(b) => b.into(),
            Self::Text(s) => s.into(),
        }
    }
}

/// What a column accepts: [`Describe::rule`] gives one per column.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub kind: Kind,
    pub owner: Owner,
    pub initial: Option<Initial>,
}

impl Rule {
    pub const fn client(kind: Kind) -> Self {
        Self {
            kind,
            owner: Owner::Client,
            initial: None,
        }
    }
    pub const fn owned(kind: Kind, owner: Owner) -> Self {
        Self {
            kind,
            owner,
            initial: None,
        }
    }
    pub const fn or(self, initial: Initial) -> Self {
        Self {
            initial: Some(initial),
            ..self
        }
    }
    pub const fn id() -> Self {
        Self::owned(Kind::Uuid, Owner::Key)
    }
    pub const fn version() -> Self {
        Self::owned(Kind::Version, Owner::Server)
    }
    pub const fn stamp() -> Self {
        Self::owned(Kind::Timestamp, Owner::Server)
    }
}

/// A text of `min..=max` characters.
pub const fn text(min: usize, max: usize) -> Kind {
    Kind::Text {
        min,
        max,
        format: Format::Plain,
    }
}
pub const EMAIL: Kind = Kind::Text {
    min: 3,
    max: 254,
    format: Format::Email,
};
pub const COUNTRY: Kind = Kind::Text {
    min: 2,
    max: 2,
    format: Format::Country,
};

/// One field of a model.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
    pub owner: Owner,
    pub initial: Option<Initial>,
}

impl Field {
    /// Shown to callers (every field but private ones).
    pub fn public(&self) -> bool {
        self.owner != Owner::Private
    }
}

/// How a write made against an old version is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Refuse it and return the server's copy.
    Reject,
    /// Keep the server's copy; report it.
    ServerWins,
    /// Apply the client's fields regardless.
    ClientWins,
    /// Apply the client's fields the server has not changed since the
    /// client's base version; keep the server's for the rest.
    Merge,
}

/// A list filter a model accepts as a query parameter.
#[derive(Debug, Clone, Copy)]
pub enum ListFilter {
    /// `?{field}=value`: the field equals the value (checked as the field).
    Eq(&'static str),
    /// `?q=text`: a case-insensitive substring of any of these SQL
    /// expressions over the model's columns.
    Search(&'static [&'static str]),
    /// `?{param}=date`: the date field is on or before the date.
    OnOrBefore(&'static str, &'static str),
    /// `?{param}=date`: the date field is on or after the date.
    OnOrAfter(&'static str, &'static str),
    /// `?role=name`: users holding the role.
    HasRole,
}

impl ListFilter {
    pub fn param(self) -> &'static str {
        match self {
            Self::Eq(f) => f,
            Self::Search(_) => "q",
            Self::OnOrBefore(p, _) | Self::OnOrAfter(p, _) => p,
            Self::HasRole => "role",
        }
    }
}

/// A column the server computes from others, on every write path.
#[derive(Debug, Clone, Copy)]
pub struct Derived {
    pub column: &'static str,
    /// Its value in an INSERT, over the checked input `x.d` (jsonb).
    pub on_insert: &'static str,
    /// Its value in an UPDATE, over the input `x.d` and the old row `t`.
    pub on_update: &'static str,
}

/// A rule over several fields of one input.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// On create, exactly one of the two fields is set; the error names the
    /// first.
    ExactlyOne(&'static str, &'static str),
}

/// The parts of a model's description that are not per column.
pub struct Meta {
    /// The name REST paths and sync clients use.
    pub name: &'static str,
    /// The seed sync package's `app.Model` name.
    pub legacy_name: &'static str,
    /// What one record is called in messages.
    pub noun: &'static str,
    pub strategy: Strategy,
    /// Fields `order=` accepts.
    pub sorts: &'static [&'static str],
    pub filters: &'static [ListFilter],
    pub derived: &'static [Derived],
    pub checks: &'static [Check],
    /// Fields shown after the columns: (name, SQL over alias `t`).
    pub computed: &'static [(&'static str, &'static str)],
    /// Run after records are inserted on any path, with `$1` the new ids.
    pub after_insert: Option<&'static str>,
}

/// A CRM entity's description: its meta and one rule per column.
pub trait Describe: EntityTrait {
    const META: Meta;
    fn rule(column: Self::Column) -> Rule;
}

/// A model, described once.
pub struct Spec {
    pub table: &'static str,
    pub fields: Vec<Field>,
    pub meta: Meta,
    /// The record as callers see it, as a SELECT list over alias `t`:
    /// computed once, used by every read (see [`crate::render`]).
    columns: String,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.meta.name)
    }
}

impl Spec {
    /// The description of entity `E`.
    pub fn of<E: Describe>() -> Self {
        let fields: Vec<Field> = E::Column::iter()
            .map(|c| {
                let rule = E::rule(c);
                Field {
                    name: c.as_str(),
                    kind: rule.kind,
                    nullable: c.def().is_null(),
                    owner: rule.owner,
                    initial: rule.initial,
                }
            })
            .collect();
        let meta = E::META;
        let public: Vec<&Field> = fields.iter().filter(|f| f.public()).collect();
        let mut columns: Vec<String> = public.iter().map(|f| format!("t.{}", f.name)).collect();
        for (_, sql) in meta.computed {
            columns.push((*sql).to_owned());
        }
        Self {
            table: E::default().table_name(),
            columns: columns.join(", "),
            fields,
            meta,
        }
    }

    pub fn name(&self) -> &'static str {
        self.meta.name
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Whether a read of this model can name its table by schema: its
    /// SELECT list and filters reach no other table of the tenant.
    pub fn reads_by_schema(&self) -> bool {
        self.meta.computed.is_empty()
            && !self
                .meta
                .filters
                .iter()
                .any(|f| matches!(f, ListFilter::HasRole))
    }

    /// Whether records of this model carry custom fields.
    pub fn has_custom(&self) -> bool {
        self.fields.iter().any(|f| f.kind == Kind::Custom)
    }

    /// A field callers see, by name.
    pub fn public_field(&self, name: &str) -> Option<&Field> {
        self.field(name).filter(|f| f.public())
    }

    /// The SELECT list of a record as callers see it, over alias `t`: the
    /// public fields, then the computed ones.
    pub fn columns(&self) -> &str {
        &self.columns
    }
}

impl Describe for entity::branches::Entity {
    const META: Meta = Meta {
        name: "branches",
        legacy_name: "crm.Branch",
        noun: "branch",
        strategy: Strategy::ServerWins,
        sorts: &["created_at", "updated_at", "name"],
        filters: &[
            ListFilter::Eq("is_active"),
            ListFilter::Eq("country"),
            ListFilter::Search(&["name"]),
        ],
        derived: &[],
        checks: &[],
        computed: &[],
        after_insert: None,
    };
    fn rule(c: Self::Column) -> Rule {
        use entity::branches::Column as C;
        match c {
            C::Id => Rule::id(),
            C::Name => Rule::client(text(1, 200)),
            C::Code => Rule::client(text(1, 32)),
            C::Address => Rule::client(text(1, 500)),
            C::City => Rule::client(text(1, 100)),
            C::Country => Rule::client(COUNTRY),
            C::Phone => Rule::client(text(1, 50)),
            C::IsActive => Rule::client(Kind::Bool).or(Initial::Bool(true)),
            C::Version => Rule::version(),
            C::CreatedAt | C::UpdatedAt => Rule::stamp(),
        }
    }
}

impl Describe for entity::users::Entity {
    const META: Meta = Meta {
        name: "users",
        legacy_name: "crm.User",
        noun: "user",
        strategy: Strategy::Reject,
        sorts: &["created_at", "updated_at", "email", "full_name"],
        filters: &[
            ListFilter::Eq("is_active"),
            ListFilter::Eq("branch_id"),
            ListFilter::HasRole,
            ListFilter::Search(&["email", "full_name"]),
        ],
        derived: &[],
        checks: &[],
        computed: &[(
            "roles",
            "ARRAY(SELECT r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
             WHERE ur.user_id = t.id ORDER BY r.name)",
        )],
        // Every user holds a role: new ones start as Users.
        after_insert: Some(
            "INSERT INTO user_roles (user_id, role_id) \
             SELECT u, r.id FROM unnest($1::uuid[]) u CROSS JOIN roles r WHERE r.name = 'Users' \
             ON CONFLICT DO NOTHING",
        ),
    };
    fn rule(c: Self::Column) -> Rule {
        use entity::users::Column as C;
        match c {
            C::Id => Rule::id(),
            C::Email => Rule::client(EMAIL),
            C::FullName => Rule::client(text(1, 200)),
            C::PasswordHash => Rule::owned(text(0, 1000), Owner::Private),
            C::Phone => Rule::client(text(1, 50)),
            C::BranchId => Rule::client(Kind::Uuid),
            C::IsActive => Rule::client(Kind::Bool).or(Initial::Bool(true)),
            C::LastLoginAt => Rule::stamp(),
            C::Version => Rule::version(),
            C::CreatedAt | C::UpdatedAt => Rule::stamp(),
        }
    }
}

impl Describe for entity::clients::Entity {
    const META: Meta = Meta {
        name: "clients",
        legacy_name: "crm.Client",
        noun: "client",
        strategy: Strategy::Merge,
        sorts: &["created_at", "updated_at", "name"],
        filters: &[
            ListFilter::Eq("status"),
            ListFilter::Eq("branch_id"),
            ListFilter::Eq("assigned_manager_id"),
            ListFilter::Eq("department"),
            ListFilter::Eq("industry"),
            ListFilter::Search(&["name"]),
        ],
        derived: &[],
        checks: &[],
        computed: &[],
        after_insert: None,
    };
    fn rule(c: Self::Column) -> Rule {
        use entity::clients::Column as C;
        match c {
            C::Id => Rule::id(),
            C::Name => Rule::client(text(1, 200)),
            C::Status => Rule::client(Kind::Choice(ClientStatus::TEXTS)).or(Initial::Text("lead")),
            C::Department => Rule::client(text(1, 100)),
            C::AssignedManagerId | C::BranchId => Rule::client(Kind::Uuid),
            C::Email => Rule::client(EMAIL),
            C::Phone => Rule::client(text(1, 50)),
            C::Website => Rule::client(text(1, 300)),
            C::Address => Rule::client(text(1, 500)),
            C::City => Rule::client(text(1, 100)),
            C::Country => Rule::client(COUNTRY),
            C::TaxId => Rule::client(text(1, 50)),
            C::Industry => Rule::client(text(1, 100)),
            C::Custom => Rule::client(Kind::Custom),
            C::Version => Rule::version(),
            C::CreatedAt | C::UpdatedAt => Rule::stamp(),
        }
    }
}

impl Describe for entity::contacts::Entity {
    const META: Meta = Meta {
        name: "contacts",
        legacy_name: "crm.Contact",
        noun: "contact",
        strategy: Strategy::Merge,
        sorts: &["created_at", "updated_at", "last_name"],
        filters: &[
            ListFilter::Eq("client_id"),
            ListFilter::Eq("is_primary"),
            ListFilter::Search(&["(first_name || ' ' || last_name)"]),
        ],
        derived: &[],
        checks: &[],
        computed: &[],
        after_insert: None,
    };
    fn rule(c: Self::Column) -> Rule {
        use entity::contacts::Column as C;
        match c {
            C::Id => Rule::id(),
            C::ClientId => Rule::client(Kind::Uuid),
            C::FirstName => Rule::client(text(1, 100)),
            C::LastName => Rule::client(text(0, 100)).or(Initial::Text("")),
            C::Email => Rule::client(EMAIL),
            C::Phone => Rule::client(text(1, 50)),
            C::Position => Rule::client(text(1, 100)),
            C::IsPrimary => Rule::client(Kind::Bool).or(Initial::Bool(false)),
            C::Custom => Rule::client(Kind::Custom),
            C::Version => Rule::version(),
            C::CreatedAt | C::UpdatedAt => Rule::stamp(),
        }
    }
}

impl Describe for entity::tasks::Entity {
    const META: Meta = Meta {
        name: "tasks",
        legacy_name: "crm.Task",
        noun: "task",
        strategy: Strategy::Reject,
        sorts: &["created_at", "updated_at", "due_date", "title"],
        filters: &[
            ListFilter::Eq("status"),
            ListFilter::Eq("priority"),
            ListFilter::Eq("assignee_id"),
            ListFilter::Eq("client_id"),
            ListFilter::OnOrBefore("due_before", "due_date"),
            ListFilter::OnOrAfter("due_after", "due_date"),
        ],
        // A task is completed when its status becomes `done`, and stops
        // being completed when it leaves `done`.
        derived: &[Derived {
            column: "completed_at",
            on_insert: "CASE WHEN x.d->>'status' = 'done' THEN now() END",
            on_update: "CASE WHEN NOT x.d ? 'status' THEN t.completed_at \
                        WHEN x.d->>'status' = 'done' THEN coalesce(t.completed_at, now()) END",
        }],
        checks: &[],
        computed: &[],
        after_insert: None,
    };
    fn rule(c: Self::Column) -> Rule {
        use entity::tasks::Column as C;
        match c {
            C::Id => Rule::id(),
            C::Title => Rule::client(text(1, 300)),
            C::Description => Rule::client(text(1, 20_000)),
            C::Status => Rule::client(Kind::Choice(TaskStatus::TEXTS)).or(Initial::Text("open")),
            C::Priority => {
                Rule::client(Kind::Choice(TaskPriority::TEXTS)).or(Initial::Text("normal"))
            }
            C::DueDate => Rule::client(Kind::Date),
            C::AssigneeId | C::ClientId => Rule::client(Kind::Uuid),
            C::CreatedBy => Rule::owned(Kind::Uuid, Owner::Author),
            C::Custom => Rule::client(Kind::Custom),
            C::CompletedAt => Rule::stamp(),
            C::Version => Rule::version(),
            C::CreatedAt | C::UpdatedAt => Rule::stamp(),
        }
    }
}

impl Describe for entity::notes::Entity {
    const META: Meta = Meta {
        name: "notes",
        legacy_name: "crm.Note",
        noun: "note",
        strategy: Strategy::ClientWins,
        sorts: &["created_at", "updated_at"],
        filters: &[
            ListFilter::Eq("client_id"),
            ListFilter::Eq("task_id"),
            ListFilter::Eq("author_id"),
        ],
        derived: &[],
        checks: &[Check::ExactlyOne("client_id", "task_id")],
        computed: &[],
        after_insert: None,
    };
    fn rule(c: Self::Column) -> Rule {
        use entity::notes::Column as C;
        match c {
            C::Id => Rule::id(),
            C::Body => Rule::client(text(1, 20_000)),
            C::ClientId | C::TaskId => Rule::owned(Kind::Uuid, Owner::CreateOnly),
            C::AuthorId => Rule::owned(Kind::Uuid, Owner::Author),
            C::Version => Rule::version(),
            C::CreatedAt | C::UpdatedAt => Rule::stamp(),
        }
    }
}

pub static BRANCHES: LazyLock<Spec> = LazyLock::new(Spec::of::<entity::branches::Entity>);
pub static USERS: LazyLock<Spec> = LazyLock::new(Spec::of::<entity::users::Entity>);
pub static CLIENTS: LazyLock<Spec> = LazyLock::new(Spec::of::<entity::clients::Entity>);
pub static CONTACTS: LazyLock<Spec> = LazyLock::new(Spec::of::<entity::contacts::Entity>);
pub static TASKS: LazyLock<Spec> = LazyLock::new(Spec::of::<entity::tasks::Entity>);
pub static NOTES: LazyLock<Spec> = LazyLock::new(Spec::of::<entity::notes::Entity>);

/// Every CRM model, in dependency order (a model's references come first).
pub fn models() -> [&'static Spec; 6] {
    [&BRANCHES, &USERS, &CLIENTS, &CONTACTS, &TASKS, &NOTES]
}

/// The model called `name` (its name or its legacy `app.Model` name).
pub fn model(name: &str) -> Option<&'static Spec> {
    models()
        .into_iter()
        .find(|m| m.meta.name == name || m.meta.legacy_name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_follow_the_entities() {
        let clients = model("crm.Client").expect("clients");
        assert_eq!(clients.table, "clients");
        assert_eq!(clients.fields[0].name, "id");
        assert!(clients.field("website").is_some_and(|f| f.nullable));
        assert!(clients.field("name").is_some_and(|f| !f.nullable));
        let status = clients.field("status").expect("status");
        assert_eq!(
            status.kind,
            Kind::Choice(&["lead", "prospect", "active", "inactive", "archived"])
        );
        let users = model("users").expect("users");
        assert!(users.public_field("password_hash").is_none());
        assert!(!users.columns().contains("password"));
        assert!(users.columns().contains("ARRAY"));
        assert!(model("nope").is_none());
        for m in models() {
            for s in m.meta.sorts {
                assert!(m.field(s).is_some(), "{}.{s}", m.name());
            }
        }
    }
}

/// How a statement names a model's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming<'a> {
    /// Unqualified, found through the tenant transaction's `search_path`.
    Path,
    /// Qualified with the tenant's schema (its name, unquoted): the
    /// statement runs on its own, outside a transaction, and its cached
    /// plan is reused whatever tenant the connection served before (a
    /// changed `search_path` makes PostgreSQL plan again). Only for models
    /// whose [`Spec::reads_by_schema`] holds.
    Schema(&'a str),
}

impl Naming<'_> {
    /// `table` as this naming writes it in SQL text.
    pub fn table(self, table: &str) -> String {
        match self {
            Naming::Path => table.to_owned(),
            Naming::Schema(s) => format!("\"{}\".{table}", s.replace('"', "\"\"")),
        }
    }
}
