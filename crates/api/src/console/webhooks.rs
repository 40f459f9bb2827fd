//! The console's webhooks pages (Administrators): endpoints, adding one,
//! an endpoint's recent deliveries with retry, and a test event. Through
//! the same functions as the API's `/webhooks` routes.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use domain::roles::{Action, Area};
use maud::html;
use uuid::Uuid;

use super::pages::{Page, checked, field, guarded, html_response, see_other};
use super::session::CSRF_FIELD;
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::routes::sync::read;
use crate::routes::webhooks::{self, NewEndpoint};
use crate::state::AppState;

type Form = web::Form<Vec<(String, String)>>;

pub async fn list(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
) -> HttpResponse {
    guarded(&state, &tenant, &req, Area::Users, Action::Write, |s| async {
        let rows = match read(&state, &tenant, async |tx| webhooks::endpoints(tx.conn()).await).await {
            Ok(r) => r,
            Err(e) => return Err((s, e)),
        };
        let page = Page {
            title: "Webhooks",
            here: "webhooks",
            tenant: &tenant,
            session: Some(&s),
        };
        Ok(html_response(
            StatusCode::OK,
            page.render(html! {
                h1 { "Webhooks" }
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "Endpoint" } th scope="col" { "Events" } th scope="col" { "Active" } } }
                        tbody {
                            @for e in &rows {
                                tr {
                                    td { a href={ "/console/webhooks/" (e.id) } { (e.url) } }
                                    td { (e.event_types.join(", ")) }
                                    td { @if e.active { "yes" } @else { "no" } }
                                }
                            }
                        }
                    }
                }
                @if rows.is_empty() { p.muted { "No endpoints yet." } }
                h2 { "Add an endpoint" }
                form.stack method="post" action="/console/webhooks" {
                    input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                    label { "URL (http or https, outside your network)" input type="text" name="url" required; }
                    label { "Event types (comma-separated, or * for all)" input type="text" name="event_types" value="*" required; }
                    button type="submit" { "Add endpoint" }
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
            let body = NewEndpoint {
                url: field(&form, "url").unwrap_or("").trim().to_owned(),
                event_types: field(&form, "event_types")
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect(),
                active: true,
            };
            match webhooks::add_endpoint(&state, &tenant, &body).await {
                Ok(e) => Ok(see_other(&format!("/console/webhooks/{}", e.id))),
                Err(e) => Err((s, e)),
            }
        },
    )
    .await
}

pub async fn show(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> HttpResponse {
    guarded(&state, &tenant, &req, Area::Users, Action::Write, |s| async {
        let id = *id;
        let found = read(&state, &tenant, async |tx| {
            let all = webhooks::endpoints(tx.conn()).await?;
            let deliveries = webhooks::endpoint_deliveries(tx.conn(), id).await?;
            Ok((all.into_iter().find(|e| e.id == id), deliveries))
        })
        .await;
        let (endpoint, deliveries) = match found {
            Ok((Some(e), d)) => (e, d),
            Ok((None, _)) => return Err((s, ApiError::NotFound("no such webhook endpoint"))),
            Err(e) => return Err((s, e)),
        };
        let page = Page {
            title: "Webhook endpoint",
            here: "webhooks",
            tenant: &tenant,
            session: Some(&s),
        };
        Ok(html_response(
            StatusCode::OK,
            page.render(html! {
                h1 { "Webhook endpoint" }
                p { code { (endpoint.url) } " — " (endpoint.event_types.join(", ")) @if !endpoint.active { " (inactive)" } }
                p.muted { "Signing secret: " code { (endpoint.secret.get(..10).unwrap_or("")) "…" } }
                form.inline method="post" action={ "/console/webhooks/" (endpoint.id) "/test" } {
                    input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                    button type="submit" { "Send test event" }
                }
                h2 { "Recent deliveries" }
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "Event" } th scope="col" { "Status" } th scope="col" { "Attempts" } th scope="col" { "Answer" } th scope="col" { span.muted { "Actions" } } } }
                        tbody {
                            @for d in &deliveries {
                                tr {
                                    td { (d.event_type) " #" (d.event_id) }
                                    td { (d.status) }
                                    td { (d.attempts) }
                                    td {
                                        @if let Some(c) = d.response_code { (c) " " }
                                        @if let Some(e) = &d.last_error { span.error { (e) } }
                                    }
                                    td {
                                        @if d.status == "FAILED" {
                                            form.inline method="post" action={ "/console/webhooks/deliveries/" (d.id) "/retry" } {
                                                input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                                                input type="hidden" name="endpoint" value=(endpoint.id);
                                                button.plain type="submit" { "Retry" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if deliveries.is_empty() { p.muted { "Nothing sent yet." } }
            }),
        ))
    })
    .await
}

pub async fn test_event(
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
            let (id, schema) = (*id, tenant.0.schema().as_str().to_owned());
            match read(&state, &tenant, async |tx| {
                webhooks::send_test_event(tx.conn(), &schema, id).await
            })
            .await
            {
                Ok(Some(_)) => Ok(see_other(&format!("/console/webhooks/{id}"))),
                Ok(None) => Err((s, ApiError::NotFound("no such webhook endpoint"))),
                Err(e) => Err((s, e)),
            }
        },
    )
    .await
}

pub async fn retry(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
    id: web::Path<i64>,
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
            let (id, schema) = (*id, tenant.0.schema().as_str().to_owned());
            let back = field(&form, "endpoint")
                .and_then(|e| Uuid::parse_str(e).ok())
                .map_or_else(
                    || "/console/webhooks".to_owned(),
                    |e| format!("/console/webhooks/{e}"),
                );
            match read(&state, &tenant, async |tx| {
                crate::webhooks::retry(tx.conn(), &schema, id).await
            })
            .await
            {
                Ok(true) => Ok(see_other(&back)),
                Ok(false) => Err((s, ApiError::NotFound("no failed delivery with this id"))),
                Err(e) => Err((s, e)),
            }
        },
    )
    .await
}
