//! Mail in the console: each user chooses what they receive (`/account/mail`); admins see the
//! outbox, what was sent and what failed (`/admin/mail`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::authorized::{Authorized, AuthorizedForm, ConsoleError, CsrfForm, ManageSettings, SignedIn};
use super::flash;
use super::guard::{Nav, render};
use crate::domain::mail::Topic;
use crate::http::AppState;
use crate::timefmt::Stamp;

pub struct Choice {
    pub name: &'static str,
    pub describe: &'static str,
    pub on: bool,
    pub optional: bool,
}

#[derive(Template)]
#[template(path = "mail_choices.html")]
struct ChoicesPage {
    nav: Option<Nav>,
    csrf: String,
    choices: Vec<Choice>,
    destination: String,
}

pub async fn choices(State(state): State<AppState>, a: Authorized<SignedIn>) -> Result<Response, ConsoleError> {
    let c = &a.current;
    let choices = state
        .mail
        .choices(&c.user.id, c.role().as_str())
        .await?
        .into_iter()
        .map(|(t, on)| Choice { name: t.as_str(), describe: t.describe(), on, optional: t.optional() })
        .collect();
    let destination = state.mail.transport().destination();
    Ok(render(&ChoicesPage { nav: Nav::of(c), csrf: c.csrf_token.clone(), choices, destination }))
}

/// The checkboxes as sent: `on=<topic>` once for each topic left on, and the token.
#[derive(Deserialize)]
#[serde(transparent)]
pub struct ChoicesForm {
    pairs: Vec<(String, String)>,
}

impl CsrfForm for ChoicesForm {
    fn csrf_token(&self) -> &str {
        self.pairs.iter().find(|(k, _)| k == "csrf_token").map_or("", |(_, v)| v.as_str())
    }
}

pub async fn save_choices(
    State(state): State<AppState>,
    a: AuthorizedForm<SignedIn, ChoicesForm>,
) -> Result<Response, ConsoleError> {
    let AuthorizedForm { current: c, ctx, form, .. } = a;
    let on: Vec<Topic> = form.pairs.iter().filter(|(k, _)| k == "on").filter_map(|(_, v)| Topic::parse(v)).collect();
    // What the role receives and was not ticked is off; anything else sent is ignored.
    let off: Vec<Topic> =
        Topic::ALL.into_iter().filter(|t| t.reaches(c.role().as_str()) && t.optional() && !on.contains(t)).collect();
    state.mail.set_choices(&c.actor(&ctx.ip, &ctx.user_agent), &c.user.id, &off).await?;
    Ok(flash::redirect("/account/mail", "mail_saved"))
}

pub struct MailView {
    pub id: String,
    pub created: Stamp,
    pub reader: String,
    pub topic: String,
    pub subject: String,
    pub state: String,
    pub attempts: i64,
    pub error: String,
}

impl MailView {
    fn of(m: crate::store::MailRow, readers: &std::collections::HashMap<String, String>) -> Self {
        MailView {
            reader: readers.get(&m.user_id).cloned().unwrap_or_else(|| "(removed user)".into()),
            created: Stamp::new(m.created_at),
            topic: m.topic,
            subject: m.subject,
            state: m.state,
            attempts: m.attempts,
            error: m.last_error.unwrap_or_default(),
            id: m.id,
        }
    }
}

/// Each user's address by id, for showing whom a mail is for.
async fn readers(state: &AppState) -> Result<std::collections::HashMap<String, String>, ConsoleError> {
    Ok(state.auth.users().await?.into_iter().map(|u| (u.id, u.email)).collect())
}

#[derive(Template)]
#[template(path = "mail_outbox.html")]
struct OutboxPage {
    nav: Option<Nav>,
    rows: Vec<MailView>,
    destination: String,
    approvers: usize,
    admins: usize,
    next: Option<i64>,
}

#[derive(Deserialize, Default)]
pub struct OutboxQuery {
    #[serde(default)]
    before: Option<i64>,
}

const PAGE: i64 = 100;

pub async fn outbox(
    State(state): State<AppState>,
    a: Authorized<ManageSettings>,
    Query(q): Query<OutboxQuery>,
) -> Result<Response, ConsoleError> {
    let rows = state.mail.outbox(q.before, PAGE).await?;
    let next = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| r.created_at)).flatten();
    let readers = readers(&state).await?;
    let rows = rows.into_iter().map(|m| MailView::of(m, &readers)).collect();
    let reach = state.mail.reach().await?;
    Ok(render(&OutboxPage {
        nav: Nav::of(&a.current),
        rows,
        destination: reach.destination,
        approvers: reach.approvers,
        admins: reach.admins,
        next,
    }))
}

#[derive(Template)]
#[template(path = "mail_message.html")]
struct MessagePage {
    nav: Option<Nav>,
    mail: MailView,
    body: String,
    file: Option<String>,
}

pub async fn message(
    State(state): State<AppState>,
    a: Authorized<ManageSettings>,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let Some(m) = state.mail.one(&id).await? else {
        return Err(ConsoleError::App(crate::http::error::AppError::NotFound));
    };
    let readers = readers(&state).await?;
    let file = match state.mail.transport() {
        crate::mail::Transport::Dir(d) if m.state == "sent" => {
            Some(d.join(format!("{}.eml", m.id)).display().to_string())
        }
        _ => None,
    };
    let body = m.body.clone();
    let mail = MailView::of(m, &readers);
    Ok(render(&MessagePage { nav: Nav::of(&a.current), mail, body, file }))
}
