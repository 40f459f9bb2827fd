//! The console's notifications: the signed-in user's, newest first, and
//! new ones as they come (the page listens on the same live stream as the
//! API's `/events/stream`, opened with the console's session).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::pages::{Page, html_response, see_other};
use super::session;
use crate::middleware::tenant::CurrentTenant;
use crate::routes::notifications::{ListParams, open_stream, page_of};
use crate::state::AppState;

pub async fn page(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
) -> HttpResponse {
    let s = match session::current(&state, &tenant, &req).await {
        Ok(Some(s)) => s,
        _ => return see_other("/console/sign-in"),
    };
    let params = ListParams {
        unread: false,
        cursor: None,
        limit: Some(50),
    };
    let list = match page_of(&state, &tenant, &s.user, &params).await {
        Ok(p) => p,
        Err(e) => {
            return html_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                html! { p { (e.to_string()) } },
            );
        }
    };
    let page = Page {
        title: "Notifications",
        here: "notifications",
        tenant: &tenant,
        session: Some(&s),
    };
    html_response(
        StatusCode::OK,
        page.render(html! {
            h1 { "Notifications" }
            p.muted { (list.unread) " unread. New ones appear here as they come." }
            ul #notifications data-stream="/console/notifications/stream" aria-live="polite" {
                @for n in &list.items {
                    li { (n.created_at.format("%Y-%m-%d %H:%M")) " — " (n.kind) " " (n.model) " " code { (n.record_id.to_string().get(..8).unwrap_or("")) } }
                }
            }
        }),
    )
}

/// The live stream for the console's session (notifications and the
/// changes its roles may read).
pub async fn stream(
    state: web::Data<AppState>,
    tenant: CurrentTenant,
    req: HttpRequest,
) -> HttpResponse {
    let s = match session::current(&state, &tenant, &req).await {
        Ok(Some(s)) => s,
        _ => return HttpResponse::Unauthorized().finish(),
    };
    match open_stream(&state, &tenant, &s.user, None).await {
        Ok(res) => res,
        Err(e) => actix_web::ResponseError::error_response(&e),
    }
}
