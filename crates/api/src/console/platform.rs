//! The platform console, on the bare base domain, for operators: tenants,
//! platform field sets and the distribution wizard (tenants, strategy,
//! the dry run's outcomes, then the job's live progress), and jobs. The
//! session is the operator's access token (short-lived, like the API's),
//! in an HttpOnly, Secure, SameSite=Strict cookie.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use domain::custom::merge::Strategy;
use maud::{DOCTYPE, Markup, html};
use platform::distribution::{self, Targets};
use platform::field_sets;
use tenancy::jobs;
use uuid::Uuid;

use super::pages::html_response;
use super::session::{self, CSRF_FIELD};
use crate::auth::operator::Operator;
use crate::error::ApiError;
use crate::state::AppState;

/// The operator's session cookie.
pub const COOKIE: &str = "strata_operator";

type Form = web::Form<Vec<(String, String)>>;

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// A signed-in operator and the token their forms carry.
pub struct OperatorSession {
    pub operator: Operator,
    pub csrf: String,
}

async fn current(state: &AppState, req: &HttpRequest) -> Option<OperatorSession> {
    let token = req.cookie(COOKIE)?;
    let claims = state.tokens.verify(token.value())?;
    let operator = Operator::of_claims(state, &claims).await.ok()?;
    Some(OperatorSession {
        csrf: session::csrf_for(state, b"operator-csrf", operator.session),
        operator,
    })
}

