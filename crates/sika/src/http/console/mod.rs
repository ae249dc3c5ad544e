//! The operators' web console: server-rendered, auto-escaped templates
//! (askama), Sika's own CSS, no script. Every route checks the session and
//! the role on the server; every state-changing form carries a CSRF token.

mod account;
mod admin;
mod audit_log;
mod authorized;
mod cards;
mod charts;
mod disputes;
pub mod flash;
mod forms;
mod guard;
mod mail;
mod paging;
mod payments;
mod payouts;
mod settings;
mod settlements;
mod signin;

use axum::Router;
use axum::routing::{get, post};

pub use guard::{Ctx, console_pages, origin_allowed, safe_next};

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(account::home))
        .route("/login", get(signin::login_page).post(signin::login))
        .route("/enrol", get(signin::enrol_page).post(signin::enrol))
        .route("/logout", post(signin::logout))
        .route("/account/password", get(account::password_page).post(account::change_password))
        .route("/account/mail", get(mail::choices).post(mail::save_choices))
        .route("/admin/mail", get(mail::outbox))
        .route("/admin/mail/{id}", get(mail::message))
        .route("/admin/users", get(admin::users_page).post(admin::create_user))
        .route("/admin/users/{id}/{action}", post(admin::user_action))
        .route("/admin/throttle/clear", post(admin::clear_throttle))
        .route("/admin/api-keys", get(admin::keys_page).post(admin::create_key))
        .route("/admin/api-keys/{id}/revoke", post(admin::revoke_key))
        .route("/audit", get(audit_log::audit_page))
        .route("/audit/{format}", get(audit_log::export))
        .route("/payments", get(payments::list).post(payments::create))
        .route("/disputes", get(disputes::list))
        .route("/disputes/{id}", get(disputes::detail))
        .route("/disputes/{id}/answer", post(disputes::prepare))
        .route("/disputes/{id}/answers/{reference}/approve", post(disputes::approve))
        .route("/disputes/{id}/answers/{reference}/reject", post(disputes::reject))
        .route("/disputes/{id}/answers/{reference}/evidence", get(disputes::evidence))
        .route("/settlements", get(settlements::list))
        .route("/settlements/export.csv", get(settlements::export_list))
        .route("/settlements/discrepancies", get(settlements::discrepancies))
        .route("/settlements/discrepancies.csv", get(settlements::export_discrepancies))
        .route("/settlements/{id}", get(settlements::detail))
        .route("/settlements/{id}/export.csv", get(settlements::export_lines))
        .route("/reports/money", get(settlements::report))
        .route("/payments/new", get(payments::new_link))
        .route("/payments/export.csv", get(payments::export))
        .route("/payments/{reference}", get(payments::detail))
        .route("/payments/{reference}/refund/confirm", post(payments::refund_confirm))
        .route("/payments/{reference}/refund", post(payments::refund))
        .route("/payouts", get(payouts::list).post(payouts::create))
        .route("/payouts/new", get(payouts::new_payout))
        .route("/payouts/batches", get(payouts::batches).post(payouts::upload_batch))
        .route("/payouts/batches/{id}", get(payouts::batch))
        .route("/payouts/batches/{id}/approve", post(payouts::approve_batch))
        .route("/payouts/batches/{id}/reject", post(payouts::reject_batch))
        .route("/payouts/export.csv", get(payouts::export))
        .route("/payouts/beneficiaries", get(payouts::beneficiaries))
        .route("/payouts/beneficiaries/{id}/delete", post(payouts::delete_beneficiary))
        .route("/payouts/{reference}", get(payouts::detail))
        .route("/payouts/{reference}/approve", post(payouts::approve))
        .route("/payouts/{reference}/reject", post(payouts::reject))
        .route("/payouts/{reference}/cancel", post(payouts::cancel))
        .route("/payouts/{reference}/reveal", post(payouts::reveal))
        .route("/payouts/{reference}/retry", post(payouts::retry))
        .route("/cards", get(cards::list).post(cards::create))
        .route("/cards/new", get(cards::new_card))
        .route("/cards/export.csv", get(cards::export))
        .route("/cards/{reference}", get(cards::detail))
        .route("/cards/{reference}/reveal", post(cards::reveal))
        .route("/cards/{reference}/fundings", post(cards::request_funding))
        .route("/cards/{reference}/fundings/{funding}/approve", post(cards::approve_funding))
        .route("/cards/{reference}/fundings/{funding}/reject", post(cards::reject_funding))
        .route("/cards/{reference}/{action}", post(cards::act))
        .route("/admin/settings", get(settings::settings).post(settings::save_settings))
        .route("/admin/settings/secret", post(settings::new_secret))
        .route("/admin/settings/thresholds", post(settings::save_threshold))
        .route("/admin/settings/time-zone", post(settings::save_zone))
        .route("/admin/notifications/{id}/replay", post(settings::replay))
        .route("/admin/notifications/test", post(settings::send_test))
        .route("/admin/settings/merchant", post(settings::save_merchant))
        .route("/admin/webhooks", get(settings::webhooks))
        .route("/admin/webhooks/{id}/replay", post(settings::replay_webhook))
}
