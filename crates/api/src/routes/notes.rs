//! Notes on a client or on a task.

use chrono::{DateTime, Utc};
use domain::roles::Area;
use domain::validation::text;
use sea_orm::FromQueryResult;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::routes::crud::{Changes, Filter, Table};
use crate::routes::resource::{Resource, resource_routes};

pub struct Notes;

#[derive(Serialize, FromQueryResult, ToSchema)]
pub struct Note {
    pub id: Uuid,
    pub body: String,
    pub client_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
    pub author_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A note is on exactly one of a client or a task.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteCreate {
    pub id: Option<Uuid>,
    pub body: String,
    pub client_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotePatch {
    pub body: Option<String>,
    /// The version the change was made against (or send If-Match).
    pub version: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NoteQuery {
    /// 1 to 500; default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// created_at or updated_at; prefix - for descending.
    pub order: Option<String>,
    pub client_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
    pub author_id: Option<Uuid>,
}

impl Resource for Notes {
    const TABLE: Table = Table {
        name: "notes",
        noun: "note",
        columns: "id, body, client_id, task_id, author_id, version, created_at, updated_at",
        sorts: &[("created_at", "timestamptz"), ("updated_at", "timestamptz")],
    };
    const AREA: Area = Area::Crm;
    type Out = Note;
    type Create = NoteCreate;
    type Patch = NotePatch;
    type Query = NoteQuery;

    fn filters(q: &NoteQuery) -> Result<Vec<Filter>, ApiError> {
        let mut f = Vec::new();
        if let Some(v) = q.client_id {
            f.push(Filter::eq("client_id", v));
        }
        if let Some(v) = q.task_id {
            f.push(Filter::eq("task_id", v));
        }
        if let Some(v) = q.author_id {
            f.push(Filter::eq("author_id", v));
        }
        Ok(f)
    }

    fn create(b: NoteCreate, caller: &AuthUser) -> Changes {
        let mut c = Changes::new();
        if let Some(id) = b.id {
            c.put("id", id);
        }
        c.set("body", Some(text(&b.body, 1, 20_000)));
        match (b.client_id, b.task_id) {
            (Some(_), Some(_)) | (None, None) => {
                c.error("client_id", "give exactly one of client_id and task_id");
            }
            (client, task) => {
                c.put("client_id", client);
                c.put("task_id", task);
            }
        }
        c.put("author_id", caller.id);
        c
    }

    fn patch(b: NotePatch) -> Changes {
        let mut c = Changes::new();
        c.set("body", b.body.as_deref().map(|v| text(v, 1, 20_000)));
        c
    }
}

resource_routes!(
    Notes,
    Note,
    NoteCreate,
    NotePatch,
    NoteQuery,
    "notes",
    "/api/v1/notes",
    "/api/v1/notes/{id}",
    "/notes",
    "/notes/{id}"
);
