//! Clients: the companies a tenant does business with.

use chrono::{DateTime, Utc};
use domain::ClientStatus;
use domain::roles::Area;
use domain::validation::{country, email, opt_text, optional, text};
use sea_orm::FromQueryResult;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::routes::crud::{Changes, Filter, Table, double_option};
use crate::routes::resource::{Resource, resource_routes};

pub struct Clients;

#[derive(Serialize, FromQueryResult, ToSchema)]
pub struct Client {
    pub id: Uuid,
    pub name: String,
    /// lead, prospect, active, inactive or archived.
    pub status: String,
    pub department: Option<String>,
    pub assigned_manager_id: Option<Uuid>,
    pub branch_id: Option<Uuid>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub website: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub tax_id: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientCreate {
    /// A client-minted id; a new one is made when absent.
    pub id: Option<Uuid>,
    pub name: String,
    /// Default `lead`.
    pub status: Option<String>,
    pub department: Option<String>,
    pub assigned_manager_id: Option<Uuid>,
    pub branch_id: Option<Uuid>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub website: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub tax_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub status: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub department: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub assigned_manager_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub branch_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub website: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub address: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub city: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub country: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub tax_id: Option<Option<String>>,
    /// The version the change was made against (or send If-Match).
    pub version: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ClientQuery {
    /// 1 to 500; default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// created_at, updated_at or name; prefix - for descending.
    pub order: Option<String>,
    pub status: Option<String>,
    pub branch_id: Option<Uuid>,
    pub assigned_manager_id: Option<Uuid>,
    pub department: Option<String>,
    /// Case-insensitive substring of the name.
    pub q: Option<String>,
}

fn status(v: &str) -> Result<String, domain::UnknownValue> {
    v.parse::<ClientStatus>().map(|s| s.as_str().to_owned())
}

impl Resource for Clients {
    const TABLE: Table = Table {
        name: "clients",
        noun: "client",
        columns: "id, name, status, department, assigned_manager_id, branch_id, email, phone, \
                  website, address, city, country, tax_id, version, created_at, updated_at",
        sorts: &[
            ("created_at", "timestamptz"),
            ("updated_at", "timestamptz"),
            ("name", "text"),
        ],
    };
    const AREA: Area = Area::Crm;
    type Out = Client;
    type Create = ClientCreate;
    type Patch = ClientPatch;
    type Query = ClientQuery;

    fn filters(q: &ClientQuery) -> Result<Vec<Filter>, ApiError> {
        let mut f = Vec::new();
        if let Some(v) = &q.status {
            let v = status(v).map_err(|e| ApiError::field("status", e.to_string()))?;
            f.push(Filter::eq("status", v));
        }
        if let Some(v) = q.branch_id {
            f.push(Filter::eq("branch_id", v));
        }
        if let Some(v) = q.assigned_manager_id {
            f.push(Filter::eq("assigned_manager_id", v));
        }
        if let Some(v) = &q.department {
            f.push(Filter::eq("department", v.clone()));
        }
        if let Some(v) = &q.q {
            f.push(Filter::ilike("name", v));
        }
        Ok(f)
    }

    fn create(b: ClientCreate, _caller: &AuthUser) -> Changes {
        let mut c = Changes::new();
        if let Some(id) = b.id {
            c.put("id", id);
        }
        c.set("name", Some(text(&b.name, 1, 200)));
        c.set(
            "status",
            Some(status(b.status.as_deref().unwrap_or("lead"))),
        );
        c.set("department", Some(opt_text(b.department.as_deref(), 100)));
        c.put("assigned_manager_id", b.assigned_manager_id);
        c.put("branch_id", b.branch_id);
        c.set("email", Some(optional(b.email.as_deref(), email)));
        c.set("phone", Some(opt_text(b.phone.as_deref(), 50)));
        c.set("website", Some(opt_text(b.website.as_deref(), 300)));
        c.set("address", Some(opt_text(b.address.as_deref(), 500)));
        c.set("city", Some(opt_text(b.city.as_deref(), 100)));
        c.set("country", Some(optional(b.country.as_deref(), country)));
        c.set("tax_id", Some(opt_text(b.tax_id.as_deref(), 50)));
        c
    }

    fn patch(b: ClientPatch) -> Changes {
        let mut c = Changes::new();
        c.set("name", b.name.as_deref().map(|v| text(v, 1, 200)));
        c.set("status", b.status.as_deref().map(status));
        c.set(
            "department",
            b.department.as_ref().map(|v| opt_text(v.as_deref(), 100)),
        );
        if let Some(v) = b.assigned_manager_id {
            c.put("assigned_manager_id", v);
        }
        if let Some(v) = b.branch_id {
            c.put("branch_id", v);
        }
        c.set(
            "email",
            b.email.as_ref().map(|v| optional(v.as_deref(), email)),
        );
        c.set(
            "phone",
            b.phone.as_ref().map(|v| opt_text(v.as_deref(), 50)),
        );
        c.set(
            "website",
            b.website.as_ref().map(|v| opt_text(v.as_deref(), 300)),
        );
        c.set(
            "address",
            b.address.as_ref().map(|v| opt_text(v.as_deref(), 500)),
        );
        c.set("city", b.city.as_ref().map(|v| opt_text(v.as_deref(), 100)));
        c.set(
            "country",
            b.country.as_ref().map(|v| optional(v.as_deref(), country)),
        );
        c.set(
            "tax_id",
            b.tax_id.as_ref().map(|v| opt_text(v.as_deref(), 50)),
        );
        c
    }
}

resource_routes!(
    Clients,
    Client,
    ClientCreate,
    ClientPatch,
    ClientQuery,
    "clients",
    "/api/v1/clients",
    "/api/v1/clients/{id}",
    "/clients",
    "/clients/{id}"
);
