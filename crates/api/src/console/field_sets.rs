//! The tenant console's custom field sets (Administrators): the sets of
//! each model with their fields, adding one (its definitions as JSON, as
//! the API takes them), and deleting one. Through `domain::custom::sets`,
//! as the API's `/field-sets` routes.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use domain::custom::sets::{self, Draft};
use domain::roles::{Action, Area};
use maud::html;
use tenancy::TenantTx;
use uuid::Uuid;

use super::pages::{Page, checked, field, guarded, html_response, see_other};
use super::session::CSRF_FIELD;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::state::AppState;

type Form = web::Form<Vec<(String, String)>>;

const EXAMPLE: &str = r#"[{"key": "industry", "label": "Industry", "type": "single_choice", "options": ["energy", "retail"], "required": true}]"#;

pub async fn list(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
) -> HttpResponse {
    guarded(&state, &tenant, &req, Area::Users, Action::Write, |s| async {
        let read = async {
            let tx = TenantTx::begin(&state.db, &tenant.0).await?;
            let all = sets::list(tx.conn(), None).await?;
            tx.commit().await?;
            Ok::<_, ApiError>(all)
        };
        let all = match read.await {
            Ok(x) => x,
            Err(e) => return Err((s, e)),
        };
        let page = Page {
            title: "Custom fields",
            here: "field-sets",
            tenant: &tenant,
            session: Some(&s),
        };
        Ok(html_response(
            StatusCode::OK,
            page.render(html! {
                h1 { "Custom fields" }
                @for set in &all {
                    section {
                        h2 { (set.label) " " span.muted { "(" (set.model) " · " (set.name) " · revision " (set.revision) @if set.origin.is_some() { " · from the platform, v" (set.base_version.unwrap_or(0)) } ")" } }
                        div.scroll {
                            table {
                                thead { tr { th scope="col" { "Key" } th scope="col" { "Label" } th scope="col" { "Type" } th scope="col" { "Required" } th scope="col" { "Options" } } }
                                tbody {
                                    @for d in &set.fields {
                                        tr {
                                            td { code { (d.key) } @if d.retired { " (retired)" } }
                                            td { (d.label) }
                                            td { (serde_json::to_value(d.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) }
                                            td { @if d.required { "yes" } }
                                            td { (d.options.join(", ")) }
                                        }
                                    }
                                }
                            }
                        }
                        form.inline method="post" action={ "/console/field-sets/" (set.id) "/delete" } {
                            input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                            button.plain type="submit" aria-label={ "Delete " (set.name) } { "Delete (removes its values from every record)" }
                        }
                    }
                }
                @if all.is_empty() { p.muted { "No custom fields yet." } }
                h2 { "Add a field set" }
                form.stack method="post" action="/console/field-sets" {
                    input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                    label { "Model" select name="model" { option { "clients" } option { "contacts" } option { "tasks" } } }
                    label { "Name" input type="text" name="name" required; }
                    label { "Label" input type="text" name="label" required; }
                    label { "Fields (JSON: key, label, type, required, default, help, order, options)"
                        textarea name="fields" rows="6" required placeholder=(EXAMPLE) {}
                    }
                    button type="submit" { "Add field set" }
                }
            }),
        ))
    })
    .await
}

pub async fn create(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
    form: Form,
) -> HttpResponse {
    guarded(
        &state,
        &tenant,
        &req,
        Area::Users,
        Action::Write,
        |s| async {
            let s = checked(s, &form)?;
            let fields = match serde_json::from_str(field(&form, "fields").unwrap_or("")) {
                Ok(v) => v,
                Err(e) => return Err((s, ApiError::field("fields", format!("is not JSON: {e}")))),
            };
            let draft = Draft {
                model: field(&form, "model").unwrap_or("").to_owned(),
                name: field(&form, "name").unwrap_or("").to_owned(),
                label: field(&form, "label").unwrap_or("").to_owned(),
                fields,
            };
            let saved = async {
                let tx = TenantTx::begin(&state.db, &tenant.0).await?;
                sets::save(tx.conn(), None, &draft, None).await?;
                tx.commit().await?;
                Ok::<_, ApiError>(())
            };
            match saved.await {
                Ok(()) => Ok(see_other("/console/field-sets")),
                Err(e) => Err((s, e)),
            }
        },
    )
    .await
}

pub async fn delete(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
    id: web::Path<Uuid>,
    form: Form,
) -> HttpResponse {
    guarded(
        &state,
        &tenant,
        &req,
        Area::Users,
        Action::Write,
        |s| async {
            let s = checked(s, &form)?;
            let done = async {
                let tx = TenantTx::begin(&state.db, &tenant.0).await?;
                sets::delete(tx.conn(), *id).await?;
                tx.commit().await?;
                Ok::<_, ApiError>(())
            };
            match done.await {
                Ok(()) => Ok(see_other("/console/field-sets")),
                Err(e) => Err((s, e)),
            }
        },
    )
    .await
}
