//! The tenant console's pages.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use domain::record::{Naming, USERS};
use domain::roles::{Action, Area, allows};
use domain::service;
use maud::{DOCTYPE, Markup, html};
use serde_json::{Map, Value};
use sync_engine::settings::{self, Grant};
use tenancy::TenantTx;
use uuid::Uuid;

use super::CSP;
pub use super::session::Session;
use super::session::{self, CSRF_FIELD, SIGN_IN_COOKIE};
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::routes::records::Acting;
use crate::state::AppState;

type Form = web::Form<Vec<(String, String)>>;

pub(crate) fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(crate) fn html_response(status: StatusCode, body: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.into_string())
}

pub(crate) fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// A page of the console's layout.
pub struct Page<'a> {
    pub title: &'a str,
    /// The nav entry that is current.
    pub here: &'a str,
    pub tenant: &'a CurrentTenant,
    pub session: Option<&'a Session>,
}

impl Page<'_> {
    pub fn render(&self, body: Markup) -> Markup {
        let roles: &[String] = self.session.map_or(&[], |s| &s.user.roles);
        let admin = allows(roles, Area::Users, Action::Write);
        let auditor = allows(roles, Area::Audit, Action::Read);
        let nav: Vec<(&str, &str, &str)> = [
            ("dashboard", "/console/", "Dashboard", admin),
            (
                "notifications",
                "/console/notifications",
                "Notifications",
                true,
            ),
            ("users", "/console/users", "Users", admin),
            (
                "permissions",
                "/console/permissions",
                "Sync permissions",
                admin,
            ),
            ("sync-log", "/console/sync-log", "Sync log", admin),
            ("webhooks", "/console/webhooks", "Webhooks", admin),
            ("field-sets", "/console/field-sets", "Custom fields", admin),
            ("audit", "/console/audit", "Audit trail", auditor),
        ]
        .into_iter()
        .filter(|(_, _, _, shown)| *shown)
        .map(|(k, href, label, _)| (k, href, label))
        .collect();
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · " (self.tenant.0.display_name()) " · Strata" }
                    link rel="stylesheet" href="/console/assets/console.css";
                    script src="/console/assets/console.js" defer {}
                }
                body {
                    header {
                        span.brand { (self.tenant.0.display_name()) }
                        @if let Some(s) = self.session {
                            nav aria-label="Console" {
                                ul {
                                    @for (key, href, label) in &nav {
                                        li {
                                            a href=(href) aria-current=[(*key == self.here).then_some("page")] { (label) }
                                        }
                                    }
                                }
                            }
                            form.inline method="post" action="/console/sign-out" {
                                input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                                button.plain type="submit" { "Sign out" }
                            }
                        }
                    }
                    main id="main" { (body) }
                }
            }
        }
    }
}

/// The signed-in session, or where to go instead.
async fn signed_in(
    state: &AppState,
    tenant: &CurrentTenant,
    req: &HttpRequest,
) -> Result<Result<Session, HttpResponse>, ApiError> {
    Ok(match session::current(state, tenant, req).await? {
        Some(s) => Ok(s),
        None => Err(see_other("/console/sign-in")),
    })
}

/// An error as a page: its status and message (5xx say nothing internal).
fn error_page(tenant: &CurrentTenant, session: Option<&Session>, err: &ApiError) -> HttpResponse {
    let status = err.status_code();
    let message = if status.is_server_error() {
        "Something went wrong on our side. Try again in a moment.".to_owned()
    } else {
        err.to_string()
    };
    let fields: Vec<(String, String)> = match err {
        ApiError::Validation(e) | ApiError::Malformed(e) => e
            .errors
            .iter()
            .map(|f| (f.field.clone(), f.message.clone()))
            .collect(),
        _ => Vec::new(),
    };
    let page = Page {
        title: status.canonical_reason().unwrap_or("Error"),
        here: "",
        tenant,
        session,
    };
    html_response(
        status,
        page.render(html! {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("Error")) }
            p.error role="alert" { (message) }
            @if !fields.is_empty() {
                ul { @for (f, m) in &fields { li { code { (f) } ": " (m) } } }
            }
            p { a href="/console/" { "Back to the console" } }
        }),
    )
}

