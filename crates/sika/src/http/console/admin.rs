//! Administration: users (create, role, disable, re-enrol 2FA, unlock) and API keys.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::authorized::{Authorized, AuthorizedForm, ConsoleError, ManageApiKeys, ManageUsers, csrf_forms};
use super::flash;
use super::forms::{Confirm, FieldErrors};
use super::guard::{Ctx, Nav, render, time};
use super::paging::{PAGE, PageQuery, next_cursor};
use crate::audit::Outcome;
use crate::auth::AccountChange;
use crate::auth::{AuthError, Role};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::store::{Kept, now_ms};
use crate::timefmt::Stamp;

struct UserView {
    id: String,
    email: String,
    name: String,
    role: &'static str,
    enrolled: bool,
    disabled: bool,
    locked: bool,
    actions: Vec<(&'static str, &'static str)>,
    is_me: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    nav: Option<Nav>,
    csrf: String,
    users: Vec<UserView>,
    roles: Vec<&'static str>,
    throttled: Vec<(String, i64)>,
    form: NewUser,
    /// A refused change in the table (role, disable...).
    error: Option<String>,
    /// A refused new user, field by field.
    errors: FieldErrors,
    total: i64,
    /// The e-mail searched for, if any.
    email: String,
    later_page: bool,
    next: Option<String>,
}

async fn users_view(
    state: &AppState,
    c: &crate::auth::session::Current,
    ctx: &Ctx,
    form: NewUser,
    error: Option<String>,
    errors: FieldErrors,
    page: &PageQuery,
) -> Result<Response, ConsoleError> {
    let (mut users, total) = state.auth.users_page(page.email(), page.after(), PAGE + 1).await?;
    let next = next_cursor(&mut users, |u| (u.created_at, u.id.as_str()));
    // Reading e-mails is a read of sensitive data: audited, or not shown.
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    let details = json!({"count": users.len(), "searched": page.email().is_some()});
    if let Err(r) = state.audited(&actor, "users.view", "users", Outcome::Success, details).await {
        return Ok(r);
    }
    let throttled = state.auth.throttled_ips().await?;
    let now = now_ms();
    let users = users
        .into_iter()
        .map(|u| {
            let locked = u.locked_until > now;
            let mut actions =
                vec![if u.disabled { ("enable", "Enable") } else { ("disable", "Disable") }, ("reenrol", "Reset 2FA")];
            if locked {
                actions.push(("unlock", "Unlock"));
            }
            UserView {
                is_me: u.id == c.user.id,
                id: u.id,
                email: u.email,
                name: u.name.unwrap_or_default(),
                role: u.role.as_str(),
                enrolled: u.totp_enrolled,
                disabled: u.disabled,
                locked,
                actions,
            }
        })
        .collect();
    Ok(render(&UsersPage {
        nav: Nav::of(c),
        csrf: c.csrf_token.clone(),
        users,
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        throttled,
        // The password is never shown again.
        form: NewUser { password: String::new(), ..form },
        error,
        errors,
        total,
        email: page.email().unwrap_or_default().to_string(),
        later_page: page.after().is_some(),
        next,
    }))
}

#[derive(Deserialize)]
pub struct ClearThrottle {
    #[serde(default)]
    ip: String,
    #[serde(default)]
    csrf_token: String,
}

/// Lifts the sign-in throttle of one IP address.
pub async fn clear_throttle(
    State(state): State<AppState>,
    a: AuthorizedForm<ManageUsers, ClearThrottle>,
) -> Result<Response, ConsoleError> {
    let Ok(ip) = a.form.ip.trim().parse::<std::net::IpAddr>() else {
        return Err(AppError::bad_request("bad_ip", "Not an IP address.").into());
    };
    state.auth.clear_ip_throttle(&a.current.actor(&a.ctx.ip, &a.ctx.user_agent), ip).await?;
    Ok(flash::redirect("/admin/users", "throttle_cleared"))
}

pub async fn users_page(
    State(state): State<AppState>,
    a: Authorized<ManageUsers>,
    Query(page): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    users_view(&state, &a.current, &a.ctx, NewUser::default(), None, FieldErrors::default(), &page).await
}

/// What was typed into the new-user form (the role starts at the least privilege).
#[derive(Deserialize, Clone)]
pub struct NewUser {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
}

