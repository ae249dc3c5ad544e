//! What every console handler needs: the caller's address and cookies, the
//! session (idle and absolute timeouts, one per user), the role check, the
//! CSRF check, and rendering.

use std::collections::HashMap;
use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Redirect, Response};
use http::HeaderMap;
use serde_json::json;

use crate::audit::{Actor, Outcome};
use crate::auth::Role;
use crate::auth::session::{COOKIE, Current};
use crate::crypto::ct_eq;
use crate::http::AppState;
use crate::http::error::AppError;

/// The caller, as far as a request tells.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub ip: String,
    /// The path and query asked for (to mark the navigation and to come back after sign-in).
    pub path: String,
    pub method: http::Method,
    pub user_agent: String,
    pub cookies: HashMap<String, String>,
    pub headers: HeaderMap,
}

impl Ctx {
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        let user_agent: String = parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .take(256)
            .collect();
        let mut cookies = HashMap::new();
        for header in parts.headers.get_all(http::header::COOKIE) {
            for pair in header.to_str().unwrap_or("").split(';') {
                if let Some((k, v)) = pair.trim().split_once('=') {
                    cookies.entry(k.to_string()).or_insert_with(|| v.to_string());
                }
            }
        }
        let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").chars().take(512).collect();
        Ok(Ctx { ip, path, method: parts.method.clone(), user_agent, cookies, headers: parts.headers.clone() })
    }
}

/// A request is same-origin when the browser says so. `Sec-Fetch-Site` (sent
/// by browsers, unforgeable by page script) must be `same-origin` or `none`
/// when present; an `Origin` other than `null` must be Sika's public origin or
/// this very host over HTTPS. With `Referrer-Policy: no-referrer` browsers send
/// `Origin: null` on same-origin form posts, so then `Sec-Fetch-Site` decides;
/// failing both, the `Referer`'s origin. Nothing to go on → refused.
pub fn origin_allowed(headers: &HeaderMap, public_origin: &str) -> bool {
    let get = |n: &http::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site.is_some_and(|s| s != "same-origin" && s != "none") {
        return false;
    }
    let host_origin = get(&http::header::HOST).map(|h| format!("https://{h}"));
    let ok = |origin: &str| origin == public_origin || host_origin.as_deref() == Some(origin);
    match get(&http::header::ORIGIN) {
        Some(origin) if origin != "null" => return ok(origin),
        _ => {}
    }
    if site.is_some() {
        return true;
    }
    match get(&http::header::REFERER).and_then(|r| url::Url::parse(r).ok()) {
        Some(r) => ok(&r.origin().ascii_serialization()),
        None => false,
    }
}

impl AppState {
    /// The signed-in operator with a full session, or a redirect to sign in
    /// (or to finish enrolment).
    pub async fn signed_in(&self, ctx: &Ctx) -> Result<Current, Response> {
        let to_login = || Redirect::to(&login_then(ctx)).into_response();
        let Some(token) = ctx.cookie(COOKIE) else { return Err(to_login()) };
        match self.auth.current(token, &ctx.ip, &ctx.user_agent).await {
            Ok(Ok(mut c)) if c.is_full() => {
                if crate::auth::roles::may::APPROVE_PAYOUTS.contains(&c.role()) {
                    c.approvals_waiting = self.payouts.awaiting_count().await.ok();
                }
                if crate::auth::roles::may::APPROVE_CHARGEBACK_ANSWERS.contains(&c.role()) {
                    c.answers_waiting = self.payments.answers_awaiting_count().await.ok();
                }
                c.cards_enabled = self.cards.is_some();
                if let Some(cards) = &self.cards
                    && crate::auth::roles::may::APPROVE_CARD_FUNDING.contains(&c.role())
                {
                    c.card_approvals_waiting = cards.fundings_awaiting_count().await.ok();
                }
                c.here = ctx.path.split('?').next().unwrap_or("/").to_string();
                // Display only: every record stays UTC; another instance's change shows on the next page.
                if let Ok(zone) = self.settings.time_zone().await {
                    crate::timefmt::set_console_zone(zone.unwrap_or(crate::timefmt::ZONES[0]));
                }
                c.flash = ctx.cookie(super::flash::COOKIE).and_then(super::flash::message);
                Ok(c)
            }
            Ok(Ok(_)) => Err(Redirect::to("/enrol").into_response()),
            Ok(Err(_)) => Err(to_login()),
            Err(e) => Err(AppError::Internal(Box::new(e)).into_response()),
        }
    }

