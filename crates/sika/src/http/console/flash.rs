//! "Saved." after every change: the handler redirects and leaves a short
//! code in a cookie; the next page shows its fixed sentence once and the
//! cookie is dropped. Only codes from the table below are ever shown, so
//! nothing a request carries reaches the page.

use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderValue, header};

use crate::auth::session::clear_cookie;

pub const COOKIE: &str = "__Host-sika-flash";

/// Every confirmation the console shows: (code, sentence).
const MESSAGES: &[(&str, &str)] = &[
    ("user_added", "User added. They set up two-factor sign-in at their first sign-in."),
    ("role_changed", "Role changed."),
    ("user_disabled", "User disabled; their session has ended."),
    ("user_enabled", "User enabled."),
    ("user_unlocked", "User unlocked."),
    ("totp_reset", "Two-factor sign-in reset; they enrol again at their next sign-in."),
    ("throttle_cleared", "Address cleared."),
    ("key_revoked", "API key revoked; calls with it are refused from now on."),
    ("mail_saved", "Mail choices saved."),
    ("password_changed", "Password changed; your other sessions have ended."),
    ("link_created", "Payment link created."),
    ("card_requested", "Card requested: an approver must approve its first load before it is made."),
    ("settings_saved", "Settings saved."),
    ("threshold_saved", "Approval threshold saved."),
    ("notification_replayed", "Notification queued to be sent again."),
    ("test_event_sent", "Test event queued; its delivery shows below."),
    ("webhook_replayed", "Webhook queued to be processed again."),
    ("payout_created", "Payout created; it waits for an approver who is not you."),
    ("payout_approved", "Approval recorded."),
    ("payout_rejected", "Payout rejected."),
    ("payout_cancelled", "Payout cancelled."),
    ("batch_approved", "Batch approved."),
    ("batch_rejected", "Batch rejected."),
    ("beneficiary_deleted", "Beneficiary deleted."),
];

/// The sentence for a code, if it is one of ours.
pub fn message(code: &str) -> Option<&'static str> {
    MESSAGES.iter().find(|(c, _)| *c == code).map(|(_, m)| *m)
}

/// A redirect to `to` that shows `code`'s sentence on arrival.
pub fn redirect(to: &str, code: &'static str) -> Response {
    debug_assert!(message(code).is_some(), "unknown flash code {code}");
    let mut res = Redirect::to(to).into_response();
    let cookie = format!("{COOKIE}={code}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=120");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// Drops the cookie once a page has shown it (unless this response sets a new one).
pub fn consume(res: &mut Response) {
    let sets_one = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.starts_with(&format!("{COOKIE}="))));
    if !sets_one && let Ok(v) = HeaderValue::from_str(&clear_cookie(COOKIE)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_codes_have_a_sentence() {
        assert!(message("user_added").is_some());
        assert_eq!(message("<script>"), None);
        let codes: std::collections::HashSet<_> = MESSAGES.iter().map(|(c, _)| c).collect();
        assert_eq!(codes.len(), MESSAGES.len(), "codes are unique");
    }
}