impl Default for NewUser {
    fn default() -> Self {
        NewUser {
            email: String::new(),
            name: String::new(),
            role: Role::Viewer.as_str().into(),
            password: String::new(),
            csrf_token: String::new(),
        }
    }
}

pub async fn create_user(
    State(state): State<AppState>,
    a: AuthorizedForm<ManageUsers, NewUser>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    let Some(role) = Role::parse(&f.role) else {
        let errors = FieldErrors::of("role", "Choose a role.");
        return users_view(&state, &c, &ctx, f.clone(), None, errors, &PageQuery::default()).await;
    };
    let name = Some(f.name.as_str()).filter(|n| !n.trim().is_empty());
    match state.auth.create_user(&c.actor(&ctx.ip, &ctx.user_agent), &f.email, name, role, &f.password, false).await {
        Ok(_) => Ok(flash::redirect("/admin/users", "user_added")),
        Err(AuthError::Invalid(field, msg)) => {
            let errors = FieldErrors::of(field, msg);
            users_view(&state, &c, &ctx, f.clone(), None, errors, &PageQuery::default()).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    role: String,
    /// `yes` once the confirmation screen was seen (destructive actions).
    #[serde(default)]
    confirmed: String,
    #[serde(default)]
    csrf_token: String,
}

/// What a destructive action on a user does, for its confirmation screen.
fn consequences(action: &str) -> Option<(&'static str, &'static str)> {
    match action {
        "disable" => {
            Some(("Disable", "They cannot sign in, and their session ends now. You can enable them again later."))
        }
        "reenrol" => Some((
            "Reset two-factor sign-in",
            "Their authenticator and recovery codes stop working and their session ends; they set up a new authenticator at their next sign-in.",
        )),
        _ => None,
    }
}

pub async fn user_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    a: AuthorizedForm<ManageUsers, ActionForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    let Some(target) = state.auth.user(&id).await? else { return Err(AppError::NotFound.into()) };
    let refuse = |why: &str| {
        let why = why.to_string();
        let (state, c, ctx) = (&state, &c, &ctx);
        async move {
            users_view(state, c, ctx, NewUser::default(), Some(why), FieldErrors::default(), &PageQuery::default())
                .await
        }
    };
    if let Some((verb, what)) = consequences(&action)
        && f.confirmed != "yes"
    {
        let heading = format!("{verb} {}?", target.email);
        let path = format!("/admin/users/{}/{action}", target.id);
        let confirm =
            Confirm { heading: &heading, consequences: what, action: &path, button: verb, back: "/admin/users" };
        return Ok(confirm.page(&c));
    }
    let actor = c.actor(&ctx.ip, &ctx.user_agent);
    const LAST_ADMIN: &str = "Sika needs at least one active admin: make someone else an admin first.";
    let (change, done) = match action.as_str() {
        "role" => {
            let Some(role) = Role::parse(&f.role) else { return refuse("Choose a role.").await };
            if role == target.role {
                // Nothing changes: no sessions end, no entry claims a change.
                return Ok(Redirect::to("/admin/users").into_response());
            }
            if target.id == c.user.id && role != Role::Admin {
                return refuse("You cannot remove your own admin role.").await;
            }
            (AccountChange::Role(role), "role_changed")
        }
        "disable" | "enable" => {
            if target.id == c.user.id {
                return refuse("You cannot disable yourself.").await;
            }
            let disable = action == "disable";
            (AccountChange::Disabled(disable), if disable { "user_disabled" } else { "user_enabled" })
        }
        "reenrol" => (AccountChange::ResetTotp, "totp_reset"),
        "unlock" => (AccountChange::Unlock, "user_unlocked"),
        _ => return Err(AppError::NotFound.into()),
    };
    match state.auth.change_account(&actor, &target, change).await? {
        Kept::Changed => Ok(flash::redirect("/admin/users", done)),
        Kept::LastAdmin => refuse(LAST_ADMIN).await,
        Kept::NotFound => refuse("This user no longer exists.").await,
    }
}

struct KeyView {
    id: String,
    name: String,
    scopes: String,
    created: Stamp,
    last_used: Option<Stamp>,
    revoked: bool,
}

#[derive(Template)]
#[template(path = "apikeys.html")]
struct KeysPage {
    nav: Option<Nav>,
    csrf: String,
    keys: Vec<KeyView>,
    scopes: &'static [&'static str],
    form: NewKey,
    errors: FieldErrors,
    total: i64,
    later_page: bool,
    next: Option<String>,
}