/// Runs a page that needs a signed-in user allowed `area`/`action`: a
/// redirect to sign in without a session, a 403 page without the right,
/// an error page for what `page` returns as an error.
pub(crate) async fn guarded<F, Fut>(
    state: &web::Data<AppState>,
    tenant: &CurrentTenant,
    req: &HttpRequest,
    area: Area,
    action: Action,
    page: F,
) -> HttpResponse
where
    F: FnOnce(Session) -> Fut,
    Fut: std::future::Future<Output = Result<HttpResponse, (Session, ApiError)>>,
{
    let session = match signed_in(state, tenant, req).await {
        Ok(Ok(s)) => s,
        Ok(Err(redirect)) => return redirect,
        Err(e) => return error_page(tenant, None, &e),
    };
    if let Err(e) = session.user.require(area, action) {
        return error_page(tenant, Some(&session), &e);
    }
    match page(session).await {
        Ok(res) => res,
        Err((session, e)) => error_page(tenant, Some(&session), &e),
    }
}

/// A state-changing request's CSRF token, checked.
pub(crate) fn checked(
    session: Session,
    form: &[(String, String)],
) -> Result<Session, (Session, ApiError)> {
    if session::tokens_match(&session.csrf, field(form, CSRF_FIELD)) {
        Ok(session)
    } else {
        Err((
            session,
            ApiError::Forbidden("the form is missing its security token; reload the page"),
        ))
    }
}

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("assets/console.css"))
}

pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("assets/console.js"))
}

pub async fn to_dashboard() -> HttpResponse {
    see_other("/console/")
}

pub async fn sign_in_form(tenant: CurrentTenant, req: HttpRequest) -> HttpResponse {
    sign_in_page(&tenant, &req, None)
}

fn sign_in_page(tenant: &CurrentTenant, req: &HttpRequest, error: Option<&str>) -> HttpResponse {
    let token = req
        .cookie(SIGN_IN_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 43)
        .unwrap_or_else(crate::auth::sessions::new_token);
    let page = Page {
        title: "Sign in",
        here: "",
        tenant,
        session: None,
    };
    let mut res = html_response(
        if error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        },
        page.render(html! {
            h1 { "Sign in" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.stack method="post" action="/console/sign-in" {
                input type="hidden" name=(CSRF_FIELD) value=(token);
                label { "E-mail address" input type="email" name="email" autocomplete="username" required; }
                label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Sign in" }
            }
        }),
    );
    let _ = res.add_cookie(&session::cookie(SIGN_IN_COOKIE, token));
    res
}

pub async fn sign_in(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
    form: Form,
) -> HttpResponse {
    if !session::sign_in_token_ok(&req, field(&form, CSRF_FIELD)) {
        return error_page(
            &tenant,
            None,
            &ApiError::Forbidden("the form is missing its security token; reload the page"),
        );
    }
    let (email, password) = (
        field(&form, "email").unwrap_or(""),
        field(&form, "password").unwrap_or("").to_owned(),
    );
    match crate::auth::sign_in::sign_in(&state, &tenant, &req, email, password).await {
        Ok((tokens, _)) => {
            let mut res = see_other("/console/");
            let _ = res.add_cookie(&session::cookie(session::COOKIE, tokens.refresh_token));
            let _ = res.add_removal_cookie(&session::removal(SIGN_IN_COOKIE));
            res
        }
        Err(e @ ApiError::TooManyRequests { .. }) => error_page(&tenant, None, &e),
        Err(ApiError::Unauthorized(m)) => sign_in_page(&tenant, &req, Some(m)),
        Err(e) => error_page(&tenant, None, &e),
    }
}

