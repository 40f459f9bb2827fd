//! Branches: the tenant's offices. Managers and Administrators change them.

use chrono::{DateTime, Utc};
use domain::roles::Area;
use domain::validation::{country, opt_text, optional, text};
use sea_orm::FromQueryResult;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::routes::crud::{Changes, Filter, Table, double_option};
use crate::routes::resource::{Resource, resource_routes};

pub struct Branches;

#[derive(Serialize, FromQueryResult, ToSchema)]
pub struct Branch {
    pub id: Uuid,
    pub name: String,
    pub code: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub phone: Option<String>,
    pub is_active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchCreate {
    pub id: Option<Uuid>,
    pub name: String,
    pub code: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub phone: Option<String>,
    pub is_active: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub code: Option<Option<String>>,
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
    pub phone: Option<Option<String>>,
    pub is_active: Option<bool>,
    /// The version the change was made against (or send If-Match).
    pub version: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BranchQuery {
    /// 1 to 500; default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// created_at, updated_at or name; prefix - for descending.
    pub order: Option<String>,
    pub is_active: Option<bool>,
    pub country: Option<String>,
    /// Case-insensitive substring of the name.
    pub q: Option<String>,
}

impl Resource for Branches {
    const TABLE: Table = Table {
        name: "branches",
        noun: "branch",
        columns: "id, name, code, address, city, country, phone, is_active, version, created_at, updated_at",
        sorts: &[
            ("created_at", "timestamptz"),
            ("updated_at", "timestamptz"),
            ("name", "text"),
        ],
    };
    const AREA: Area = Area::Branches;
    type Out = Branch;
    type Create = BranchCreate;
    type Patch = BranchPatch;
    type Query = BranchQuery;

    fn filters(q: &BranchQuery) -> Result<Vec<Filter>, ApiError> {
        let mut f = Vec::new();
        if let Some(v) = q.is_active {
            f.push(Filter::eq("is_active", v));
        }
        if let Some(v) = &q.country {
            f.push(Filter::eq("country", v.to_ascii_uppercase()));
        }
        if let Some(v) = &q.q {
            f.push(Filter::ilike("name", v));
        }
        Ok(f)
    }

    fn create(b: BranchCreate, _caller: &AuthUser) -> Changes {
        let mut c = Changes::new();
        if let Some(id) = b.id {
            c.put("id", id);
        }
        c.set("name", Some(text(&b.name, 1, 200)));
        c.set("code", Some(opt_text(b.code.as_deref(), 32)));
        c.set("address", Some(opt_text(b.address.as_deref(), 500)));
        c.set("city", Some(opt_text(b.city.as_deref(), 100)));
        c.set("country", Some(optional(b.country.as_deref(), country)));
        c.set("phone", Some(opt_text(b.phone.as_deref(), 50)));
        c.put("is_active", b.is_active.unwrap_or(true));
        c
    }

    fn patch(b: BranchPatch) -> Changes {
        let mut c = Changes::new();
        c.set("name", b.name.as_deref().map(|v| text(v, 1, 200)));
        c.set("code", b.code.as_ref().map(|v| opt_text(v.as_deref(), 32)));
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
            "phone",
            b.phone.as_ref().map(|v| opt_text(v.as_deref(), 50)),
        );
        if let Some(v) = b.is_active {
            c.put("is_active", v);
        }
        c
    }
}

resource_routes!(
    Branches,
    Branch,
    BranchCreate,
    BranchPatch,
    BranchQuery,
    "branches",
    "/api/v1/branches",
    "/api/v1/branches/{id}",
    "/branches",
    "/branches/{id}"
);
