//! Mail end to end: real `sika serve` instances (two on PostgreSQL) sending to a real SMTP server
//! on loopback that requires STARTTLS and AUTH. Approvers hear what waits (batched), admins hear
//! alerts (as each chose), every user hears about their own account; nothing sensitive is ever in
//! a mail; each mail arrives once; and a mail server that hangs holds up no payout.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sika::audit::Actor;
use sika::auth::Role;
use sika::secret::Secret;

use crate::support::{self, browser::Browser, cluster::Cluster, smtp, smtp::Smtp};

const PASSWORD: &str = support::people::PASSWORD;

struct Seeded {
    auth: sika::auth::Auth,
    api_key: String,
}

async fn seed(d: &Cluster) -> Seeded {
    let keys = sika::crypto::keyring::KeyRing::parse(&d.data_key).unwrap();
    let auth = sika::auth::Auth::new(
        d.store.clone(),
        keys,
        Secret::new(d.audit_key.clone()),
        Duration::from_secs(900),
        Duration::from_secs(3600),
    );
    let (_, api_key) = auth.create_api_key(&Actor::cli(), "mail shop", "checkouts,read,payouts").await.unwrap();
    Seeded { auth, api_key }
}

struct Person {
    id: String,
    email: String,
    secret: String,
}

async fn person(auth: &sika::auth::Auth, role: Role, email: &str, name: &str) -> Person {
    let c = auth.create_user(&Actor::cli(), email, Some(name), role, PASSWORD, true).await.unwrap();
    Person { id: c.id, email: email.into(), secret: c.totp_secret }
}

async fn payout(d: &Cluster, api_key: &str, reference: &str, amount: &str, account: &str, name: &str) {
    let body = json!({"reference": reference, "amount": amount, "currency": "NGN", "bank_code": "044",
                      "account_number": account, "beneficiary_name": name});
    let r = d.http.post(format!("{}/api/v1/payouts", d.base())).bearer_auth(api_key).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 202, "{reference}: {}", r.text().await.unwrap_or_default());
}

fn to(m: &str) -> String {
    smtp::header(m, "X-Test-Rcpt")
}

fn subject(m: &str) -> String {
    smtp::header(m, "Subject")
}

/// Everything the test seeded that must never be in a mail.
fn assert_nothing_sensitive(messages: &[String], secrets: &[&str], addresses: &[&str]) {
    for m in messages {
        for s in secrets {
            assert!(!m.contains(s), "a mail holds {s:?}:\n{m}");
        }
        // A user's own address is in the envelope and the To header; never in the text.
        let text = smtp::body(m);
        for a in addresses {
            assert!(!text.contains(a), "a mail's text holds the address {a:?}:\n{m}");
        }
        assert_eq!(smtp::header(m, "X-Test-Tls"), "yes", "sent over STARTTLS: {m}");
    }
}