async fn keys_view(
    state: &AppState,
    c: &crate::auth::session::Current,
    form: NewKey,
    errors: FieldErrors,
    page: &PageQuery,
) -> Result<Response, ConsoleError> {
    let (mut keys, total) = state.auth.api_keys_page(page.after(), PAGE + 1).await?;
    let next = next_cursor(&mut keys, |k| (k.created_at, k.id.as_str()));
    let keys = keys
        .into_iter()
        .map(|k| KeyView {
            id: k.id,
            name: k.name,
            scopes: k.scopes,
            created: time(k.created_at),
            last_used: k.last_used_at.map(time),
            revoked: k.revoked_at.is_some(),
        })
        .collect();
    Ok(render(&KeysPage {
        nav: Nav::of(c),
        csrf: c.csrf_token.clone(),
        keys,
        scopes: &crate::auth::apikeys::SCOPES,
        form,
        errors,
        total,
        later_page: page.after().is_some(),
        next,
    }))
}

pub async fn keys_page(
    State(state): State<AppState>,
    a: Authorized<ManageApiKeys>,
    Query(page): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    keys_view(&state, &a.current, NewKey::default(), FieldErrors::default(), &page).await
}

/// The new-key form: one checkbox per scope.
#[derive(Deserialize, Default, Clone)]
pub struct NewKey {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope_checkouts: Option<String>,
    #[serde(default)]
    scope_payouts: Option<String>,
    #[serde(default)]
    scope_cards: Option<String>,
    #[serde(default)]
    scope_read: Option<String>,
    #[serde(default)]
    csrf_token: String,
}

impl NewKey {
    /// The ticked scopes, as `checkouts,read`.
    fn scopes(&self) -> String {
        let ticked = [
            ("checkouts", &self.scope_checkouts),
            ("payouts", &self.scope_payouts),
            ("cards", &self.scope_cards),
            ("read", &self.scope_read),
        ];
        ticked.iter().filter(|(_, on)| on.is_some()).map(|(s, _)| *s).collect::<Vec<_>>().join(",")
    }

    pub fn has(&self, scope: &str) -> bool {
        self.scopes().split(',').any(|s| s == scope)
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct Message {
    nav: Option<Nav>,
    heading: &'static str,
    message: &'static str,
    secret: Option<String>,
    back: &'static str,
}

pub async fn create_key(
    State(state): State<AppState>,
    a: AuthorizedForm<ManageApiKeys, NewKey>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    match state.auth.create_api_key(&c.actor(&ctx.ip, &ctx.user_agent), &f.name, &f.scopes()).await {
        Ok((_, key)) => Ok(render(&Message {
            nav: Nav::of(&c),
            heading: "API key created",
            message: "Copy this key now: it is shown only once, and only its hash is stored.",
            secret: Some(key),
            back: "/admin/api-keys",
        })),
        Err(AuthError::Invalid(field, msg)) => {
            keys_view(&state, &c, f.clone(), FieldErrors::of(field, msg), &PageQuery::default()).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn revoke_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
    a: AuthorizedForm<ManageApiKeys, ActionForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form: f, .. } = a;
    if f.confirmed != "yes" {
        let Some(key) = state.auth.api_keys().await?.into_iter().find(|k| k.id == id) else {
            return Err(AppError::NotFound.into());
        };
        let heading = format!("Revoke the API key {} ({})?", key.name, key.id);
        let path = format!("/admin/api-keys/{}/revoke", key.id);
        let what =
            "Every call made with this key is refused from now on. This cannot be undone: the shop needs a new key.";
        return Ok(Confirm {
            heading: &heading,
            consequences: what,
            action: &path,
            button: "Revoke",
            back: "/admin/api-keys",
        }
        .page(&c));
    }
    state.auth.revoke_api_key(&c.actor(&ctx.ip, &ctx.user_agent), &id).await?;
    Ok(flash::redirect("/admin/api-keys", "key_revoked"))
}

csrf_forms!(ClearThrottle, NewUser, ActionForm, NewKey);