pub async fn sign_out(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
    form: Form,
) -> HttpResponse {
    let session = match signed_in(&state, &tenant, &req).await {
        Ok(Ok(s)) => s,
        Ok(Err(redirect)) => return redirect,
        Err(e) => return error_page(&tenant, None, &e),
    };
    let session = match checked(session, &form) {
        Ok(s) => s,
        Err((s, e)) => return error_page(&tenant, Some(&s), &e),
    };
    let ended = async {
        let tx = TenantTx::begin(&state.db, &tenant.0).await?;
        crate::auth::sessions::revoke_family(&tx, session.user.family).await?;
        tx.commit().await?;
        Ok::<_, ApiError>(())
    };
    if let Err(e) = ended.await {
        return error_page(&tenant, Some(&session), &e);
    }
    let mut res = see_other("/console/sign-in");
    let _ = res.add_removal_cookie(&session::removal(session::COOKIE));
    res
}

pub async fn dashboard(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
) -> HttpResponse {
    guarded(
        &state,
        &tenant,
        &req,
        Area::Users,
        Action::Write,
        |s| async {
            let counts = match crate::routes::tenant::record_counts(&state, &tenant).await {
            Ok((_, c)) => c,
            Err(e) => return Err((s, e)),
        };
        let read = async {
            let tx = TenantTx::begin(&state.db, &tenant.0).await?;
            let days = sync_engine::log::activity(tx.conn(), 14).await?;
            tx.commit().await?;
            Ok::<_, ApiError>(days)
        };
        let days = match read.await {
            Ok(d) => d,
            Err(e) => return Err((s, e)),
        };
        let most = days.iter().map(|d| d.pushes + d.pulls).max().unwrap_or(0).max(1);
        let page = Page {
            title: "Dashboard",
            here: "dashboard",
            tenant: &tenant,
            session: Some(&s),
        };
        Ok(html_response(
            StatusCode::OK,
            page.render(html! {
                h1 { "Dashboard" }
                h2 { "Records" }
                div.cards {
                    @for (table, n) in &counts {
                        div.card { strong { (n) } span.muted { (table) } }
                    }
                }
                h2 { "Sync, last 14 days" }
                @if days.is_empty() {
                    p.muted { "No pushes or pulls yet." }
                } @else {
                    svg.chart role="img" aria-label="Pushes and pulls per day" viewBox={ "0 0 " (days.len() * 24) " 100" } preserveAspectRatio="none" {
                        @for (i, d) in days.iter().rev().enumerate() {
                            @let h = (d.pushes + d.pulls) * 96 / most;
                            rect x=(i * 24 + 4) y=(100 - h) width="16" height=(h) fill="#0a58ca" {
                                title { (d.day) ": " (d.pushes) " pushes, " (d.pulls) " pulls" }
                            }
                        }
                    }
                    div.scroll {
                        table {
                            thead { tr { th scope="col" { "Day" } th scope="col" { "Pushes" } th scope="col" { "Pulls" } th scope="col" { "Errors" } th scope="col" { "Active devices" } } }
                            tbody {
                                @for d in &days {
                                    tr { td { (d.day) } td { (d.pushes) } td { (d.pulls) } td { (d.errors) } td { (d.devices) } }
                                }
                            }
                        }
                    }
                }
            }),
        ))
    })
    .await
}

/// One user as the users page lists it.
#[derive(serde::Deserialize)]
struct UserRow {
    id: Uuid,
    email: String,
    full_name: String,
    is_active: bool,
    version: i64,
    roles: Vec<String>,
}

pub async fn users(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
) -> HttpResponse {
    let notice = req
        .query_string()
        .split('&')
        .any(|p| p == "added=1")
        .then(|| "User added.".to_owned());
    users_page(state, tenant, req, notice).await
}

