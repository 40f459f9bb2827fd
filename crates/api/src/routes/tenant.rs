//! The resolved tenant's own information and table statistics.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use domain::record::Naming;
use domain::roles::{Action, Area};
use sea_orm::FromQueryResult;
use serde::Serialize;
use tenancy::TenantTx;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::state::AppState;

/// Registers the module's routes, each with its OpenAPI entry.
pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(show).service(stats);
}

/// A custom domain of the tenant.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Domain {
    host: String,
    is_primary: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TenantInfo<'a> {
    id: Uuid,
    slug: &'a str,
    display_name: &'a str,
    /// active (suspended tenants are refused before this point).
    status: &'static str,
    domains: Vec<Domain>,
    created_at: DateTime<Utc>,
}

/// The tenant this host resolves to.
#[utoipa::path(tag = "tenant",
    responses((status = 200, body = TenantInfo), (status = 403), (status = 404)))]
#[get("/tenant")]
pub async fn show(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
) -> Result<HttpResponse, ApiError> {
    let t = &tenant.0;
    let domains = state.resolver.registry().domains(t).await?;
    Ok(HttpResponse::Ok().json(TenantInfo {
        id: t.id(),
        slug: t.slug().as_str(),
        display_name: t.display_name(),
        status: t.status().as_str(),
        domains: domains
            .into_iter()
            .map(|d| Domain {
                host: d.host,
                is_primary: d.is_primary,
            })
            .collect(),
        created_at: t.created_at(),
    }))
}

/// Row counts of the tenant's tables, read in its own schema.
#[derive(FromQueryResult)]
struct Counts {
    schema: String,
    users: i64,
    roles: i64,
    branches: i64,
    clients: i64,
    contacts: i64,
    tasks: i64,
    notes: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Stats {
    tenant: String,
    schema: String,
    tables: BTreeMap<&'static str, i64>,
}

/// The tables the stats count: every table the read pools read.
pub const COUNTED: [&str; 7] = [
    "users", "roles", "branches", "clients", "contacts", "tasks", "notes",
];

/// The count statement: through `search_path` (`None`), or naming the
/// schema (whose name is then `$1`).
fn counts_sql(naming: Naming<'_>) -> String {
    let schema = match naming {
        Naming::Path => "current_schema()::text",
        Naming::Schema(_) => "$1::text",
    };
    let counts: Vec<String> = COUNTED
        .iter()
        .map(|t| format!("(SELECT count(*) FROM {}) AS {t}", naming.table(t)))
        .collect();
    format!("SELECT {schema} AS schema, {}", counts.join(", "))
}

/// Row counts per table of the tenant's schema (Administrators).
#[utoipa::path(tag = "tenant",
    responses((status = 200, body = Stats), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
#[get("/tenant/stats")]
pub async fn stats(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    user.require(Area::Users, Action::Write)?;
    let (schema, tables) = record_counts(&state, &tenant).await?;
    Ok(HttpResponse::Ok().json(Stats {
        tenant: tenant.0.slug().to_string(),
        schema,
        tables,
    }))
}

/// The tenant's schema and its rows per table (users, roles, and each CRM
/// model). The stats route and the console's dashboard read it here.
pub async fn record_counts(
    state: &AppState,
    tenant: &CurrentTenant,
) -> Result<(String, BTreeMap<&'static str, i64>), ApiError> {
    let counts = if state.prepared_statements {
        // One statement naming the schema: see `records::by_schema`.
        let schema = tenant.0.schema().as_str();
        match Counts::find_by_statement(tenancy::stmt(
            &counts_sql(Naming::Schema(schema)),
            [schema.into()],
        ))
        .one(state.reads.for_tenant(&tenant.0))
        .await
        {
            Ok(counts) => counts,
            Err(e) => return Err(crate::routes::records::by_schema_error(state, tenant, e).await),
        }
    } else {
        let tx = TenantTx::begin(&state.db, &tenant.0).await?;
        let counts = Counts::find_by_statement(tenancy::stmt(&counts_sql(Naming::Path), []))
            .one(tx.conn())
            .await?;
        tx.commit().await?;
        counts
    }
    .ok_or_else(|| ApiError::Internal("count query returned no row".into()))?;
    let tables = BTreeMap::from([
        ("users", counts.users),
        ("roles", counts.roles),
        ("branches", counts.branches),
        ("clients", counts.clients),
        ("contacts", counts.contacts),
        ("tasks", counts.tasks),
        ("notes", counts.notes),
    ]);
    Ok((counts.schema, tables))
}
