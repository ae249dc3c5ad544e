//! Sign-in, two-factor enrolment, and logout.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderValue, header};
use serde::Deserialize;

use super::authorized::ConsoleError;
use super::guard::{Ctx, Nav, internal, origin_allowed, render, safe_next};
use crate::auth::login::{Attempt, GENERIC_FAILURE, LoginOutcome};
use crate::auth::session::{COOKIE, LOGIN_COOKIE, NoSession, clear_cookie, cookie};
use crate::crypto::{ct_eq, random, totp};
use crate::http::AppState;
use crate::http::error::AppError;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<Nav>,
    csrf: String,
    email: String,
    /// Where to go after signing in (a checked local path, or "").
    next: String,
    notice: Option<&'static str>,
    error: Option<&'static str>,
}

/// The login form, with a fresh pre-login CSRF token (double submit: cookie
/// and field), and the e-mail typed before (never the password or code).
fn login_form(notice: Option<&'static str>, error: Option<&'static str>, email: &str, next: &str) -> Response {
    let csrf = random::token();
    let email: String = email.chars().filter(|c| !c.is_control()).take(254).collect();
    let next = safe_next(next).unwrap_or("").to_string();
    let mut res = render(&LoginPage { nav: None, csrf: csrf.clone(), email, next, notice, error });
    if let Ok(v) = HeaderValue::from_str(&cookie(LOGIN_COOKIE, &csrf)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    signed_out: Option<String>,
}

pub async fn login_page(State(state): State<AppState>, ctx: Ctx, Query(q): Query<LoginQuery>) -> Response {
    // A browser whose session ended is told why; the stale cookie is then dropped.
    let notice = match ctx.cookie(COOKIE) {
        Some(token) => match state.auth.current(token, &ctx.ip, &ctx.user_agent).await {
            Ok(Ok(c)) if c.is_full() => return Redirect::to("/").into_response(),
            Ok(Err(why @ NoSession::Ended(_))) => why.message(),
            _ => None,
        },
        None => None,
    };
    let signed_out = q.signed_out.is_some().then_some("You have signed out.");
    let mut res = login_form(notice.or(signed_out), None, "", &q.next);
    if notice.is_some()
        && let Ok(v) = HeaderValue::from_str(&clear_cookie(COOKIE))
    {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    totp: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    csrf_token: String,
}

fn with_session_cookie(mut res: Response, token: &str) -> Response {
    for c in [cookie(COOKIE, token), clear_cookie(LOGIN_COOKIE)] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

pub async fn login(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<LoginForm>,
) -> Result<Response, ConsoleError> {
    let expected = ctx.cookie(LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !ct_eq(&f.csrf_token, expected) || !origin_allowed(&ctx.headers, &state.public_origin) {
        let actor = crate::audit::Actor::anonymous(&ctx.ip, &ctx.user_agent);
        if let Err(r) =
            state.audited(&actor, "csrf", "login", crate::audit::Outcome::Denied, serde_json::json!({})).await
        {
            return Ok(r);
        }
        return Ok(AppError::Forbidden.into_response());
    }
    let attempt =
        Attempt { email: &f.email, password: &f.password, code: &f.totp, ip: &ctx.ip, user_agent: &ctx.user_agent };
    Ok(match state.auth.login(attempt).await {
        Ok(LoginOutcome::SignedIn(token)) => {
            let to = safe_next(&f.next).unwrap_or("/");
            with_session_cookie(Redirect::to(to).into_response(), &token)
        }
        Ok(LoginOutcome::MustEnrol(token)) => with_session_cookie(Redirect::to("/enrol").into_response(), &token),
        Ok(LoginOutcome::Failed) => login_form(None, Some(GENERIC_FAILURE), &f.email, &f.next),
        Err(e) => internal(e),
    })
}

#[derive(Template)]
#[template(path = "enrol.html")]
struct EnrolPage {
    nav: Option<Nav>,
    csrf: String,
    secret: String,
    qr_svg: String,
    error: Option<&'static str>,
}

/// The enrolling session (stage `enrol`), or a redirect.
async fn enrolling(state: &AppState, ctx: &Ctx) -> Result<crate::auth::session::Current, Response> {
    let Some(token) = ctx.cookie(COOKIE) else { return Err(Redirect::to("/login").into_response()) };
    match state.auth.current(token, &ctx.ip, &ctx.user_agent).await {
        Ok(Ok(c)) if !c.is_full() => Ok(c),
        Ok(Ok(_)) => Err(Redirect::to("/").into_response()),
        Ok(Err(_)) => Err(Redirect::to("/login").into_response()),
        Err(e) => Err(internal(e)),
    }
}

async fn enrol_form(
    state: &AppState,
    c: &crate::auth::session::Current,
    error: Option<&'static str>,
) -> Result<Response, ConsoleError> {
    let row = match state.auth.user_row(&c.user.id).await? {
        Some(r) => r,
        None => return Ok(Redirect::to("/login").into_response()),
    };
    let secret = state.auth.totp_secret(&row)?;
    let qr_svg = totp::qr_svg(&totp::otpauth_uri(&secret, &c.user.email)).unwrap_or_default();
    Ok(render(&EnrolPage { nav: None, csrf: c.csrf_token.clone(), secret, qr_svg, error }))
}

pub async fn enrol_page(State(state): State<AppState>, ctx: Ctx) -> Result<Response, ConsoleError> {
    match enrolling(&state, &ctx).await {
        Ok(c) => enrol_form(&state, &c, None).await,
        Err(r) => Ok(r),
    }
}

#[derive(Deserialize)]
pub struct EnrolForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf_token: String,
}

#[derive(Template)]
#[template(path = "recovery.html")]
struct RecoveryPage {
    nav: Option<Nav>,
    codes: Vec<String>,
}

pub async fn enrol(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<EnrolForm>,
) -> Result<Response, ConsoleError> {
    let c = match enrolling(&state, &ctx).await {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    if let Err(r) = state.check_csrf(&c, &ctx, &f.csrf_token).await {
        return Ok(r);
    }
    match state.auth.confirm_enrolment(&c.user.id, &f.code, &ctx.ip, &ctx.user_agent).await? {
        Some((codes, token)) => {
            // Privilege change (enrolling → signed in): a new session token.
            let fresh = state.auth.current(&token, &ctx.ip, &ctx.user_agent).await.ok().and_then(Result::ok);
            let nav = fresh.as_ref().and_then(Nav::of);
            Ok(with_session_cookie(render(&RecoveryPage { nav, codes }), &token))
        }
        None => {
            enrol_form(&state, &c, Some("That code is not right. Check the time on your device and try again.")).await
        }
    }
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
}

/// Deletes the server session, expires the cookie, and asks the browser to
/// forget everything it kept for this site.
pub async fn logout(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<LogoutForm>,
) -> Result<Response, ConsoleError> {
    let Some(token) = ctx.cookie(COOKIE) else { return Ok(Redirect::to("/login").into_response()) };
    let c = match state.auth.current(token, &ctx.ip, &ctx.user_agent).await {
        Ok(Ok(c)) => c,
        Ok(Err(_)) => return Ok(Redirect::to("/login").into_response()),
        Err(e) => return Err(ConsoleError::internal(e)),
    };
    if let Err(r) = state.check_csrf(&c, &ctx, &f.csrf_token).await {
        return Ok(r);
    }
    state.auth.logout(&c, &ctx.ip, &ctx.user_agent).await.map_err(ConsoleError::internal)?;
    let mut res = Redirect::to("/login?signed_out=1").into_response();
    if let Ok(v) = HeaderValue::from_str(&clear_cookie(COOKIE)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res.headers_mut().insert("clear-site-data", HeaderValue::from_static("\"cache\", \"cookies\", \"storage\""));
    Ok(res)
}
