//! The home page and the operator's own password.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::flash;
use super::forms::FieldErrors;
use super::guard::{Ctx, Nav, internal, render};
use crate::auth::AuthError;
use crate::http::AppState;

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    nav: Option<Nav>,
    email: String,
    role: String,
}

pub async fn home(State(state): State<AppState>, ctx: Ctx) -> Response {
    match state.signed_in(&ctx).await {
        Ok(c) => render(&Home { nav: Nav::of(&c), email: c.user.email.clone(), role: c.role().as_str().into() }),
        Err(r) => r,
    }
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    nav: Option<Nav>,
    csrf: String,
    errors: FieldErrors,
}

pub async fn password_page(State(state): State<AppState>, ctx: Ctx) -> Response {
    match state.signed_in(&ctx).await {
        Ok(c) => render(&PasswordPage { nav: Nav::of(&c), csrf: c.csrf_token.clone(), errors: FieldErrors::default() }),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    csrf_token: String,
}

pub async fn change_password(State(state): State<AppState>, ctx: Ctx, Form(f): Form<PasswordForm>) -> Response {
    let c = match state.signed_in(&ctx).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = state.check_csrf(&c, &ctx, &f.csrf_token).await {
        return r;
    }
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    match state.auth.change_password(&actor, &c.user.id, &f.current, &f.new_password, &c.token_hash).await {
        Ok(()) => flash::redirect("/", "password_changed"),
        Err(AuthError::Invalid(field, msg)) => {
            render(&PasswordPage { nav: Nav::of(&c), csrf: c.csrf_token.clone(), errors: FieldErrors::of(field, msg) })
        }
        Err(e) => internal(e),
    }
}