    /// Refuses (403, audited) unless the operator's role is in `allowed`.
    pub async fn require(&self, c: &Current, ctx: &Ctx, allowed: &[Role], what: &str) -> Result<(), Response> {
        if allowed.contains(&c.role()) {
            return Ok(());
        }
        self.audited(&c.actor(&ctx.ip, &ctx.user_agent), "access", what, Outcome::Denied, json!({})).await?;
        Err(error_page(Some(c), http::StatusCode::FORBIDDEN))
    }

    /// The synchronizer token (bound to the session, constant-time) plus the origin check.
    pub async fn check_csrf(&self, c: &Current, ctx: &Ctx, submitted: &str) -> Result<(), Response> {
        if ct_eq(submitted, &c.csrf_token) && origin_allowed(&ctx.headers, &self.public_origin) {
            return Ok(());
        }
        self.audited(&c.actor(&ctx.ip, &ctx.user_agent), "csrf", "form", Outcome::Denied, json!({})).await?;
        Err(AppError::Forbidden.into_response())
    }

    /// The one way the console records what someone did or saw. When the entry
    /// cannot be written the caller gets `Err` (a generic 500) and must stop
    /// there: a sensitive action or read that leaves no trace does not happen.
    pub async fn audited(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        outcome: Outcome,
        details: serde_json::Value,
    ) -> Result<(), Response> {
        match self.auth.auditor.record(actor, action, target, outcome, details).await {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, action, "the audit entry could not be written; the action is refused");
                Err(AppError::Internal(Box::new(e)).into_response())
            }
        }
    }
}

/// The navigation bar: who is signed in, their role, the links their role may
/// use, and the logout button's CSRF token.
#[derive(Debug, Clone)]
pub struct Nav {
    pub email: String,
    pub role: String,
    pub csrf: String,
    /// (href, label, is the current page)
    pub links: Vec<(&'static str, String, bool)>,
    pub flash: Option<&'static str>,
}

impl Nav {
    pub fn of(c: &Current) -> Option<Nav> {
        let mut links = vec![("/", "Home".to_string())];
        if crate::auth::roles::may::READ_PAYMENTS.contains(&c.role()) {
            links.push(("/payments", "Payments".into()));
            match c.answers_waiting {
                Some(n) if n > 0 => links.push(("/disputes", format!("Disputes ({n} to send)"))),
                _ => links.push(("/disputes", "Disputes".into())),
            }
            links.push(("/settlements", "Settlements".into()));
        }
        if crate::auth::roles::may::READ_PAYOUTS.contains(&c.role()) {
            links.push(("/payouts", "Payouts".into()));
        }
        if c.cards_enabled && crate::auth::roles::may::READ_CARDS.contains(&c.role()) {
            match c.card_approvals_waiting {
                Some(n) if n > 0 => links.push(("/cards", format!("Cards ({n} to approve)"))),
                _ => links.push(("/cards", "Cards".into())),
            }
        }
        if let Some(n) = c.approvals_waiting {
            links.push(("/payouts?status=awaiting_approval", format!("Approvals ({n})")));
        }
        if crate::auth::roles::may::MANAGE_USERS.contains(&c.role()) {
            links.push(("/admin/users", "Users".into()));
        }
        if crate::auth::roles::may::MANAGE_API_KEYS.contains(&c.role()) {
            links.push(("/admin/api-keys", "API keys".into()));
        }
        if crate::auth::roles::may::MANAGE_SETTINGS.contains(&c.role()) {
            links.push(("/admin/settings", "Settings".into()));
            links.push(("/admin/webhooks", "Webhooks".into()));
            links.push(("/admin/mail", "Mail".into()));
        }
        if crate::auth::roles::may::READ_AUDIT.contains(&c.role()) {
            links.push(("/audit", "Audit log".into()));
        }
        // The current page is the link with the longest path the page's path starts with.
        let here = c.here.as_str();
        let current = links
            .iter()
            .map(|(href, _)| href.split('?').next().unwrap_or(href))
            .filter(|p| here == *p || (*p != "/" && here.starts_with(&format!("{p}/"))))
            .max_by_key(|p| p.len())
            .map(str::to_string);
        let links = links
            .into_iter()
            .map(|(href, label)| {
                let on = current.as_deref() == Some(href) && !(href.contains('?'));
                (href, label, on)
            })
            .collect();
        Some(Nav {
            email: c.user.email.clone(),
            role: c.role().as_str().into(),
            csrf: c.csrf_token.clone(),
            links,
            flash: c.flash,
        })
    }
}

/// `/login`, or `/login?next=…` to come back to the page asked for after
/// signing in (GET pages only: a form cannot be re-sent).
fn login_then(ctx: &Ctx) -> String {
    match safe_next(&ctx.path) {
        Some(next) if ctx.method == http::Method::GET && next != "/" => {
            format!("/login?next={}", url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>())
        }
        _ => "/login".into(),
    }
}

/// A path Sika may send a browser to after sign-in: local, absolute, plain
/// characters only (so never `//evil.example` or `/\evil`), not sign-in itself.
pub fn safe_next(next: &str) -> Option<&str> {
    let plain = next.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.~?=&%+,".contains(&b));
    let local = next.starts_with('/') && !next.starts_with("//");
    let loops = ["/login", "/logout", "/enrol"].iter().any(|p| next.starts_with(p));
    (plain && local && !loops && next.len() <= 512).then_some(next)
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    nav: Option<Nav>,
    status: u16,
    reason: &'static str,
    message: String,
}

/// A 403 or 404 inside the console keeps the navigation. Marked so the edge
/// keeps this body instead of writing the generic one.
pub fn error_page(c: Option<&Current>, status: http::StatusCode) -> Response {
    let public = crate::http::error::default_public(status);
    let page = ErrorPage {
        nav: c.and_then(Nav::of),
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("Error"),
        message: public.message,
    };
    let mut res = render(&page);
    if res.status().is_success() {
        *res.status_mut() = status;
        res.extensions_mut().insert(crate::http::error::OwnBody);
    }
    res
}

/// Console 403/404 responses (and unknown console paths) get the navigation
/// when the browser is signed in; a page shown drops the one-time flash cookie.
pub async fn console_pages(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path().to_string();
    let ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()).unwrap_or_default();
    let cookie_header = req.headers().get(http::header::COOKIE).cloned();
    let had_flash = cookie_header
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(&format!("{}=", super::flash::COOKIE)));
    let mut res = next.run(req).await;
    if crate::http::edge::is_machine_surface(&path) || path.starts_with("/static/") || path.starts_with("/checkout/") {
        return res;
    }
    let status = res.status();
    let plain_error =
        matches!(status.as_u16(), 403 | 404) && res.extensions().get::<crate::http::error::OwnBody>().is_none();
    let token = cookie_header.as_ref().and_then(|v| v.to_str().ok()).and_then(session_token);
    if plain_error
        && let Some(token) = token
        && let Ok(Ok(c)) = state.auth.current(&token, &ip, "").await
        && c.is_full()
    {
        let mut page = error_page(Some(&c), status);
        for (k, v) in res.headers() {
            if k == http::header::SET_COOKIE {
                page.headers_mut().append(k, v.clone());
            }
        }
        res = page;
    }
    if had_flash && res.status() == http::StatusCode::OK {
        super::flash::consume(&mut res);
    }
    res
}