async fn users_page(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
    notice: Option<String>,
) -> HttpResponse {
    guarded(&state, &tenant, &req, Area::Users, Action::Write, |s| async {
        let listed = async {
            let a = Acting::begin(&state, &tenant, &s.user).await?;
            let params = [
                ("order".to_owned(), "email".to_owned()),
                ("limit".to_owned(), "500".to_owned()),
            ];
            let page = service::list(a.tx.conn(), &USERS, Naming::Path, &a.actor(), &params).await?;
            let roles = settings::grants(a.tx.conn()).await?;
            a.commit().await?;
            let users: Vec<UserRow> = page
                .items
                .iter()
                .filter_map(|j| serde_json::from_str(j).ok())
                .collect();
            let roles: BTreeSet<String> = roles.into_iter().map(|g| g.role).collect();
            Ok::<_, ApiError>((users, roles))
        };
        let (users, roles) = match listed.await {
            Ok(x) => x,
            Err(e) => return Err((s, e)),
        };
        let page = Page {
            title: "Users",
            here: "users",
            tenant: &tenant,
            session: Some(&s),
        };
        Ok(html_response(
            StatusCode::OK,
            page.render(html! {
                h1 { "Users" }
                @if let Some(n) = &notice { p.notice role="status" { (n) } }
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "E-mail" } th scope="col" { "Name" } th scope="col" { "Roles" } th scope="col" { "Status" } th scope="col" { span.muted { "Actions" } } } }
                        tbody {
                            @for u in &users {
                                tr {
                                    td { a href={ "/console/users/" (u.id) } { (u.email) } }
                                    td { (u.full_name) }
                                    td { (u.roles.join(", ")) }
                                    td { @if u.is_active { "active" } @else { "disabled" } }
                                    td {
                                        @if u.is_active && u.id != s.user.id {
                                            form.inline method="post" action={ "/console/users/" (u.id) "/disable" } {
                                                input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                                                input type="hidden" name="version" value=(u.version);
                                                button.plain type="submit" aria-label={ "Disable " (u.email) } { "Disable" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                h2 { "Add a user" }
                form.stack method="post" action="/console/users" {
                    input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                    label { "E-mail address" input type="email" name="email" required; }
                    label { "Full name" input type="text" name="full_name" required; }
                    label { "Password (8 to 128 characters)" input type="password" name="password" autocomplete="new-password" required; }
                    label { "Role"
                        select name="role" {
                            @for r in &roles { option value=(r) selected[r == "Users"] { (r) } }
                        }
                    }
                    button type="submit" { "Add user" }
                }
            }),
        ))
    })
    .await
}

pub async fn create_user(
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
            let mut body = Map::new();
            for key in ["email", "full_name", "password"] {
                body.insert(key.into(), Value::from(field(&form, key).unwrap_or("")));
            }
            if let Some(role) = field(&form, "role") {
                body.insert("roles".into(), Value::from(vec![role.to_owned()]));
            }
            match crate::routes::users::create_user(&state, &tenant, &s.user, body).await {
                Ok(_) => Ok(see_other("/console/users?added=1")),
                Err(e) => Err((s, e)),
            }
        },
    )
    .await
}

pub async fn disable_user(
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
            let version: i64 = field(&form, "version")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let input = Map::from_iter([("is_active".to_owned(), Value::Bool(false))]);
            match crate::routes::users::update_user(&state, &tenant, &s.user, *id, version, input)
                .await
            {
                Ok(_) => Ok(see_other("/console/users")),
                Err(e) => Err((s, e)),
            }
        },
    )
    .await
}

