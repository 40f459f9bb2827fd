//! The console's audit trail and sync log pages: filters in the query
//! string, keyset pages, CSV of what the filters select.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use domain::journal;
use domain::roles::{Action, Area};
use maud::html;
use serde::Deserialize;
use sync_engine::log::{self, Kind, LogQuery};
use tenancy::TenantTx;
use uuid::Uuid;

use super::pages::{Page, guarded, html_response};
use crate::error::ApiError;
use crate::middleware::tenant::CurrentTenant;
use crate::routes::audit::TrailParams;
use crate::state::AppState;

/// Lines per page of the sync log.
pub const LOG_PAGE: i64 = 50;

/// `?a=b&c=d` of the non-empty pairs.
fn query_string(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", urlencode(v)))
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A changed value as shown: JSON, strings unquoted, at most 80 characters.
fn shown(v: &serde_json::Value) -> String {
    let s = match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "∅".into(),
        other => other.to_string(),
    };
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

/// The audit trail (Administrators, Auditors): `?model=&record_id=&channel=`
/// `&from=&to=&cursor=`; `?format=csv` for every matching entry as CSV.
pub async fn audit(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
) -> HttpResponse {
    guarded(&state, &tenant, &req, Area::Audit, Action::Read, |s| async {
        let mut pairs: Vec<(String, String)> =
            web::Query::<Vec<(String, String)>>::from_query(req.query_string())
                .map(|q| q.into_inner())
                .unwrap_or_default();
        let csv = pairs.iter().any(|(k, v)| k == "format" && v == "csv");
        pairs.retain(|(k, v)| k != "format" && !v.is_empty());
        let encoded = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let params = match web::Query::<TrailParams>::from_query(&encoded) {
            Ok(p) => p.into_inner(),
            Err(e) => return Err((s, ApiError::BadBody(e.to_string()))),
        };
        let mut query = match params.query() {
            Ok(q) => q,
            Err(e) => return Err((s, e)),
        };
        if csv {
            return Ok(crate::routes::audit::csv(state.clone(), tenant.clone(), query));
        }
        query.limit = 50;
        let read = async {
            let tx = TenantTx::begin(&state.db, &tenant.0).await?;
            let rows = journal::page(tx.conn(), &query).await?;
            tx.commit().await?;
            Ok::<_, ApiError>(rows)
        };
        let rows = match read.await {
            Ok(r) => r,
            Err(e) => return Err((s, e)),
        };
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let filters = [
            ("model", get("model")),
            ("record_id", get("record_id")),
            ("channel", get("channel")),
            ("from", get("from")),
            ("to", get("to")),
        ];
        let next = (rows.len() as u64 == query.limit)
            .then(|| rows.last().map(|e| e.id))
            .flatten();
        let mut with_next = filters.to_vec();
        with_next.push(("cursor", next.map(|n| n.to_string())));
        let mut with_csv = filters.to_vec();
        with_csv.push(("format", Some("csv".into())));
        let page = Page {
            title: "Audit trail",
            here: "audit",
            tenant: &tenant,
            session: Some(&s),
        };
        Ok(html_response(
            StatusCode::OK,
            page.render(html! {
                h1 { "Audit trail" }
                form.filters method="get" action="/console/audit" {
                    label { "Model"
                        select name="model" {
                            option value="" { "any" }
                            @for m in domain::models() {
                                option value=(m.name()) selected[get("model").as_deref() == Some(m.name())] { (m.name()) }
                            }
                        }
                    }
                    label { "Channel"
                        select name="channel" {
                            option value="" { "any" }
                            @for c in journal::CHANNELS {
                                option value=(c) selected[get("channel").as_deref() == Some(*c)] { (c) }
                            }
                        }
                    }
                    label { "Record id" input type="text" name="record_id" value=[get("record_id")]; }
                    label { "From (RFC 3339)" input type="text" name="from" value=[get("from")] placeholder="2026-11-01T00:00:00Z"; }
                    label { "To (RFC 3339)" input type="text" name="to" value=[get("to")]; }
                    button type="submit" { "Filter" }
                    a href={ "/console/audit" (query_string(&with_csv)) } { "Download CSV" }
                }
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "Record" } th scope="col" { "Change" } th scope="col" { "Fields" } th scope="col" { "Who" } } }
                        tbody {
                            @for e in &rows {
                                tr {
                                    td { (e.at.format("%Y-%m-%d %H:%M:%S")) }
                                    td {
                                        a href={ "/console/audit?model=" (e.model) "&record_id=" (e.record_id) } title="This record's history" {
                                            (e.model) " " (e.record_id.to_string().get(..8).unwrap_or(""))
                                        }
                                    }
                                    td { (e.action) " → v" (e.version) }
                                    td {
                                        @if let Some(map) = e.changes.as_object() {
                                            ul.diff {
                                                @for (field, pair) in map {
                                                    li {
                                                        code { (field) } ": "
                                                        @if let Some([old, new]) = pair.as_array().map(Vec::as_slice) {
                                                            del { (shown(old)) } " → " ins { (shown(new)) }
                                                        } @else {
                                                            (shown(pair))
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                    td { (e.actor) " via " (e.channel) }
                                }
                            }
                        }
                    }
                }
                @if rows.is_empty() { p.muted { "No changes match." } }
                @if next.is_some() {
                    p { a href={ "/console/audit" (query_string(&with_next)) } { "Older changes" } }
                }
            }),
        ))
    })
    .await
}

/// The sync log's filters, as the page's form sends them.
#[derive(Deserialize, Default)]
pub struct LogFilters {
    pub kind: Option<String>,
    pub status: Option<String>,
    pub user_id: Option<String>,
    /// `<RFC 3339>_<uuid>` of the last line of the previous page.
    pub before: Option<String>,
    pub format: Option<String>,
}

impl LogFilters {
    fn query(&self, limit: i64) -> Result<LogQuery, ApiError> {
        let blank = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
        let kind = match blank(&self.kind).as_deref() {
            None => None,
            Some("push") => Some(Kind::Push),
            Some("pull") => Some(Kind::Pull),
            Some(_) => return Err(ApiError::field("kind", "must be push or pull")),
        };
        let status = blank(&self.status);
        if let Some(s) = &status
            && !matches!(s.as_str(), "ok" | "partial" | "failed")
        {
            return Err(ApiError::field("status", "must be ok, partial or failed"));
        }
        let user = blank(&self.user_id)
            .map(|u| Uuid::parse_str(&u).map_err(|_| ApiError::field("user_id", "must be a UUID")))
            .transpose()?;
        let before = blank(&self.before)
            .map(|b| {
                let (at, id) = b.split_once('_')?;
                Some((
                    DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
                    Uuid::parse_str(id).ok()?,
                ))
            })
            .map(|b| b.ok_or_else(|| ApiError::field("before", "is not a position of this log")))
            .transpose()?;
        Ok(LogQuery {
            user,
            kind,
            status,
            before,
            limit,
        })
    }
}

/// Renders one page of the sync log (also what the benchmark times).
pub fn log_page(page: &Page<'_>, filters: &LogFilters, lines: &[log::Line]) -> maud::Markup {
    let keep = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let base = [
        ("kind", keep(&filters.kind)),
        ("status", keep(&filters.status)),
        ("user_id", keep(&filters.user_id)),
    ];
    let next = (lines.len() as i64 == LOG_PAGE)
        .then(|| lines.last())
        .flatten()
        .map(|l| format!("{}_{}", l.created_at.to_rfc3339(), l.id));
    let mut with_next = base.to_vec();
    with_next.push(("before", next.clone()));
    let mut with_csv = base.to_vec();
    with_csv.push(("format", Some("csv".into())));
    page.render(html! {
        h1 { "Sync log" }
        p.muted { "Refreshes every 30 seconds." }
        form.filters method="get" action="/console/sync-log" {
            label { "Kind"
                select name="kind" {
                    option value="" { "any" }
                    @for k in ["push", "pull"] { option value=(k) selected[filters.kind.as_deref() == Some(k)] { (k) } }
                }
            }
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for k in ["ok", "partial", "failed"] { option value=(k) selected[filters.status.as_deref() == Some(k)] { (k) } }
                }
            }
            label { "User id" input type="text" name="user_id" value=[keep(&filters.user_id)]; }
            button type="submit" { "Filter" }
            a href={ "/console/sync-log" (query_string(&with_csv)) } { "Download CSV" }
        }
        div.scroll {
            table {
                thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "Kind" } th scope="col" { "Device" } th scope="col" { "Records" } th scope="col" { "Status" } th scope="col" { "ms" } } }
                tbody {
                    @for l in lines {
                        tr {
                            td { (l.created_at.format("%Y-%m-%d %H:%M:%S")) }
                            td { (l.kind) }
                            td { (l.client_id.as_deref().unwrap_or("")) }
                            td {
                                @if let Some(m) = l.counts.as_object() {
                                    @for (model, n) in m { (model) ": " (n) " " }
                                }
                            }
                            td { (l.status) @if let Some(e) = &l.error { " — " span.error { (e) } } }
                            td { (format!("{:.1}", l.duration_ms)) }
                        }
                    }
                }
            }
        }
        @if lines.is_empty() { p.muted { "No pushes or pulls match." } }
        @if next.is_some() {
            p { a href={ "/console/sync-log" (query_string(&with_next)) } { "Older lines" } }
        }
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The sync log (Administrators): filters, keyset pages, CSV (up to 10,000
/// lines), refreshed every 30 s.
pub async fn sync_log(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
    filters: web::Query<LogFilters>,
) -> HttpResponse {
    guarded(
        &state,
        &tenant,
        &req,
        Area::Users,
        Action::Write,
        |s| async {
            let csv = filters.format.as_deref() == Some("csv");
            let query = match filters.query(if csv { 10_000 } else { LOG_PAGE }) {
                Ok(q) => q,
                Err(e) => return Err((s, e)),
            };
            let read = async {
                let tx = TenantTx::begin(&state.db, &tenant.0).await?;
                let lines = log::page(tx.conn(), &query).await?;
                tx.commit().await?;
                Ok::<_, ApiError>(lines)
            };
            let lines = match read.await {
                Ok(l) => l,
                Err(e) => return Err((s, e)),
            };
            if csv {
                let mut out = String::from(
                    "created_at,kind,user_id,client_id,status,duration_ms,counts,error\n",
                );
                for l in &lines {
                    out.push_str(&format!(
                        "{},{},{},{},{},{:.3},{},{}\n",
                        l.created_at.to_rfc3339(),
                        l.kind,
                        l.user_id.map(|u| u.to_string()).unwrap_or_default(),
                        csv_field(l.client_id.as_deref().unwrap_or("")),
                        l.status,
                        l.duration_ms,
                        csv_field(&l.counts.to_string()),
                        csv_field(l.error.as_deref().unwrap_or(""))
                    ));
                }
                return Ok(HttpResponse::Ok()
                    .content_type("text/csv; charset=utf-8")
                    .insert_header((
                        actix_web::http::header::CONTENT_DISPOSITION,
                        "attachment; filename=\"sync-log.csv\"",
                    ))
                    .body(out));
            }
            let page = Page {
                title: "Sync log",
                here: "sync-log",
                tenant: &tenant,
                session: Some(&s),
            };
            let mut res = html_response(StatusCode::OK, log_page(&page, &filters, &lines));
            res.headers_mut().insert(
                actix_web::http::header::REFRESH,
                actix_web::http::header::HeaderValue::from_static("30"),
            );
            Ok(res)
        },
    )
    .await
}