fn layout(title: &str, here: &str, s: Option<&OperatorSession>, body: Markup) -> Markup {
    let nav = [
        ("tenants", "/console/", "Tenants"),
        ("field-sets", "/console/field-sets", "Field sets"),
        ("jobs", "/console/jobs", "Jobs"),
        ("templates", "/console/templates", "Templates"),
        ("events", "/console/events", "Events"),
        ("metrics", "/console/metrics", "Metrics"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Strata platform" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                header {
                    span.brand { "Strata platform" }
                    @if let Some(s) = s {
                        nav aria-label="Platform console" {
                            ul {
                                @for (key, href, label) in nav {
                                    li { a href=(href) aria-current=[(key == here).then_some("page")] { (label) } }
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

fn error_page(s: Option<&OperatorSession>, err: &ApiError) -> HttpResponse {
    let status = err.status_code();
    let message = if status.is_server_error() {
        "Something went wrong on our side. Try again in a moment.".to_owned()
    } else {
        err.to_string()
    };
    let fields: Vec<String> = match err {
        ApiError::Validation(e) | ApiError::Malformed(e) => e
            .errors
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect(),
        _ => Vec::new(),
    };
    html_response(
        status,
        layout(
            status.canonical_reason().unwrap_or("Error"),
            "",
            s,
            html! {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("Error")) }
                p.error role="alert" { (message) }
                @if !fields.is_empty() { ul { @for f in &fields { li { (f) } } } }
                p { a href="/console/" { "Back to the console" } }
            },
        ),
    )
}

/// Runs `page` for a signed-in operator (sign-in page otherwise), with
/// the CSRF token checked when `form` is given.
async fn guarded<F, Fut>(
    state: &AppState,
    req: &HttpRequest,
    form: Option<&[(String, String)]>,
    page: F,
) -> HttpResponse
where
    F: FnOnce(OperatorSession) -> Fut,
    Fut: std::future::Future<Output = Result<HttpResponse, (OperatorSession, ApiError)>>,
{
    if super::tenant_of(req).is_some() {
        return html_response(
            StatusCode::NOT_FOUND,
            html! { h1 { "Not found" } p { "This page is on the platform's own domain." } },
        );
    }
    let Some(s) = current(state, req).await else {
        return see_other("/console/sign-in");
    };
    if let Some(form) = form
        && !session::tokens_match(&s.csrf, field(form, CSRF_FIELD))
    {
        return error_page(
            Some(&s),
            &ApiError::Forbidden("the form is missing its security token; reload the page"),
        );
    }
    match page(s).await {
        Ok(res) => res,
        Err((s, e)) => error_page(Some(&s), &e),
    }
}

pub fn sign_in_page(req: &HttpRequest, error: Option<&str>) -> HttpResponse {
    let token = req
        .cookie(session::SIGN_IN_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 43)
        .unwrap_or_else(crate::auth::sessions::new_token);
    let mut res = html_response(
        if error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        },
        layout(
            "Sign in",
            "",
            None,
            html! {
                h1 { "Operator sign-in" }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                form.stack method="post" action="/console/sign-in" {
                    input type="hidden" name=(CSRF_FIELD) value=(token);
                    label { "E-mail address" input type="email" name="email" autocomplete="username" required; }
                    label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                    button type="submit" { "Sign in" }
                }
            },
        ),
    );
    let _ = res.add_cookie(&session::cookie(session::SIGN_IN_COOKIE, token));
    res
}

pub async fn sign_in(
    state: &AppState,
    req: &HttpRequest,
    form: &[(String, String)],
) -> HttpResponse {
    if !session::sign_in_token_ok(req, field(form, CSRF_FIELD)) {
        return error_page(
            None,
            &ApiError::Forbidden("the form is missing its security token; reload the page"),
        );
    }
    let email = field(form, "email").unwrap_or("");
    let password = field(form, "password").unwrap_or("").to_owned();
    match crate::routes::platform::operator_sign_in(state, req, email, password).await {
        Ok(token) => {
            let mut res = see_other("/console/");
            let _ = res.add_cookie(&session::cookie(COOKIE, token));
            let _ = res.add_removal_cookie(&session::removal(session::SIGN_IN_COOKIE));
            res
        }
        Err(ApiError::Unauthorized(m)) => sign_in_page(req, Some(m)),
        Err(e) => error_page(None, &e),
    }
}

pub async fn sign_out(
    state: &AppState,
    req: &HttpRequest,
    form: &[(String, String)],
) -> HttpResponse {
    guarded(state, req, Some(form), |s| async move {
        match tenancy::operators::end_session(&state.db, s.operator.id, s.operator.session).await {
            Ok(_) => {
                state.standings.forget_operator(s.operator.id);
                let mut res = see_other("/console/sign-in");
                let _ = res.add_removal_cookie(&session::removal(COOKIE));
                Ok(res)
            }
            Err(e) => Err((s, e.into())),
        }
    })
    .await
}

/// Tenants, searchable by slug or name, with their migration status and
/// suspend, resume and delete.
pub async fn tenants(state: &AppState, req: &HttpRequest) -> HttpResponse {
    let q = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let needle = field(&q, "q").unwrap_or("").to_lowercase();
    guarded(state, req, None, |s| async move {
        let list = match state.resolver.registry().list().await {
            Ok(l) => l,
            Err(e) => return Err((s, e.into())),
        };
        let shown: Vec<tenancy::Tenant> = list
            .iter()
            .filter(|t| {
                needle.is_empty()
                    || t.slug().as_str().contains(&needle)
                    || t.display_name().to_lowercase().contains(&needle)
            })
            .take(500)
            .cloned()
            .collect();
        let set = tenancy::migrate::tenant_migrations();
        let shared = tenancy::migrate::Source::Shared;
        let migrations = match tenancy::migrate::status(&state.db, &shown, &set, shared).await {
            Ok(m) => m,
            Err(e) => return Err((s, e.into())),
        };
        let pending = |slug: &str| {
            migrations.iter().find(|m| m.slug == slug).map_or_else(
                || "unknown".to_owned(),
                |m| match (&m.problem, m.pending.len()) {
                    (Some(p), _) => p.clone(),
                    (None, 0) => "current".to_owned(),
                    (None, n) => format!("{n} pending"),
                },
            )
        };
        Ok(html_response(
            StatusCode::OK,
            layout("Tenants", "tenants", Some(&s), html! {
                h1 { "Tenants" }
                form.filters method="get" action="/console/" {
                    label { "Search" input type="text" name="q" value=(needle); }
                    button type="submit" { "Search" }
                }
                p.muted { (shown.len()) " of " (list.len()) " tenants" }
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "Slug" } th scope="col" { "Name" } th scope="col" { "Status" } th scope="col" { "Migrations" } th scope="col" { "Created" } th scope="col" { span.muted { "Actions" } } } }
                        tbody {
                            @for t in &shown {
                                @let slug = t.slug().as_str();
                                tr {
                                    td { (slug) } td { (t.display_name()) } td { (t.status().as_str()) }
                                    td { (pending(slug)) }
                                    td { (t.created_at().format("%Y-%m-%d")) }
                                    td {
                                        @let (action, label) = if t.status() == tenancy::TenantStatus::Suspended { ("resume", "Resume") } else { ("suspend", "Suspend") };
                                        form.inline method="post" action={ "/console/tenants/" (slug) "/" (action) } {
                                            input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                                            button.plain type="submit" aria-label={ (label) " " (slug) } { (label) }
                                        }
                                        " "
                                        a href={ "/console/tenants/" (slug) "/delete" } aria-label={ "Delete " (slug) } { "Delete…" }
                                    }
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

fn slug_of(text: &str) -> Result<tenancy::Slug, ApiError> {
    tenancy::Slug::parse(text).map_err(|_| ApiError::NotFound("tenant"))
}

/// Suspends (`suspend`) or resumes (`resume`) a tenant.
pub async fn tenant_status(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: Form,
) -> HttpResponse {
    guarded(&state, &req, Some(&form), |s| async {
        let (slug, action) = path.into_inner();
        let slug = match slug_of(&slug) {
            Ok(x) => x,
            Err(e) => return Err((s, e)),
        };
        let registry = state.resolver.registry();
        let done = match action.as_str() {
            "suspend" => registry.suspend(&slug).await,
            "resume" => registry.resume(&slug).await,
            _ => return Err((s, ApiError::NotFound("action"))),
        };
        match done {
            Ok(_) => Ok(see_other("/console/")),
            Err(e) => Err((s, e.into())),
        }
    })
    .await
}

/// Asks for the tenant's slug, typed, before deleting it.
pub async fn delete_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
) -> HttpResponse {
    guarded(&state, &req, None, |s| async {
        let tenant = match slug_of(&slug) {
            Ok(x) => match state.resolver.registry().get(&x).await {
                Ok(t) => t,
                Err(e) => return Err((s, e.into())),
            },
            Err(e) => return Err((s, e)),
        };
        Ok(html_response(
            StatusCode::OK,
            layout("Delete a tenant", "tenants", Some(&s), html! {
                h1 { "Delete " (tenant.slug().as_str()) "?" }
                p.error { "This drops the tenant's schema and every record, user and history in it. It cannot be undone; export it first if you may need it." }
                form.stack method="post" action={ "/console/tenants/" (tenant.slug().as_str()) "/delete" } {
                    input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                    label { "Type the tenant's slug to confirm" input type="text" name="confirm" autocomplete="off" required; }
                    button type="submit" { "Delete for good" }
                }
            }),
        ))
    })
    .await
}

pub async fn delete_tenant(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    form: Form,
) -> HttpResponse {
    guarded(&state, &req, Some(&form), |s| async {
        if field(&form, "confirm") != Some(slug.as_str()) {
            return Err((
                s,
                ApiError::field("confirm", "must be the tenant's slug, typed"),
            ));
        }
        let slug = match slug_of(&slug) {
            Ok(x) => x,
            Err(e) => return Err((s, e)),
        };
        match state.resolver.registry().delete(&slug).await {
            Ok(_) => Ok(see_other("/console/")),
            Err(e) => Err((s, e.into())),
        }
    })
    .await
}

pub async fn field_set_list(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    guarded(&state, &req, None, |s| async {
        let sets = match field_sets::list(&state.db).await {
            Ok(l) => l,
            Err(e) => return Err((s, e.into())),
        };
        Ok(html_response(
            StatusCode::OK,
            layout("Field sets", "field-sets", Some(&s), html! {
                h1 { "Platform field sets" }
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "Model" } th scope="col" { "Name" } th scope="col" { "Version" } th scope="col" { "Fields" } th scope="col" { span.muted { "Actions" } } } }
                        tbody {
                            @for set in &sets {
                                tr {
                                    td { (set.model) } td { (set.label) " (" (set.name) ")" } td { (set.version) }
                                    td { (set.fields.iter().map(|d| d.key.as_str()).collect::<Vec<_>>().join(", ")) }
                                    td { a href={ "/console/distribute/" (set.id) } { "Distribute…" } }
                                }
                            }
                        }
                    }
                }
                @if sets.is_empty() { p.muted { "No platform field sets yet (POST /api/v1/platform/field-sets or migrator field-sets create)." } }
            }),
        ))
    })
    .await
}

const EXPLAINED: [(&str, &str, &str); 3] = [
    (
        "skip",
        "Skip",
        "Tenants that already have this set keep their copy; the others get it.",
    ),
    (
        "overwrite",
        "Overwrite",
        "Every tenant's copy becomes the platform's. Fields the platform no longer has are removed (kept, retired, where records hold values); tenants' own edits are lost.",
    ),
    (
        "merge",
        "Merge",
        "Platform changes the tenant did not touch are applied; the tenant's own fields and edits are kept; a field changed on both sides takes the platform's value and is reported as a conflict.",
    ),
];

/// The wizard: tenants, a strategy, the dry run, then the job.
pub async fn distribute_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    set: web::Path<Uuid>,
) -> HttpResponse {
    wizard(&state, &req, *set, None).await
}

async fn wizard(
    state: &AppState,
    req: &HttpRequest,
    set_id: Uuid,
    form: Option<&[(String, String)]>,
) -> HttpResponse {
    guarded(state, req, form, |s| async move {
        let set = match field_sets::get(&state.db, set_id).await {
            Ok(x) => x,
            Err(e) => return Err((s, e.into())),
        };
        let tenants = match state.resolver.registry().list().await {
            Ok(l) => l,
            Err(e) => return Err((s, e.into())),
        };
        let chosen: Vec<String> = form
            .map(|f| f.iter().filter(|(k, _)| k == "tenant").map(|(_, v)| v.clone()).collect())
            .unwrap_or_default();
        let strategy = form.and_then(|f| field(f, "strategy")).unwrap_or("merge").to_owned();
        let preview = match form {
            Some(_) => {
                if chosen.is_empty() {
                    return Err((s, ApiError::field("tenants", "pick at least one tenant")));
                }
                let targets = Targets { tenants: chosen.clone(), ..Targets::default() };
                match distribution::dry_run(state.resolver.registry(), set_id, &targets).await {
                    Ok(p) => Some(p),
                    Err(e) => return Err((s, e.into())),
                }
            }
            None => None,
        };
        Ok(html_response(
            StatusCode::OK,
            layout("Distribute", "field-sets", Some(&s), html! {
                h1 { "Distribute " (set.label) " v" (set.version) }
                p.muted { (set.model) ": " (set.fields.iter().map(|d| d.key.as_str()).collect::<Vec<_>>().join(", ")) }
                form method="post" action={ "/console/distribute/" (set.id) "/preview" } {
                    input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                    fieldset {
                        legend { "1. Tenants" }
                        p {
                            button.plain type="button" data-check="tenant" data-to="true" { "Select all" } " "
                            button.plain type="button" data-check="tenant" data-to="false" { "Select none" }
                        }
                        div.choices {
                            @for t in &tenants {
                                label { input type="checkbox" name="tenant" value=(t.slug().as_str()) checked[chosen.iter().any(|c| c == t.slug().as_str())]; " " (t.slug().as_str()) }
                            }
                        }
                    }
                    fieldset {
                        legend { "2. Strategy" }
                        @for (value, label, why) in EXPLAINED {
                            label.radio {
                                input type="radio" name="strategy" value=(value) checked[strategy == value];
                                " " strong { (label) } span.muted { " — " (why) }
                            }
                        }
                    }
                    p {
                        button #preview type="submit" { "3. Preview (dry run)" } " "
                        @if preview.is_some() {
                            button #run type="submit" formaction={ "/console/distribute/" (set.id) "/run" } { "4. Run on " (chosen.len()) " tenant(s)" }
                        }
                    }
                }
                @if let Some(previews) = &preview {
                    h2 { "What " (strategy) " would do" }
                    div.scroll {
                        table {
                            thead { tr { th scope="col" { "Tenant" } th scope="col" { "Outcome" } th scope="col" { "Conflicts" } } }
                            tbody {
                                @for p in previews {
                                    @let w = p.strategies.get(&strategy);
                                    tr {
                                        td { (p.tenant) }
                                        td {
                                            @if let Some(o) = w.and_then(|w| w.outcome.as_ref()) {
                                                (o.action)
                                                @if !o.added.is_empty() { " +" (o.added.join(", +")) }
                                                @if !o.changed.is_empty() { " ~" (o.changed.join(", ~")) }
                                                @if !o.removed.is_empty() { " −" (o.removed.join(", −")) }
                                                @if !o.retired.is_empty() { " (retired: " (o.retired.join(", ")) ")" }
                                            } @else if let Some(e) = w.and_then(|w| w.error.as_ref()) {
                                                span.error { "fails: " (e) }
                                            }
                                        }
                                        td {
                                            @if let Some(o) = w.and_then(|w| w.outcome.as_ref()) {
                                                @for c in &o.conflicts {
                                                    div { code { (c.key) "." (c.attribute) } ": kept " (c.kept) }
                                                }
                                            }
                                        }
                                    }
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

pub async fn distribute_preview(
    state: web::Data<AppState>,
    req: HttpRequest,
    set: web::Path<Uuid>,
    form: Form,
) -> HttpResponse {
    wizard(&state, &req, *set, Some(&form)).await
}

pub async fn distribute_run(
    state: web::Data<AppState>,
    req: HttpRequest,
    set: web::Path<Uuid>,
    form: Form,
) -> HttpResponse {
    guarded(&state, &req, Some(&form), |s| async {
        let tenants: Vec<String> = form
            .iter()
            .filter(|(k, _)| k == "tenant")
            .map(|(_, v)| v.clone())
            .collect();
        let Some(strategy) = field(&form, "strategy").and_then(Strategy::parse) else {
            return Err((
                s,
                ApiError::field("strategy", "pick skip, overwrite or merge"),
            ));
        };
        let by = tenancy::operators::email_of(&state.db, s.operator.id)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| s.operator.id.to_string());
        let targets = Targets {
            tenants,
            ..Targets::default()
        };
        match distribution::start(state.resolver.registry(), *set, &targets, strategy, 4, &by).await
        {
            Ok(job) => Ok(see_other(&format!("/console/jobs/{job}"))),
            Err(e) => Err((s, e.into())),
        }
    })
    .await
}

pub async fn job_list(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    guarded(&state, &req, None, |s| async {
        let list = match jobs::list(&state.db, 50).await {
            Ok(l) => l,
            Err(e) => return Err((s, e.into())),
        };
        Ok(html_response(
            StatusCode::OK,
            layout("Jobs", "jobs", Some(&s), html! {
                h1 { "Jobs" }
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "Started" } th scope="col" { "What" } th scope="col" { "By" } th scope="col" { "Status" } th scope="col" { "Done" } } }
                        tbody {
                            @for j in &list {
                                tr {
                                    td { a href={ "/console/jobs/" (j.id) } { (j.created_at.format("%Y-%m-%d %H:%M:%S")) } }
                                    td { (j.summary) } td { (j.created_by) } td { (j.status) }
                                    td { (format!("{:.0}%", j.percent)) " (" (j.failed) " failed)" }
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

/// A job's progress, refreshed every second while it runs, with each
/// tenant's outcome and a retry of failed items.
pub async fn job_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> HttpResponse {
    guarded(&state, &req, None, |s| async {
        let (p, items) = match async {
            Ok::<_, tenancy::Error>((jobs::progress(&state.db, *id).await?, jobs::items(&state.db, *id, None).await?))
        }
        .await
        {
            Ok(x) => x,
            Err(e) => return Err((s, e.into())),
        };
        let running = p.status == "running";
        let mut res = html_response(
            StatusCode::OK,
            layout("Job", "jobs", Some(&s), html! {
                h1 { "Job" }
                p { (p.summary) " — " (p.status) ", by " (p.created_by) }
                p {
                    label { "Progress"
                        progress id="progress" max=(p.total) value=(p.done + p.failed) { (format!("{:.0}%", p.percent)) }
                    }
                    strong id="percent" { (format!("{:.0}%", p.percent)) }
                    " — " (p.done) " done, " (p.failed) " failed, " (p.pending) " pending"
                    @if p.cancelled > 0 { ", " (p.cancelled) " cancelled" }
                    @if p.rate > 0.0 { " — " (format!("{:.1}", p.rate)) " tenants/s" }
                    @if let Some(eta) = p.eta_seconds { ", about " (format!("{eta:.0}")) " s left" }
                }
                @if p.failed > 0 {
                    form method="post" action={ "/console/jobs/" (p.id) "/retry" } {
                        input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                        button type="submit" { "Retry failed tenants" }
                    }
                }
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "Tenant" } th scope="col" { "Status" } th scope="col" { "Outcome" } th scope="col" { "Error" } } }
                        tbody {
                            @for i in &items {
                                tr {
                                    td { (i.tenant) } td { (i.status) }
                                    td { (i.result.as_ref().and_then(|r| r.get("action")).and_then(|a| a.as_str()).unwrap_or("")) }
                                    td { @if let Some(e) = &i.error { span.error { (e) } } }
                                }
                            }
                        }
                    }
                }
            }),
        );
        if running {
            res.headers_mut().insert(header::REFRESH, header::HeaderValue::from_static("1"));
        }
        Ok(res)
    })
    .await
}

pub async fn job_retry(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
    form: Form,
) -> HttpResponse {
    guarded(&state, &req, Some(&form), |s| async {
        match jobs::retry(&state.db, *id).await {
            Ok(_) => Ok(see_other(&format!("/console/jobs/{id}"))),
            Err(e) => Err((s, e.into())),
        }
    })
    .await
}

/// Templates, capturing one from a tenant, and making a tenant from one.
pub async fn templates(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    guarded(&state, &req, None, |s| async {
        let (list, tenants) = match async {
            Ok::<_, tenancy::Error>((
                tenancy::templates::list(&state.db).await?,
                state.resolver.registry().list().await?,
            ))
        }
        .await
        {
            Ok(x) => x,
            Err(e) => return Err((s, e.into())),
        };
        Ok(html_response(
            StatusCode::OK,
            layout("Templates", "templates", Some(&s), html! {
                h1 { "Templates" }
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "Name" } th scope="col" { "From" } th scope="col" { "Rows" } th scope="col" { "Description" } } }
                        tbody {
                            @for t in &list {
                                tr {
                                    td { (t.name) }
                                    td { (t.source) @if t.include_records { " (with records)" } }
                                    td { (t.tables.as_object().map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                                    td { (t.description) }
                                }
                            }
                        }
                    }
                }
                @if list.is_empty() { p.muted { "No templates yet." } }
                h2 { "Capture a template" }
                form.stack method="post" action="/console/templates" {
                    input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                    label { "Name (a-z, digits, -)" input type="text" name="name" required; }
                    label { "From tenant"
                        select name="tenant" { @for t in &tenants { option value=(t.slug().as_str()) { (t.slug().as_str()) } } }
                    }
                    label { "Description" input type="text" name="description"; }
                    label.radio { input type="checkbox" name="include_records" value="true"; " Include its records as sample data" }
                    button type="submit" { "Capture" }
                }
                h2 { "Create a tenant" }
                form.stack method="post" action="/console/tenants" {
                    input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                    label { "Slug" input type="text" name="slug" required; }
                    label { "Name" input type="text" name="display_name" required; }
                    label { "Template"
                        select name="template" {
                            option value="" { "none" }
                            @for t in &list { option value=(t.name) { (t.name) } }
                        }
                    }
                    label { "First administrator's e-mail" input type="email" name="admin_email"; }
                    label { "Their password" input type="password" name="admin_password" autocomplete="new-password"; }
                    button type="submit" { "Create tenant" }
                }
            }),
        ))
    })
    .await
}

pub async fn capture_template(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Form,
) -> HttpResponse {
    guarded(&state, &req, Some(&form), |s| async {
        let tenant = match slug_of(field(&form, "tenant").unwrap_or("")) {
            Ok(x) => x,
            Err(e) => return Err((s, e)),
        };
        let by = tenancy::operators::email_of(&state.db, s.operator.id)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| s.operator.id.to_string());
        match state
            .resolver
            .registry()
            .capture_template(
                field(&form, "name").unwrap_or(""),
                field(&form, "description").unwrap_or(""),
                &tenant,
                field(&form, "include_records") == Some("true"),
                &by,
            )
            .await
        {
            Ok(_) => Ok(see_other("/console/templates")),
            Err(e) => Err((s, e.into())),
        }
    })
    .await
}

/// Creates a tenant (from a template when one is chosen) with an optional
/// first administrator, through the operator API's own function.
pub async fn create_tenant(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Form,
) -> HttpResponse {
    guarded(&state, &req, Some(&form), |s| async {
        let text = |k: &str| {
            field(&form, k)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let body = crate::routes::platform_ops::NewTenantRequest {
            slug: text("slug").unwrap_or_default(),
            display_name: text("display_name").unwrap_or_default(),
            template: text("template"),
            admin_email: text("admin_email"),
            admin_password: text("admin_password"),
            admin_name: None,
        };
        match crate::routes::platform_ops::provision_tenant(&state, body).await {
            Ok(_) => Ok(see_other("/console/")),
            Err(e) => Err((s, e)),
        }
    })
    .await
}

/// Pauses or resumes webhook deliveries on the whole platform.
pub async fn events(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    guarded(&state, &req, None, |s| async {
        let q = match tenancy::deliveries::platform(&state.db).await {
            Ok(q) => q,
            Err(e) => return Err((s, e.into())),
        };
        let paused = q.as_ref().is_some_and(|q| q.paused);
        Ok(html_response(
            StatusCode::OK,
            layout("Events", "events", Some(&s), html! {
                h1 { "Event deliveries" }
                @if let Some(q) = &q {
                    p { "Deliveries are " strong { @if q.paused { "paused" } @else { "running" } } " on the whole platform; "
                        (q.pending) " waiting, " (q.failed) " failed, in " (q.tenants.len()) " tenant(s) with endpoints." }
                }
                form method="post" action="/console/events" {
                    input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                    input type="hidden" name="paused" value=(if paused { "false" } else { "true" });
                    button type="submit" { @if paused { "Resume deliveries" } @else { "Pause deliveries" } }
                }
                p.muted { "While paused, events and deliveries still accumulate; they go out on resume." }
            }),
        ))
    })
    .await
}

pub async fn set_events(state: web::Data<AppState>, req: HttpRequest, form: Form) -> HttpResponse {
    guarded(&state, &req, Some(&form), |s| async {
        let paused = field(&form, "paused") == Some("true");
        match tenancy::deliveries::set_platform_paused(&state.db, paused).await {
            Ok(()) => Ok(see_other("/console/events")),
            Err(e) => Err((s, e.into())),
        }
    })
    .await
}

/// Platform figures, as `GET /api/v1/platform/metrics` gives them, with
/// the delivery queue's.
pub async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    guarded(&state, &req, None, |s| async {
        let (m, q) = match async {
            Ok::<_, ApiError>((
                platform::metrics::read(&state.db).await?,
                tenancy::deliveries::platform(&state.db).await?,
            ))
        }
        .await
        {
            Ok(x) => x,
            Err(e) => return Err((s, e)),
        };
        Ok(html_response(
            StatusCode::OK,
            layout("Metrics", "metrics", Some(&s), html! {
                h1 { "Platform metrics" }
                div.cards {
                    div.card { strong { (m.tenants) } span.muted { "tenants" } }
                    @for (status, n) in &m.tenants_by_status {
                        div.card { strong { (n) } span.muted { (status) } }
                    }
                    div.card { strong { (m.jobs_running) } span.muted { "jobs running" } }
                    div.card { strong { (m.job_items_pending) } span.muted { "job items waiting" } }
                    div.card { strong { (m.jobs_last_day) } span.muted { "jobs in the last day" } }
                    @if let Some(q) = &q {
                        div.card { strong { (q.pending) } span.muted { "deliveries waiting" } }
                        div.card { strong { (q.failed) } span.muted { "deliveries failed" } }
                    }
                    div.card { strong { (format!("{:.1}", m.database_bytes as f64 / 1_048_576.0)) } span.muted { "MiB of database" } }
                    div.card { strong { (m.database_connections) } span.muted { "database connections" } }
                }
            }),
        ))
    })
    .await
}