pub async fn permissions(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
) -> HttpResponse {
    guarded(&state, &tenant, &req, Area::Users, Action::Write, |s| async {
        let read = async {
            let tx = TenantTx::begin(&state.db, &tenant.0).await?;
            let grants = settings::grants(tx.conn()).await?;
            let filters = settings::filters(tx.conn()).await?;
            tx.commit().await?;
            Ok::<_, ApiError>((grants, filters))
        };
        let (grants, filters) = match read.await {
            Ok(g) => g,
            Err(e) => return Err((s, e)),
        };
        let roles: BTreeSet<&str> = grants.iter().map(|g| g.role.as_str()).collect();
        let models: Vec<&str> = domain::models().iter().map(|m| m.name()).collect();
        let cell = |role: &str, model: &str| grants.iter().find(|g| g.role == role && g.model == model);
        let page = Page {
            title: "Sync permissions",
            here: "permissions",
            tenant: &tenant,
            session: Some(&s),
        };
        Ok(html_response(
            StatusCode::OK,
            page.render(html! {
                h1 { "Sync permissions" }
                p.muted { "Which roles may read (pull) and write (push) each model, over sync and REST alike. A change is saved at once." }
                form method="post" action="/console/permissions" data-autosave {
                    input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                    div.scroll {
                        table {
                            thead {
                                tr {
                                    th scope="col" { "Role" }
                                    @for m in &models { th scope="col" { (m) } }
                                }
                            }
                            tbody {
                                @for r in &roles {
                                    tr {
                                        th scope="row" { (r) }
                                        @for m in &models {
                                            td {
                                                @let g = cell(r, m);
                                                label {
                                                    input type="checkbox" name="pull" value={ (r) "/" (m) } aria-label={ (r) " may read " (m) } checked[g.is_some_and(|g| g.can_pull)];
                                                    " read"
                                                }
                                                label {
                                                    input type="checkbox" name="push" value={ (r) "/" (m) } aria-label={ (r) " may write " (m) } checked[g.is_some_and(|g| g.can_push)];
                                                    " write"
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    p { button type="submit" { "Save" } }
                }
                h2 { "Row filters" }
                p.muted { "Rows of a model a role reaches must pass every filter of the role (over sync and REST alike); $user stands for the caller." }
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "Role" } th scope="col" { "Model" } th scope="col" { "Condition" } th scope="col" { span.muted { "Actions" } } } }
                        tbody {
                            @for f in &filters {
                                tr {
                                    td { (f.role) } td { (f.model) }
                                    td { code { (f.field) " " (f.operator) @if let Some(v) = &f.value { " " (v) } } }
                                    td {
                                        @if let Some(id) = f.id {
                                            form.inline method="post" action={ "/console/filters/" (id) "/delete" } {
                                                input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                                                button.plain type="submit" { "Remove" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                form.filters method="post" action="/console/filters" {
                    input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                    label { "Role" select name="role" { @for r in &roles { option value=(r) { (r) } } } }
                    label { "Model" select name="model" { @for m in &models { option value=(m) { (m) } } } }
                    label { "Field" input type="text" name="field" required; }
                    label { "Operator" select name="operator" { @for o in ["eq", "ne", "in", "is_null", "not_null"] { option value=(o) { (o) } } } }
                    label { "Value" input type="text" name="value" placeholder="$user"; }
                    button type="submit" { "Add filter" }
                }
            }),
        ))
    })
    .await
}

pub async fn add_filter(
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
            let text = |k: &str| field(&form, k).unwrap_or("").trim().to_owned();
            let f = settings::Filter {
                id: None,
                role: text("role"),
                model: text("model"),
                field: text("field"),
                operator: text("operator"),
                value: Some(text("value")).filter(|v| !v.is_empty()),
            };
            let done = async {
                let tx = TenantTx::begin(&state.db, &tenant.0).await?;
                settings::add_filter(tx.conn(), f).await?;
                tx.commit().await?;
                Ok::<_, ApiError>(())
            };
            match done.await {
                Ok(()) => Ok(see_other("/console/permissions")),
                Err(e) => Err((s, e)),
            }
        },
    )
    .await
}

pub async fn remove_filter(
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
                let gone = settings::remove_filter(tx.conn(), *id).await?;
                tx.commit().await?;
                Ok::<_, ApiError>(gone)
            };
            match done.await {
                Ok(true) => Ok(see_other("/console/permissions")),
                Ok(false) => Err((s, ApiError::NotFound("row filter"))),
                Err(e) => Err((s, e)),
            }
        },
    )
    .await
}

pub async fn save_permissions(
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
            let ticked = |kind: &str| -> BTreeSet<(String, String)> {
                form.iter()
                    .filter(|(k, _)| k == kind)
                    .filter_map(|(_, v)| v.split_once('/'))
                    .map(|(r, m)| (r.to_owned(), m.to_owned()))
                    .collect()
            };
            let (pull, push) = (ticked("pull"), ticked("push"));
            let saved = async {
                let tx = TenantTx::begin(&state.db, &tenant.0).await?;
                // The whole matrix as the form shows it: every role by every
                // model, ticked or not.
                let roles: BTreeSet<String> = settings::grants(tx.conn())
                    .await?
                    .into_iter()
                    .map(|g| g.role)
                    .collect();
                let mut cells = Vec::new();
                for role in &roles {
                    for m in domain::models() {
                        let key = (role.clone(), m.name().to_owned());
                        cells.push(Grant {
                            role: role.clone(),
                            model: m.name().to_owned(),
                            can_pull: pull.contains(&key),
                            can_push: push.contains(&key),
                        });
                    }
                }
                settings::set_grants(tx.conn(), &cells).await?;
                tx.commit().await?;
                Ok::<_, ApiError>(())
            };
            match saved.await {
                Ok(()) => Ok(see_other("/console/permissions")),
                Err(e) => Err((s, e)),
            }
        },
    )
    .await
}

/// One user: their roles, and a new password.
pub async fn user_page(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> HttpResponse {
    guarded(&state, &tenant, &req, Area::Users, Action::Write, |s| async {
        let read = async {
            let a = Acting::begin(&state, &tenant, &s.user).await?;
            let (json, _) = service::get(a.tx.conn(), &USERS, Naming::Path, &a.actor(), *id).await?;
            let roles: BTreeSet<String> = settings::grants(a.tx.conn())
                .await?
                .into_iter()
                .map(|g| g.role)
                .collect();
            a.commit().await?;
            let user: UserRow = serde_json::from_str(&json)
                .map_err(|e| ApiError::Internal(format!("user: {e}")))?;
            Ok::<_, ApiError>((user, roles))
        };
        let (u, roles) = match read.await {
            Ok(x) => x,
            Err(e) => return Err((s, e)),
        };
        let page = Page {
            title: "User",
            here: "users",
            tenant: &tenant,
            session: Some(&s),
        };
        Ok(html_response(
            StatusCode::OK,
            page.render(html! {
                h1 { (u.full_name) }
                p { (u.email) " — " @if u.is_active { "active" } @else { "disabled" } }
                h2 { "Roles" }
                form.stack method="post" action={ "/console/users/" (u.id) "/roles" } {
                    input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                    fieldset {
                        legend { "Roles held" }
                        div.choices {
                            @for r in &roles {
                                label { input type="checkbox" name="role" value=(r) checked[u.roles.contains(r)]; " " (r) }
                            }
                        }
                    }
                    button type="submit" { "Save roles" }
                }
                h2 { "Reset the password" }
                form.stack method="post" action={ "/console/users/" (u.id) "/password" } {
                    input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                    input type="hidden" name="version" value=(u.version);
                    label { "New password (8 to 128 characters)" input type="password" name="password" autocomplete="new-password" required; }
                    button type="submit" { "Set password" }
                }
            }),
        ))
    })
    .await
}

pub async fn save_roles(
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
            let names: Vec<String> = form
                .iter()
                .filter(|(k, _)| k == "role")
                .map(|(_, v)| v.clone())
                .collect();
            match crate::routes::users::replace_roles(&state, &tenant, &s.user, *id, &names).await {
                Ok(_) => Ok(see_other(&format!("/console/users/{id}"))),
                Err(e) => Err((s, e)),
            }
        },
    )
    .await
}

pub async fn reset_password(
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
            let version: i64 = field(&form, "version")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let body = Map::from_iter([(
                "password".to_owned(),
                Value::from(field(&form, "password").unwrap_or("")),
            )]);
            match crate::routes::users::update_user(&state, &tenant, &s.user, *id, version, body)
                .await
            {
                Ok(_) => Ok(see_other("/console/users")),
                Err(e) => Err((s, e)),
            }
        },
    )
    .await
}
