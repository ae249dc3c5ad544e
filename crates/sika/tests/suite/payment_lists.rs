//! Finding payments, as a payments team and as the shop's backend do: pages
//! that never repeat or skip a row, totals, filters, one search box
//! (reference fragment, transaction id, exact customer e-mail), the CSV
//! export (formula-safe, audited), and payment links with a description,
//! their own expiry and a way back to the shop. On SQLite and PostgreSQL.

use crate::support;

use std::collections::HashSet;

use crate::support::browser::Browser;
use crate::support::emulated::{Env, env_on};
use serde_json::{Value, json};
use sika::audit::Actor;
use sika::auth::Role;

use crate::support::people::PASSWORD;

async fn create(e: &Env, reference: &str, currency: &str, email: &str, description: Option<&str>) {
    let mut body = json!({"reference": reference, "amount": "1000", "currency": currency,
                          "customer": {"email": email}});
    if let Some(d) = description {
        body["description"] = json!(d);
    }
    let res = e.create(body).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}

async fn list(e: &Env, query: &str) -> (u16, Value) {
    let res =
        e.app.client.get(e.app.url(&format!("/api/v1/checkouts?{query}"))).bearer_auth(&e.key).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

fn references(v: &Value) -> Vec<String> {
    v["checkouts"].as_array().unwrap().iter().map(|c| c["reference"].as_str().unwrap().to_string()).collect()
}

async fn lists_page_filter_and_search(db: support::TestDb) {
    let e = env_on(db).await;
    for i in 0..7 {
        let currency = if i % 2 == 0 { "NGN" } else { "KES" };
        create(&e, &format!("order-{i}"), currency, &format!("buyer{}@example.com", i % 3), None).await;
    }
    // `_` is a letter here, not a wildcard.
    create(&e, "a_b", "NGN", "x@example.com", None).await;
    create(&e, "axb", "NGN", "x@example.com", None).await;
    let paid_id = e.pay("order-2", "successful", json!({})).await;
    e.app.payments.verify_and_apply(paid_id).await.unwrap();

    // Pages of three: every checkout once, in order, with the same total on each page.
    let (mut seen, mut cursor, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let (status, page) = list(&e, &format!("limit=3&cursor={cursor}")).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"], 9);
        seen.extend(references(&page));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 9);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 9, "no row twice");
    assert!(references(&list(&e, "limit=1").await.1)[0] == seen[0], "newest first");

    let (_, paid) = list(&e, "status=paid").await;
    assert_eq!((references(&paid), paid["total"].as_i64()), (vec!["order-2".to_string()], Some(1)));
    assert_eq!(paid["checkouts"][0]["payment"]["card_last4"], "2950", "from the verify answer");
    assert_eq!(paid["checkouts"][0]["payment"]["card_brand"], "MASTERCARD");
    assert_eq!(list(&e, "currency=KES").await.1["total"], 3);
    assert_eq!(list(&e, "status=pending&currency=NGN").await.1["total"], 5);
    assert_eq!(references(&list(&e, "q=a_b").await.1), vec!["a_b"], "underscore is literal");
    assert_eq!(list(&e, "q=rder-").await.1["total"], 7, "a fragment of the reference");
    let by_email = list(&e, "q=Buyer1%40Example.com").await.1;
    assert_eq!(by_email["total"], 2, "exact e-mail, any case: {by_email}");
    assert_eq!(list(&e, "q=buyer1%40example.co").await.1["total"], 0, "exact, not a fragment");
    assert_eq!(references(&list(&e, &format!("q={paid_id}")).await.1), vec!["order-2"], "transaction id");
    assert_eq!(list(&e, "q=%27%20OR%201%3D1--").await.1["total"], 0, "SQL is only ever data");

    let today = sika::timefmt::date(sika::store::now_ms());
    let tomorrow = sika::timefmt::date(sika::store::now_ms() + 86_400_000);
    assert_eq!(list(&e, &format!("from={today}")).await.1["total"], 9);
    assert_eq!(list(&e, &format!("from={tomorrow}")).await.1["total"], 0);
    assert_eq!(list(&e, &format!("to={today}")).await.1["total"], 0, "`to` is exclusive");
    assert_eq!(list(&e, &format!("to={tomorrow}T00:00:00Z")).await.1["total"], 9);

    for bad in
        ["status=bogus", "currency=BTC", "from=2026-02-30", "to=yesterday", "cursor=junk", "limit=0", "limit=201"]
    {
        let (status, body) = list(&e, bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query", "{bad}");
    }
    let (_, payouts_key) = e.app.auth.create_api_key(&Actor::cli(), "payouts-only", "payouts").await.unwrap();
    let res = e.app.client.get(e.app.url("/api/v1/checkouts")).bearer_auth(payouts_key).send().await.unwrap();
    assert_eq!(res.status(), 403, "the key needs `checkouts` or `read`");
    assert_eq!(e.app.client.get(e.app.url("/api/v1/checkouts")).send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn the_api_lists_pages_filters_and_searches_sqlite() {
    lists_page_filter_and_search(support::sqlite().await).await;
}

#[tokio::test]
async fn the_api_lists_pages_filters_and_searches_postgres() {
    let Some(db) = support::postgres().await else { return };
    lists_page_filter_and_search(db).await;
}

async fn operator(e: &Env, role: Role, tag: &str, offset: i64) -> Browser {
    e.app.signed_in_at(role, &format!("{tag}@example.com"), offset).await.1
}

#[tokio::test]
async fn the_console_list_pages_past_fifty_and_exports_safe_csv() {
    let e = env_on(support::sqlite().await).await;
    for i in 0..53 {
        create(&e, &format!("bulk-{i:02}"), "NGN", "bulk@example.com", None).await;
    }
    create(&e, "formula-1", "NGN", "+cmd@example.com", Some("=HYPERLINK(\"https://evil.example\",\"x\")")).await;
    let id = e.pay("formula-1", "successful", json!({})).await;
    e.app.payments.verify_and_apply(id).await.unwrap();
    let mut b = operator(&e, Role::Viewer, "viewer", 0).await;

    let first = b.get("/payments").await;
    assert!(first.body.contains("54 payments match."), "a total, not a silent cap");
    assert_eq!(first.body.matches("<tr><td><a href=\"/payments/").count(), 50);
    assert!(first.body.contains("MASTERCARD •••• 2950"), "the method is shown");
    assert!(first.body.contains(r#"<span class="badge ok">Paid</span>"#));
    assert!(first.body.contains(r#"<td class="num">NGN 1,000.00</td>"#), "grouped, with the minor unit");
    let i = first.body.find(r#"id="next-page" rel="next""#).expect("a next page");
    let href = first.body[..i]
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    let second = b.get(&href).await;
    assert_eq!(second.body.matches("<tr><td><a href=\"/payments/").count(), 4);
    assert!(second.body.contains(r#"id="first-page""#) && !second.body.contains(r#"id="next-page""#));

    let filtered = b.get("/payments?status=paid&q=formula").await;
    assert!(filtered.body.contains("1 payment matches."), "{}", filtered.body);
    let bad = b.get("/payments?from=2026-02-30").await;
    assert_eq!(bad.status, 200);
    assert!(bad.body.contains("The from date must be a date such as 2026-11-29."));

    let csv = b.get("/payments/export.csv?status=paid").await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(csv.headers["content-disposition"].to_str().unwrap().contains("payments.csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 2, "{}", csv.body);
    assert!(lines[1].contains(r#""'=HYPERLINK(""https://evil.example"",""x"")""#), "{}", lines[1]);
    assert!(lines[1].contains(r#""'+cmd@example.com""#), "{}", lines[1]);
    assert!(lines[1].starts_with("\"formula-1\",\"paid\",\"1000\",\"NGN\""));
    let all = b.get("/payments/export.csv").await;
    assert_eq!(all.body.lines().count(), 55, "every match, not a page");
    let f = sika::store::AuditFilter { action: Some("payments.export".into()), ..Default::default() };
    let entries = e.app.db.store.audit_search(&f, 10).await.unwrap();
    assert_eq!(entries.len(), 2, "each export is audited");
}

#[tokio::test]
async fn a_payment_link_with_a_description_its_own_expiry_and_a_way_back() {
    let e = env_on(support::sqlite().await).await;
    let mut b = operator(&e, Role::Operator, "linker", 0).await;
    let form = b.get("/payments/new").await;
    assert!(form.body.contains(r#"id="description""#) && form.body.contains(r#"id="expires""#));
    assert!(form.body.contains(r#"id="redirect-url""#));
    let csrf = form.csrf();
    let typed = |reference: &'static str, redirect: &'static str, amount: &'static str| {
        vec![
            ("reference", reference),
            ("amount", amount),
            ("currency", "NGN"),
            ("email", "payer@example.com"),
            ("description", "Invoice 42 <b>bold</b>"),
            ("expires_in_minutes", "60"),
            ("redirect_url", redirect),
        ]
    };
    let mut bad = typed("link-1", "http://shop.example/back", "1,500.50");
    bad.push(("csrf_token", &csrf));
    let refused = b.post("/payments", &bad).await;
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains(r#"id="redirect_url-error""#), "beside the field: {}", refused.body);
    assert!(refused.body.contains(r#"value="Invoice 42 &#60;b&#62;bold&#60;/b&#62;""#), "kept, and inert");
    assert!(refused.body.contains(r#"value="1,500.50""#));
    let mut good = typed("link-1", "https://shop.example/back", "1,500.50");
    good.push(("csrf_token", &csrf));
    let made = b.post("/payments", &good).await;
    assert_eq!(made.location.as_deref(), Some("/payments/link-1"), "{}", made.body);
    let row = e.app.payments.checkout("link-1").await.unwrap().unwrap();
    assert_eq!(row.currency.format(row.amount), "1,500.50", "typed with a thousands separator");
    assert_eq!(row.description.as_deref(), Some("Invoice 42 <b>bold</b>"));
    assert_eq!(row.redirect_url.as_deref(), Some("https://shop.example/back"));
    let expires = row.link_expires_at.expect("its own expiry");
    assert_eq!(expires - row.created_at, 3_600_000);
    let page = b.get("/payments/link-1").await;
    assert!(page.body.contains("Link created") || page.body.contains("Payment link created."), "a confirmation");
    assert!(page.body.contains("Invoice 42 &#60;b&#62;bold&#60;/b&#62;"), "the description, inert");

    // An hour on (long before the default expiry), nothing paid: closed unpaid.
    sika::payments::reconcile_at(&e.app.payments, expires + 1_000).await.unwrap();
    assert_eq!(e.status("link-1").await, "cancelled");
}

#[tokio::test]
async fn a_payments_page_says_how_it_was_paid_who_made_it_and_what_happened() {
    let e = env_on(support::sqlite().await).await;
    e.checkout("detail-1", "1000", "NGN").await;
    let failed = e.pay("detail-1", "failed", json!({})).await;
    e.app.payments.verify_and_apply(failed).await.unwrap();
    let ok = e.pay("detail-1", "successful", json!({})).await;
    e.app.payments.verify_and_apply(ok).await.unwrap();
    let mut b = operator(&e, Role::Viewer, "reader", 0).await;
    let page = b.get("/payments/detail-1").await;
    assert_eq!(page.status, 200);
    for shown in [
        r#"<span class="badge ok" id="payment-status" data-status="paid">Paid</span>"#,
        "card · MASTERCARD •••• 2950",
        r#"<td class="num" id="fee">NGN 14.00</td>"#,
        r#"<td class="num" id="paid">NGN 1,000.00</td>"#,
        r#"<td class="num" id="net">NGN 1,000.00</td>"#,
        "Ada Buyer, buyer@example.com",
        "API key shop (sk_",
        "A payment attempt failed",
        &format!("transaction {failed}: Declined"),
        "Paid, verified with Flutterwave",
        r#"<td id="processor-response">Approved by Financial Institution</td>"#,
    ] {
        assert!(page.body.contains(shown), "{shown} in {}", page.body);
    }
    assert!(!page.body.contains("5531886652142950") && !page.body.contains("553188"), "never more of the card");
    assert!(!page.body.contains("needs_review") && !page.body.contains("Settled {"), "words, not codes");
}

#[tokio::test]
async fn the_customers_return_page_names_the_merchant_and_the_amount_and_offers_a_way_on() {
    let e = env_on(support::sqlite().await).await;
    e.app.db.store.set_setting("merchant.name", "Ada's <Shop>").await.unwrap();
    e.create(
        json!({"reference": "back-1", "amount": "1234.5", "currency": "NGN", "customer": {"email": "c@example.com"},
                    "description": "Two books", "redirect_url": "https://shop.example/done"}),
    )
    .await;
    let get = |q: &'static str| {
        let (client, url) = (e.app.client.clone(), e.app.url(&format!("/checkout/return?{q}")));
        async move {
            let r = client.get(url).send().await.unwrap();
            let csp = r.headers().get("content-security-policy").map(|v| v.to_str().unwrap().to_string());
            (csp, r.text().await.unwrap())
        }
    };
    // The customer closed Flutterwave's page: nothing changes, and they can pay now.
    let (csp, left) = get("tx_ref=back-1&status=cancelled").await;
    assert!(
        csp.is_some_and(|c| c.contains("default-src 'none'") || c.contains("default-src 'self'")),
        "strict headers"
    );
    for shown in [
        r#"<p class="merchant" id="merchant">Ada&#39;s &#60;Shop&#62;</p>"#,
        r#"<p class="amount" id="amount">NGN 1,234.50</p>"#,
        "Two books",
        "You left before paying",
        r#"id="pay-again""#,
        r#"name="viewport""#,
    ] {
        assert!(left.contains(shown), "{shown} in {left}");
    }
    assert_eq!(e.status("back-1").await, "pending");
    // Closed unpaid: said plainly, with the way back to the shop to try again.
    let note = sika::store::Notification { event: "checkout.cancelled", payload: json!({}) };
    let store = &e.app.db.store;
    assert!(store.mark_unpaid("back-1", sika::domain::CheckoutStatus::Cancelled, None, "test", note).await.unwrap());
    let (_, closed) = get("tx_ref=back-1").await;
    assert!(closed.contains("Payment cancelled") && closed.contains("try again"), "{closed}");
    assert!(!closed.contains("not confirmed yet") && !closed.contains(r#"id="pay-again""#));
    assert!(
        closed.contains(r#"id="back-to-shop" href="https://shop.example/done?reference=back-1&#38;status=cancelled""#)
    );
}

#[tokio::test]
async fn the_payouts_list_filters_by_currency_and_date_counts_and_treats_underscore_as_a_letter() {
    let e = env_on(support::sqlite().await).await;
    let (_, key) = e.app.auth.create_api_key(&Actor::cli(), "payer", "payouts").await.unwrap();
    for reference in ["po_1", "pox1", "po-2"] {
        let body = json!({"reference": reference, "amount": "100", "currency": "NGN", "bank_code": "044",
                          "account_number": "0690000032", "beneficiary_name": "Pastor Bright"});
        let r = e.app.client.post(e.app.url("/api/v1/payouts")).bearer_auth(&key).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }
    let mut b = operator(&e, Role::Viewer, "payout-reader", 0).await;
    let all = b.get("/payouts").await;
    assert!(all.body.contains("3 payouts match."), "{}", all.body);
    let one = b.get("/payouts?q=po_1").await;
    assert!(one.body.contains("1 payout matches.") && one.body.contains(">po_1<") && !one.body.contains(">pox1<"));
    assert!(b.get("/payouts?currency=KES").await.body.contains("0 payouts match."));
    let tomorrow = sika::timefmt::date(sika::store::now_ms() + 2 * 86_400_000);
    assert!(b.get(&format!("/payouts?from={tomorrow}")).await.body.contains("0 payouts match."));
    assert!(b.get("/payouts?to=2026-13-01").await.body.contains("The to date must be a date"));
    let csv = b.get("/payouts/export.csv?currency=NGN&q=po_1").await;
    assert_eq!(csv.body.lines().count(), 2, "{}", csv.body);
}

fn next_href(body: &str) -> Option<String> {
    let i = body.find(r#"id="next-page" rel="next""#)?;
    let href = body[..i].rsplit("href=\"").next()?.split('"').next()?;
    Some(href.replace("&amp;", "&").replace("&#38;", "&"))
}

/// Users and API keys page past fifty too: every row once, with a total, and
/// a user is found by their exact e-mail.
async fn users_and_keys_page(db: support::TestDb) {
    let e = env_on(db).await;
    let mut b = operator(&e, Role::Admin, "boss", 0).await;
    for i in 0..54 {
        let email = format!("staff{i:02}@example.com");
        e.app.auth.create_user(&Actor::cli(), &email, None, Role::Viewer, PASSWORD, false).await.unwrap();
        e.app.auth.create_api_key(&Actor::cli(), &format!("key-{i:02}"), "read").await.unwrap();
    }
    let users = e.app.auth.users().await.unwrap().len();
    let keys = e.app.db.store.api_keys().await.unwrap().len();
    for (path, total, row) in [
        ("/admin/users", format!("{users} users."), "Set role</button>"),
        ("/admin/api-keys", format!("{keys} keys, revoked ones included."), "<td><code>"),
    ] {
        let first = b.get(path).await;
        assert_eq!(first.status, 200);
        assert!(first.body.contains(&total), "{path}: a total: {}", first.body);
        assert_eq!(first.body.matches(row).count(), 50, "{path}: a page of fifty");
        let second = b.get(&next_href(&first.body).expect("a next page")).await;
        assert!(second.body.contains("Showing a later page."));
        assert_eq!(second.body.matches(row).count(), if path.contains("users") { users } else { keys } - 50);
        assert!(next_href(&second.body).is_none(), "{path}: no page after the last");
        // A cursor we never wrote is the first page, not an error.
        let odd = b.get(&format!("{path}?cursor=1.%27%20OR%201%3D1")).await;
        assert_eq!(odd.status, 200);
        assert_eq!(odd.body.matches(row).count(), 50);
    }
    let both: String = [b.get("/admin/users").await.body, {
        let first = b.get("/admin/users").await;
        b.get(&next_href(&first.body).unwrap()).await.body
    }]
    .concat();
    for i in 0..54 {
        assert_eq!(both.matches(&format!("staff{i:02}@example.com</td>")).count(), 1, "staff{i:02} once");
    }
    let found = b.get("/admin/users?email=Staff07%40Example.com").await;
    assert!(found.body.contains("1 user with that e-mail."), "{}", found.body);
    assert!(found.body.contains("staff07@example.com") && !found.body.contains("staff08@example.com"));
    let none = b.get("/admin/users?email=staff07%40example.co").await;
    assert!(none.body.contains("0 users with that e-mail."), "exact, not a fragment");
}

#[tokio::test]
async fn users_and_keys_page_past_fifty_sqlite() {
    users_and_keys_page(support::sqlite().await).await;
}

#[tokio::test]
async fn users_and_keys_page_past_fifty_postgres() {
    let Some(db) = support::postgres().await else { return };
    users_and_keys_page(db).await;
}
