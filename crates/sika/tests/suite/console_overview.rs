//! Home is the overview a payments team opens first, and Settings shows each
//! delivery to the shop: per currency what was collected and refunded, the
//! success rate, what waits, webhook and notification health, charts drawn
//! as SVG by Sika; the delivery log, a test event, and replaying any delivery.

use std::sync::{Arc, Mutex};

use crate::support::browser::Browser;
use crate::support::emulated::{Env, env};
use serde_json::json;
use sika::auth::Role;

async fn operator(e: &Env, role: Role, tag: &str) -> Browser {
    e.app.signed_in(role, &format!("{tag}@example.com")).await.1
}

#[tokio::test]
async fn the_overview_adds_up_per_currency_and_draws_its_charts() {
    let e = env().await;
    e.paid("ov-1", "1500.50").await;
    e.paid("ov-2", "2500").await;
    e.checkout("ov-3", "10", "NGN").await; // pending
    e.checkout("ov-4", "700", "KES").await;
    let id = e.pay("ov-4", "successful", json!({})).await;
    e.app.payments.verify_and_apply(id).await.unwrap();
    e.checkout("ov-5", "5", "KES").await;
    // A closed unpaid KES payment lowers KES's success rate: 1 paid of 2 closed.
    let store = &e.app.db.store;
    let note = sika::store::Notification { event: "checkout.failed", payload: json!({}) };
    assert!(store.mark_unpaid("ov-5", sika::domain::CheckoutStatus::Failed, None, "test", note).await.unwrap());

    let mut b = operator(&e, Role::Viewer, "watcher").await;
    let home = b.get("/").await;
    assert_eq!(home.status, 200);
    for shown in [
        r#"<div class="figure" id="collected-NGN">NGN 4,000.50</div>"#,
        "2 paid",
        r#"<div class="figure" id="success-NGN">100.0%</div>"#,
        r#"id="pending-NGN">1 pending</a>"#,
        r#"<div class="figure" id="collected-KES">KES 700.00</div>"#,
        r#"<div class="figure" id="success-KES">50.0%</div>"#,
        r#"id="period-today" aria-current="page""#,
        r#"<svg xmlns="http://www.w3.org/2000/svg""#,
        r#"role="img" aria-labelledby="chart-NGN-title chart-NGN-desc""#,
        "NGN 4,000.50 in all",
        r#"id="inbox-backlog">0</div>"#,
    ] {
        assert!(home.body.contains(shown), "{shown} in {}", home.body);
    }
    assert_eq!(home.body.matches("<rect class=\"bar\"").count(), 48, "24 hours for each of two currencies");
    assert!(!home.body.contains("<script"), "no script: the charts are drawn on the server");
    let week = b.get("/?period=7d").await;
    assert!(week.body.contains(r#"id="period-7d" aria-current="page""#));
    assert_eq!(week.body.matches("<rect class=\"bar\"").count(), 14, "7 days for each of two currencies");
    assert!(week.body.contains("NGN 4,000.50"));
    assert_eq!(b.get("/?period=%3Cscript%3E").await.status, 200, "an unknown period is today");

    // A role that reads no payments sees no figures.
    let mut auditor = operator(&e, Role::Auditor, "auditor").await;
    let theirs = auditor.get("/").await;
    assert!(!theirs.body.contains("collected-NGN") && theirs.body.contains(r#"href="/audit""#));
}

#[tokio::test]
async fn each_delivery_is_logged_a_test_event_can_be_sent_and_any_delivery_replayed() {
    let e = env().await;
    let got: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let replies = Arc::new(Mutex::new(vec![503u16].into_iter()));
    let g = got.clone();
    let shop = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: axum::http::HeaderMap, body: String| {
            let (g, replies) = (g.clone(), replies.clone());
            async move {
                let id = h.get("sika-event-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                g.lock().unwrap().push((id, body));
                axum::http::StatusCode::from_u16(replies.lock().unwrap().next().unwrap_or(200)).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook?token=not-for-the-log", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, shop).await.unwrap() });
    let cipher = sika::crypto::field::FieldCipher::new(e.app.auth.cipher_keys());
    sika::payments::notify::set_endpoint(&e.app.db.store, &cipher, &url, "whsec_test").await.unwrap();
    let notifier = sika::payments::notify::Notifier::new(cipher.clone(), true).unwrap();
    let store = &e.app.db.store;

    let mut admin = operator(&e, Role::Admin, "admin").await;
    let csrf = admin.get("/").await.csrf();
    let sent = admin.post("/admin/notifications/test", &[("csrf_token", &csrf)]).await;
    assert_eq!(sent.location.as_deref(), Some("/admin/settings#deliveries"));
    assert_eq!(notifier.deliver_due(store).await.unwrap(), 0, "the shop answered 503 first");
    let row = store.outbox_for(&format!("test-{}", got.lock().unwrap()[0].0)).await.unwrap().remove(0);
    store.outbox_failed(&row.id, 0, false).await.unwrap(); // the backoff passed
    assert_eq!(notifier.deliver_due(store).await.unwrap(), 1);

    let page = admin.get("/admin/settings").await;
    assert!(page.body.contains("Test event queued"), "a confirmation");
    let log = &page.body[page.body.find(r#"id="delivery-log""#).expect("a delivery log")..];
    assert!(log.contains("test.ping") && log.contains("the shop answered 503") && log.contains(">delivered<"));
    assert!(log.contains(" ms</td>"), "latency");
    assert!(!log.contains("not-for-the-log"), "the log shows no query string");
    let attempts = store.delivery_attempts(10).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!((attempts[0].status, attempts[1].status), (Some(200), Some(503)));

    // A delivered notification can be sent again, with the same event id.
    let replay = admin.post(&format!("/admin/notifications/{}/replay", row.id), &[("csrf_token", &csrf)]).await;
    assert_eq!(replay.location.as_deref(), Some("/admin/settings"));
    assert_eq!(notifier.deliver_due(store).await.unwrap(), 1);
    let seen = got.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].0, seen[1].0, "the same event id: the shop de-duplicates");
    let f = sika::store::AuditFilter { action: Some("notification.test".into()), ..Default::default() };
    assert_eq!(e.app.db.store.audit_search(&f, 10).await.unwrap().len(), 1, "audited");
    // Not an admin: refused.
    let mut viewer = operator(&e, Role::Viewer, "viewer").await;
    let vcsrf = viewer.get("/").await.csrf();
    assert_eq!(viewer.post("/admin/notifications/test", &[("csrf_token", &vcsrf)]).await.status, 403);
}