async fn everyone_hears_what_concerns_them(database_url: &str, instances: usize) {
    let Some(smtp) = Smtp::start() else { return };
    let mut env: Vec<(String, String)> = smtp.env();
    env.push(("SIKA_LOGIN_IP_LIMIT".into(), "1000".into()));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut d = Cluster::prepare(database_url, instances, 20, &env_refs).await;
    let s = seed(&d).await;
    let quiet_admin = person(&s.auth, Role::Admin, "quiet-admin@shop.example", "Obinna Quiet").await;
    let admin = person(&s.auth, Role::Admin, "admin@shop.example", "Ngozi Admin").await;
    let approver = person(&s.auth, Role::Approver, "approver@shop.example", "Tunde Approver").await;
    let mut victims = Vec::new();
    for n in 0..3 {
        victims.push(person(&s.auth, Role::Viewer, &format!("viewer{n}@shop.example"), "Kemi Viewer").await);
    }
    d.start().await;

    // The quiet admin turns lockout alerts off in the console (and so hears of the sign-in).
    let mut b = Browser::new(&d.base(), d.http.clone());
    let code = support::browser::code(&quiet_admin.secret, 0);
    assert_eq!(b.login(&quiet_admin.email, PASSWORD, &code).await.status, 303);
    let page = b.get("/account/mail").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"mail-lockouts\""), "an admin may choose lockout alerts");
    assert!(page.body.contains("id=\"mail-security\" checked disabled"), "security mail cannot be turned off");
    assert!(!page.body.contains("id=\"mail-approvals\""), "an admin is not sent approval digests");
    let csrf = page.csrf();
    let mut form: Vec<(&str, &str)> = vec![("csrf_token", &csrf)];
    for t in sika::domain::mail::Topic::ALERTS {
        if t != sika::domain::mail::Topic::Lockouts {
            form.push(("on", t.as_str()));
        }
    }
    let saved = b.post("/account/mail", &form).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = b.get("/account/mail").await;
    assert!(page.body.contains("id=\"mail-lockouts\">") && page.body.contains("id=\"mail-dead_letters\" checked"));
    let sign_in = smtp
        .wait_for(Duration::from_secs(60), "about the quiet admin's sign-in", |m| {
            to(m) == quiet_admin.email && subject(m).contains("new sign-in")
        })
        .await;
    assert!(smtp::body(&sign_in).contains("127.0.0.1"), "{sign_in}");

    // A customer's checkout and two payouts with names and account numbers that must stay out of mail.
    let customer_email = format!("buyer-{}@customer.example", sika::crypto::random::hex_id());
    let body = json!({"reference": "mail-order-1", "amount": "2500.00", "currency": "NGN",
        "customer": {"email": customer_email, "name": "Chidinma Ezeoke"}});
    let r = d.http.post(format!("{}/api/v1/checkouts", d.base())).bearer_auth(&s.api_key).json(&body).send().await;
    assert!(r.unwrap().status().is_success());
    payout(&d, &s.api_key, "mail-payout-1", "1500.00", "0690000031", "Pastor Bright Akpan").await;
    let digest = smtp
        .wait_for(Duration::from_secs(60), "with the approver's digest", |m| {
            to(m) == approver.email && subject(m).contains("wait")
        })
        .await;
    assert_eq!(subject(&digest), "Sika: 1 item waits for your approval");
    let text = smtp::body(&digest);
    assert!(text.contains("- Payouts: 1 (NGN 1,500.00)"), "{text}");
    assert!(text.contains(&format!("{}/payouts?status=awaiting_approval", d.base())), "links to the queue: {text}");

    // A second payout soon after: batched into the next digest, not mailed at once.
    payout(&d, &s.api_key, "mail-payout-2", "700.00", "0690000032", "Amaka Beneficiary").await;
    tokio::time::sleep(Duration::from_secs(25)).await;
    let digests = smtp.messages().iter().filter(|m| to(m) == approver.email && subject(m).contains("wait")).count();
    assert_eq!(digests, 1, "at most one digest per SIKA_MAIL_DIGEST_INTERVAL: {:#?}", smtp.subjects());

    // Three accounts locked out within the hour: the admin hears, the admin who opted out does not.
    for v in &victims {
        let mut guess = Browser::new(&d.base(), d.http.clone());
        for _ in 0..sika::auth::LOCKOUT_THRESHOLD {
            guess.login(&v.email, "Wrong-Password-123!", "000000").await;
        }
    }
    let alert = smtp
        .wait_for(Duration::from_secs(60), "with the lockout alert", |m| {
            to(m) == admin.email && subject(m).contains("lockouts")
        })
        .await;
    assert!(smtp::body(&alert).contains("3 sign-in lockouts"), "{alert}");

    // A role changed: that user hears, whoever changed it.
    let viewer = sika::auth::User {
        id: victims[0].id.clone(),
        email: victims[0].email.clone(),
        name: None,
        role: Role::Viewer,
        disabled: false,
        totp_enrolled: true,
        locked_until: 0,
        created_at: 0,
    };
    s.auth.change_account(&Actor::cli(), &viewer, sika::auth::AccountChange::Role(Role::Operator)).await.unwrap();
    let changed = smtp
        .wait_for(Duration::from_secs(60), "about the role change", |m| {
            to(m) == victims[0].email && subject(m).contains("role")
        })
        .await;
    assert!(smtp::body(&changed).contains("from viewer to operator"), "{changed}");
    // Compose passes on every instance have run over all of it by now.
    tokio::time::sleep(Duration::from_secs(12)).await;

    let all = smtp.messages();
    assert!(
        !all.iter().any(|m| to(m) == quiet_admin.email && subject(m).contains("lockouts")),
        "the admin who turned lockout alerts off got none: {:#?}",
        smtp.subjects()
    );
    // Each mail once, however many instances composed and sent.
    let mut ids: Vec<String> = all.iter().map(|m| smtp::header(m, "Message-ID")).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "a mail arrived twice: {:#?}", smtp.subjects());
    let mut seen: Vec<(String, String)> = all.iter().map(|m| (to(m), subject(m))).collect();
    seen.retain(|(_, s)| !s.contains("new sign-in"));
    let n = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), n, "the same news twice: {:#?}", smtp.subjects());

    let session = b.session().unwrap_or_default();
    let user_addresses: Vec<&str> = [&quiet_admin, &admin, &approver]
        .iter()
        .map(|p| p.email.as_str())
        .chain(victims.iter().map(|v| v.email.as_str()))
        .collect();
    let secrets = [
        "0690000031",
        "0690000032",
        "Pastor Bright",
        "Amaka",
        "Chidinma",
        "Ezeoke",
        customer_email.as_str(),
        "Obinna",
        "Ngozi",
        "Tunde",
        "Kemi",
        s.api_key.as_str(),
        d.flw_key.as_str(),
        d.flw_hash.as_str(),
        d.data_key.as_str(),
        d.audit_key.as_str(),
        PASSWORD,
        quiet_admin.secret.as_str(),
        approver.secret.as_str(),
        session.as_str(),
    ];
    assert_nothing_sensitive(&all, &secrets, &user_addresses);

    // The admins' outbox shows what was sent.
    let outbox = b.get("/admin/mail").await;
    assert_eq!(outbox.status, 200);
    assert!(outbox.body.contains("Sika: 1 item waits for your approval") && outbox.body.contains(">sent<"));
    assert!(outbox.body.contains("STARTTLS required"), "says where mail goes: {}", outbox.body);
    let panics = d.stop();
    assert!(panics.is_empty(), "{panics:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn everyone_hears_what_concerns_them_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("mail.db").display());
    everyone_hears_what_concerns_them(&url, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn everyone_hears_what_concerns_them_from_two_instances_on_postgres() {
    let Some(url) = support::empty_postgres().await else { return };
    everyone_hears_what_concerns_them(&url, 2).await;
}

/// The mail server accepts connections and never answers (the worst way to be down) while
/// payouts are created, approved and paid: none waits for it, and the mail arrives once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_mail_server_holds_up_no_payout_and_its_mail_arrives_after() {
    let port = support::cluster::free_port();
    let Some(mut smtp) = Smtp::prepared(port) else { return };
    // Connections complete in the kernel's backlog; nothing ever reads or writes them.
    let hung = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("down.db").display());
    let env = smtp.env();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut d = Cluster::prepare(&url, 1, 21, &env_refs).await;
    let s = seed(&d).await;
    let approver = person(&s.auth, Role::Approver, "approver@shop.example", "Tunde Approver").await;
    d.start().await;
    d.control("/_emulator/faults", json!({"transfer_complete_after_ms": 200})).await;

    // One payout waits for approval (its digest is what the hung server holds)...
    payout(&d, &s.api_key, "down-waiting", "900.00", "0690000031", "Pastor Bright").await;
    let keys = sika::crypto::keyring::KeyRing::parse(&d.data_key).unwrap();
    let mut c = flutterwave::Config::new(
        url::Url::parse(&format!("{}/v3", d.emulator_url)).unwrap(),
        flutterwave::SecretKey::new(d.flw_key.clone()),
    );
    c.rate_per_second = 10;
    let payouts = sika::payouts::Payouts::new(
        d.store.clone(),
        sika::crypto::field::FieldCipher::new(keys),
        flutterwave::Client::new(c).unwrap(),
        s.auth.auditor.clone(),
    );
    let checker = support::checker("down-approver");
    // ...while others are created, approved and paid.
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let refs: Vec<String> = (0..5).map(|n| format!("down-paid-{n}")).collect();
    for r in &refs {
        let t = Instant::now();
        payout(&d, &s.api_key, r, "100.00", "0690000032", "Amaka Beneficiary").await;
        slowest = slowest.max(t.elapsed());
        let approved = payouts.approve(&Actor::cli(), r, &checker).await.unwrap();
        assert!(matches!(approved, sika::store::ApprovalWrite::Queued(_)), "{r}: {approved:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut done = 0;
        for r in &refs {
            let v: Value = d
                .http
                .get(format!("{}/api/v1/payouts/{r}", d.base()))
                .bearer_auth(&s.api_key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            done += usize::from(v["status"] == "successful");
        }
        if done == refs.len() {
            break;
        }
        assert!(Instant::now() < deadline, "payouts did not complete while the mail server hung");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    println!(
        "payouts paid in {:?} with the mail server hung; slowest create {:?} (mail send timeout {:?})",
        started.elapsed(),
        slowest,
        sika::mail::transport::SEND_TIMEOUT
    );
    // A create that waited on mail would take the send timeout at least.
    assert!(slowest < sika::mail::transport::SEND_TIMEOUT / 2, "a payout waited on the mail server: {slowest:?}");
    // The digest is written and has been tried against the hung server, not sent.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = d.store.mail_page(None, 50).await.unwrap();
        if let Some(m) = rows.iter().find(|m| m.user_id == approver.id && m.topic == "approvals") {
            assert_eq!(m.state, "pending");
            if m.last_error.as_deref().is_some_and(|e| e.contains("did not answer")) {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the digest was not tried against the hung server: {rows:#?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(smtp.messages().is_empty());

    // The server comes back on the same port: the mail arrives, once.
    drop(hung);
    smtp.run();
    let digest =
        smtp.wait_for(Duration::from_secs(150), "after the server came back", |m| to(m) == approver.email).await;
    assert!(smtp::body(&digest).contains("- Payouts: 1 (NGN 900.00)"), "{digest}");
    let rows = d.store.mail_page(None, 50).await.unwrap();
    let m = rows.iter().find(|m| m.user_id == approver.id && m.topic == "approvals").unwrap();
    assert_eq!(m.state, "sent");
    assert!(m.attempts >= 2, "tried, failed, tried again: {m:?}");
    let panics = d.stop();
    assert!(panics.is_empty(), "{panics:?}");
}

/// Every alert kind, composed from the same facts the metrics read (in-process, against the
/// emulator): each reaches every admin who wants it, once per occurrence however many passes run,
/// and an admin who turned one kind off does not get it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_alert_reaches_the_admins_who_want_it_once() {
    use sika::domain::mail::Topic;
    let e = crate::support::emulated::env().await;
    let store = e.app.db.store.clone();
    let hour = 3_600_000;
    // A chargeback, due in 48 hours.
    let tx = e.paid("alert-cb", "1000").await;
    let r = e
        .http
        .post(format!("{}/_emulator/chargebacks", e.emu.url()))
        .json(&json!({"transaction_id": tx, "webhook": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    e.app.payments.poll_chargebacks(5).await.unwrap();
    // A settlement line Sika has no payment for.
    e.paid("alert-st", "3000").await;
    let r = e.http.post(format!("{}/_emulator/settlements", e.emu.url())).json(&json!({"drill": "foreign_line"}));
    assert_eq!(r.send().await.unwrap().status(), 201);
    e.app.settlements.poll(sika::clock::now_ms(), 5).await.unwrap();
    // A transfer Flutterwave keeps at NEW.
    e.faults(json!({"transfers_stay_new": true})).await;
    let (_, key) = e.app.auth.create_api_key(&Actor::cli(), "alert-shop", "payouts").await.unwrap();
    let body = json!({"reference": "alert-po", "amount": "5000", "currency": "NGN", "bank_code": "044",
                      "account_number": "0690000032", "beneficiary_name": "Pastor Bright"});
    let r = e.app.client.post(e.app.url("/api/v1/payouts")).bearer_auth(&key).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let approved = e.app.payouts.approve(&Actor::cli(), "alert-po", &support::checker("c1")).await.unwrap();
    assert!(matches!(approved, sika::store::ApprovalWrite::Queued(_)), "{approved:?}");
    e.app.payouts.dispatch(10).await.unwrap();
    // A webhook given up on (its worker died each time), then one left waiting.
    e.checkout("alert-dead", "100", "NGN").await;
    let id = e.pay("alert-dead", "successful", json!({})).await;
    assert_eq!(e.webhook(id, "alert-dead", e.signed()).await, 200);
    store.inbox_claim(10, 1, "dying-worker").await.unwrap();
    assert_eq!(store.inbox_bury_exhausted(1, sika::clock::now_ms() + hour).await.unwrap(), 1);
    e.checkout("alert-wait", "100", "NGN").await;
    let id = e.pay("alert-wait", "successful", json!({})).await;
    assert_eq!(e.webhook(id, "alert-wait", e.signed()).await, 200);
    // The audit chain, tampered with.
    {
        use sqlx::Connection as _;
        let mut c = sqlx::SqliteConnection::connect(&e.app.db.url).await.unwrap();
        sqlx::raw_sql("DROP TRIGGER IF EXISTS audit_log_no_update").execute(&mut c).await.unwrap();
        sqlx::raw_sql("UPDATE audit_log SET outcome = 'failure' WHERE seq = 2").execute(&mut c).await.unwrap();
    }
    // A worker that stopped beating.
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut sup = sika::jobs::Supervisor::new(stop);
    let stuck = sika::jobs::Schedule {
        every: Duration::from_millis(5),
        timeout: Duration::from_secs(600),
        stall_after: Duration::from_millis(100),
    };
    sup.spawn("stuck-worker", stuck, || {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(600)).await;
            Ok(false)
        })
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let public = url::Url::parse(&e.app.base).unwrap();
    let mail = sika::mail::Mail::new(
        store.clone(),
        e.app.payments.cipher().clone(),
        e.app.auth.auditor.clone(),
        &public,
        sika::config::MailConfig::default(),
        sup.health(),
        e.app.settlements.clone(),
    );
    let keen = e.app.person(Role::Admin, "keen-admin@example.com").await;
    let choosy = e.app.person(Role::Admin, "choosy-admin@example.com").await;
    let off: Vec<Topic> = vec![Topic::ChargebackDue];
    mail.set_choices(&Actor::cli(), &choosy.id, &off).await.unwrap();
    for n in 0..sika::mail::LOCKOUTS_PER_HOUR {
        let a = Actor::anonymous("203.0.113.9", "guesser");
        e.app
            .auth
            .auditor
            .record(&a, "account.lockout", &format!("user:x{n}"), sika::audit::Outcome::Success, json!({}))
            .await
            .unwrap();
    }

    // Now: the lockouts of the last hour (and what does not depend on time). 37 hours on: the
    // chargeback is due within 12 hours, the transfer NEW for far longer than 6, the waiting
    // webhook older than 15 minutes.
    let now = sika::clock::now_ms();
    let at = now + 37 * hour;
    let first = mail.compose(now).await.unwrap() + mail.compose(at).await.unwrap();
    let again = mail.compose(at + 60_000).await.unwrap();
    assert_eq!(again, 0, "each occurrence once, however many passes");
    let rows = store.mail_page(None, 200).await.unwrap();
    let topics = |user: &str| {
        let mut t: Vec<String> = rows.iter().filter(|m| m.user_id == user).map(|m| m.topic.clone()).collect();
        t.sort();
        t.dedup();
        t
    };
    let mut every: Vec<String> = Topic::ALERTS.iter().map(|t| t.as_str().to_string()).collect();
    every.sort();
    assert_eq!(topics(&keen.id), every, "every alert kind reached the admin: {rows:#?}");
    let mut wanted = every.clone();
    wanted.retain(|t| t != "chargeback_due");
    assert_eq!(topics(&choosy.id), wanted, "the admin who turned chargeback alerts off got none");
    assert_eq!(first, rows.len());
    let transfer = rows.iter().find(|m| m.topic == "transfers_stuck").unwrap();
    assert!(transfer.body.contains("alert-po") && transfer.body.contains("NEW"), "{}", transfer.body);
    let worker = rows.iter().find(|m| m.topic == "worker_stalled").unwrap();
    assert!(worker.body.contains("stuck-worker"), "{}", worker.body);
    for m in &rows {
        for secret in ["0690000032", "Pastor Bright", "keen-admin@", "choosy-admin@", e.key.as_str(), key.as_str()] {
            assert!(!m.body.contains(secret) && !m.subject.contains(secret), "{secret} in {m:?}");
        }
    }
}