fn session_token(cookie_header: &str) -> Option<String> {
    cookie_header
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => AppError::Internal(Box::new(e)).into_response(),
    }
}

pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Response {
    AppError::Internal(Box::new(e)).into_response()
}

/// A millisecond timestamp as operators see it: in the console's time zone, UTC on hover.
pub fn time(ms: i64) -> crate::timefmt::Stamp {
    crate::timefmt::Stamp::new(ms)
}

/// A file the browser saves (`name` is ours, never typed by anyone): every export uses it.
pub fn download(name: &'static str, content_type: &'static str, body: String) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    ([(http::header::CONTENT_TYPE, content_type.to_string()), (http::header::CONTENT_DISPOSITION, disposition)], body)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::origin_allowed;
    use http::HeaderMap;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn same_origin_checks() {
        let me = "https://pay.example:8443";
        assert!(origin_allowed(&headers(&[("origin", me)]), me));
        assert!(origin_allowed(&headers(&[("origin", "https://localhost:8443"), ("host", "localhost:8443")]), me));
        assert!(
            origin_allowed(&headers(&[("origin", "null"), ("sec-fetch-site", "same-origin")]), me),
            "no-referrer form posts"
        );
        assert!(origin_allowed(&headers(&[("referer", "https://pay.example:8443/x")]), me));
        assert!(!origin_allowed(&headers(&[("origin", "https://evil.example")]), me));
        assert!(!origin_allowed(&headers(&[("origin", "null")]), me), "null alone proves nothing");
        assert!(!origin_allowed(&headers(&[("origin", me), ("sec-fetch-site", "cross-site")]), me));
        assert!(!origin_allowed(&headers(&[("origin", "null"), ("sec-fetch-site", "same-site")]), me));
        assert!(!origin_allowed(
            &headers(&[("origin", "https://evil.example"), ("sec-fetch-site", "same-origin")]),
            me
        ));
        assert!(!origin_allowed(&headers(&[]), me));
        assert!(
            !origin_allowed(&headers(&[("origin", "http://pay.example:8443")]), me),
            "plain HTTP is another origin"
        );
    }
}
