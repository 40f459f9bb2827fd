//! Tasks: work items, usually about a client, assigned to a user.

use chrono::{DateTime, NaiveDate, Utc};
use domain::roles::Area;
use domain::validation::{opt_text, text};
use domain::{TaskPriority, TaskStatus};
use sea_orm::FromQueryResult;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::routes::crud::{Changes, Filter, Table, double_option};
use crate::routes::resource::{Resource, resource_routes};

pub struct Tasks;

#[derive(Serialize, FromQueryResult, ToSchema)]
pub struct Task {
    pub id: Uuid,
    pub title: String,
    pub description: Option<String>,
    /// open, in_progress, done or cancelled.
    pub status: String,
    /// low, normal, high or urgent.
    pub priority: String,
    pub due_date: Option<NaiveDate>,
    pub assignee_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    pub completed_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskCreate {
    pub id: Option<Uuid>,
    pub title: String,
    pub description: Option<String>,
    /// Default `open`.
    pub status: Option<String>,
    /// Default `normal`.
    pub priority: Option<String>,
    pub due_date: Option<NaiveDate>,
    pub assignee_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    pub title: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub status: Option<String>,
    pub priority: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<NaiveDate>)]
    pub due_date: Option<Option<NaiveDate>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub assignee_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub client_id: Option<Option<Uuid>>,
    /// The version the change was made against (or send If-Match).
    pub version: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TaskQuery {
    /// 1 to 500; default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// created_at, updated_at, due_date or title; prefix - for descending.
    pub order: Option<String>,
    pub status: Option<String>,
    pub priority: Option<String>,
    pub assignee_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    /// Due on or before this date.
    pub due_before: Option<NaiveDate>,
    /// Due on or after this date.
    pub due_after: Option<NaiveDate>,
}

fn status(v: &str) -> Result<String, domain::UnknownValue> {
    v.parse::<TaskStatus>().map(|s| s.as_str().to_owned())
}

fn priority(v: &str) -> Result<String, domain::UnknownValue> {
    v.parse::<TaskPriority>().map(|s| s.as_str().to_owned())
}

impl Resource for Tasks {
    const TABLE: Table = Table {
        name: "tasks",
        noun: "task",
        columns: "id, title, description, status, priority, due_date, assignee_id, client_id, \
                  created_by, completed_at, version, created_at, updated_at",
        sorts: &[
            ("created_at", "timestamptz"),
            ("updated_at", "timestamptz"),
            ("due_date", "date"),
            ("title", "text"),
        ],
    };
    const AREA: Area = Area::Crm;
    type Out = Task;
    type Create = TaskCreate;
    type Patch = TaskPatch;
    type Query = TaskQuery;

    fn filters(q: &TaskQuery) -> Result<Vec<Filter>, ApiError> {
        let mut errors = domain::FieldErrors::new();
        let mut f = Vec::new();
        if let Some(v) = q
            .status
            .as_deref()
            .and_then(|v| errors.check("status", status(v)))
        {
            f.push(Filter::eq("status", v));
        }
        if let Some(v) = q
            .priority
            .as_deref()
            .and_then(|v| errors.check("priority", priority(v)))
        {
            f.push(Filter::eq("priority", v));
        }
        if let Some(v) = q.assignee_id {
            f.push(Filter::eq("assignee_id", v));
        }
        if let Some(v) = q.client_id {
            f.push(Filter::eq("client_id", v));
        }
        if let Some(v) = q.due_before {
            f.push(Filter {
                sql: "due_date <= $?".into(),
                values: vec![v.into()],
            });
        }
        if let Some(v) = q.due_after {
            f.push(Filter {
                sql: "due_date >= $?".into(),
                values: vec![v.into()],
            });
        }
        errors.finish(|| f).map_err(ApiError::Validation)
    }

    fn create(b: TaskCreate, caller: &AuthUser) -> Changes {
        let mut c = Changes::new();
        if let Some(id) = b.id {
            c.put("id", id);
        }
        c.set("title", Some(text(&b.title, 1, 300)));
        c.set(
            "description",
            Some(opt_text(b.description.as_deref(), 20_000)),
        );
        let st = status(b.status.as_deref().unwrap_or("open"));
        if st.as_deref() == Ok("done") {
            c.put("completed_at", Utc::now());
        }
        c.set("status", Some(st));
        c.set(
            "priority",
            Some(priority(b.priority.as_deref().unwrap_or("normal"))),
        );
        c.put("due_date", b.due_date);
        c.put("assignee_id", b.assignee_id);
        c.put("client_id", b.client_id);
        c.put("created_by", caller.id);
        c
    }

    fn patch(b: TaskPatch) -> Changes {
        let mut c = Changes::new();
        c.set("title", b.title.as_deref().map(|v| text(v, 1, 300)));
        c.set(
            "description",
            b.description
                .as_ref()
                .map(|v| opt_text(v.as_deref(), 20_000)),
        );
        if let Some(st) = b.status.as_deref().map(status) {
            // Completion time follows the status.
            match st.as_deref() {
                Ok("done") => c.put("completed_at", Some(Utc::now())),
                Ok(_) => c.put("completed_at", None::<DateTime<Utc>>),
                Err(_) => {}
            }
            c.set("status", Some(st));
        }
        c.set("priority", b.priority.as_deref().map(priority));
        if let Some(v) = b.due_date {
            c.put("due_date", v);
        }
        if let Some(v) = b.assignee_id {
            c.put("assignee_id", v);
        }
        if let Some(v) = b.client_id {
            c.put("client_id", v);
        }
        c
    }
}

resource_routes!(
    Tasks,
    Task,
    TaskCreate,
    TaskPatch,
    TaskQuery,
    "tasks",
    "/api/v1/tasks",
    "/api/v1/tasks/{id}",
    "/tasks",
    "/tasks/{id}"
);
