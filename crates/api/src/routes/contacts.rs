//! Contacts: the people at a client.

use chrono::{DateTime, Utc};
use domain::roles::Area;
use domain::validation::{email, opt_text, optional, text};
use sea_orm::FromQueryResult;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::routes::crud::{Changes, Filter, Table, double_option};
use crate::routes::resource::{Resource, resource_routes};

pub struct Contacts;

#[derive(Serialize, FromQueryResult, ToSchema)]
pub struct Contact {
    pub id: Uuid,
    pub client_id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub position: Option<String>,
    pub is_primary: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactCreate {
    pub id: Option<Uuid>,
    pub client_id: Uuid,
    pub first_name: String,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub position: Option<String>,
    pub is_primary: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    pub client_id: Option<Uuid>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub position: Option<Option<String>>,
    pub is_primary: Option<bool>,
    /// The version the change was made against (or send If-Match).
    pub version: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ContactQuery {
    /// 1 to 500; default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// created_at, updated_at or last_name; prefix - for descending.
    pub order: Option<String>,
    pub client_id: Option<Uuid>,
    pub is_primary: Option<bool>,
    /// Case-insensitive substring of the first or last name.
    pub q: Option<String>,
}

impl Resource for Contacts {
    const TABLE: Table = Table {
        name: "contacts",
        noun: "contact",
        columns: "id, client_id, first_name, last_name, email, phone, position, is_primary, \
                  version, created_at, updated_at",
        sorts: &[
            ("created_at", "timestamptz"),
            ("updated_at", "timestamptz"),
            ("last_name", "text"),
        ],
    };
    const AREA: Area = Area::Crm;
    type Out = Contact;
    type Create = ContactCreate;
    type Patch = ContactPatch;
    type Query = ContactQuery;

    fn filters(q: &ContactQuery) -> Result<Vec<Filter>, ApiError> {
        let mut f = Vec::new();
        if let Some(v) = q.client_id {
            f.push(Filter::eq("client_id", v));
        }
        if let Some(v) = q.is_primary {
            f.push(Filter::eq("is_primary", v));
        }
        if let Some(v) = &q.q {
            f.push(Filter::ilike("(first_name || ' ' || last_name)", v));
        }
        Ok(f)
    }

    fn create(b: ContactCreate, _caller: &AuthUser) -> Changes {
        let mut c = Changes::new();
        if let Some(id) = b.id {
            c.put("id", id);
        }
        c.put("client_id", b.client_id);
        c.set("first_name", Some(text(&b.first_name, 1, 100)));
        c.set(
            "last_name",
            Some(text(b.last_name.as_deref().unwrap_or(""), 0, 100)),
        );
        c.set("email", Some(optional(b.email.as_deref(), email)));
        c.set("phone", Some(opt_text(b.phone.as_deref(), 50)));
        c.set("position", Some(opt_text(b.position.as_deref(), 100)));
        c.put("is_primary", b.is_primary.unwrap_or(false));
        c
    }

    fn patch(b: ContactPatch) -> Changes {
        let mut c = Changes::new();
        if let Some(v) = b.client_id {
            c.put("client_id", v);
        }
        c.set(
            "first_name",
            b.first_name.as_deref().map(|v| text(v, 1, 100)),
        );
        c.set("last_name", b.last_name.as_deref().map(|v| text(v, 0, 100)));
        c.set(
            "email",
            b.email.as_ref().map(|v| optional(v.as_deref(), email)),
        );
        c.set(
            "phone",
            b.phone.as_ref().map(|v| opt_text(v.as_deref(), 50)),
        );
        c.set(
            "position",
            b.position.as_ref().map(|v| opt_text(v.as_deref(), 100)),
        );
        if let Some(v) = b.is_primary {
            c.put("is_primary", v);
        }
        c
    }
}

resource_routes!(
    Contacts,
    Contact,
    ContactCreate,
    ContactPatch,
    ContactQuery,
    "contacts",
    "/api/v1/contacts",
    "/api/v1/contacts/{id}",
    "/contacts",
    "/contacts/{id}"
);
