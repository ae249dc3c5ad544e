//! What every console form shares: errors shown beside their field, in plain
//! words, and the confirmation screen before a destructive action.

use askama::Template;
use axum::response::Response;

use super::guard::{Nav, render};
use crate::auth::session::Current;

/// Errors keyed by the field they belong to (`""` for the form as a whole).
#[derive(Debug, Default, Clone)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn of(field: &'static str, message: impl Into<String>) -> Self {
        FieldErrors(vec![(field, message.into())])
    }

    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    /// The message for `field`, if it has one.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// "must be …" → "Must be …." for a person.
pub fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>()).unwrap_or_default();
    let rest: String = chars.collect();
    if rest.ends_with('.') { format!("{first}{rest}") } else { format!("{first}{rest}.") }
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage<'a> {
    nav: Option<Nav>,
    csrf: String,
    heading: &'a str,
    consequences: &'a str,
    action: &'a str,
    button: &'a str,
    back: &'a str,
}

/// The second screen of a destructive action: what will happen, a button
/// that posts again with `confirmed=yes`, and a way back.
pub struct Confirm<'a> {
    pub heading: &'a str,
    pub consequences: &'a str,
    pub action: &'a str,
    pub button: &'a str,
    pub back: &'a str,
}

impl Confirm<'_> {
    pub fn page(&self, c: &Current) -> Response {
        render(&ConfirmPage {
            nav: Nav::of(c),
            csrf: c.csrf_token.clone(),
            heading: self.heading,
            consequences: self.consequences,
            action: self.action,
            button: self.button,
            back: self.back,
        })
    }
}
