//! Property and fuzz tests, on stable Rust, for everything that parses
//! outside input: webhook signatures, API bodies, money amounts, the bulk
//! payout CSV, console query strings and forms, dates and cursors, and the
//! configuration. Each property says what must hold for any input (no
//! panic, and the rule the parser enforces); runs are bounded by proptest's
//! case count (256 a property; `PROPTEST_CASES` raises it locally). A
//! failing input is kept by proptest under `proptest-regressions/` and, once
//! fixed, belongs in a named regression test.

use crate::support;

use proptest::prelude::*;
use rust_decimal::Decimal;
use sika::domain::Currency;

fn max() -> Decimal {
    Decimal::new(100_000_000, 0)
}

proptest! {
    /// Only the configured secret (as verif-hash, or its HMAC as the
    /// signature) is valid; anything else is refused, never a panic.
    #[test]
    fn webhook_signatures_accept_only_the_secret(
        secret in "[!-~]{16,64}",
        verif in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80)),
        sig in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80)),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        use flutterwave::webhook::{SignatureCheck, hmac_signature, verify_signature};
        let check = verify_signature(Some(&secret), verif.as_deref(), sig.as_deref(), &body);
        let knows = verif.as_deref() == Some(secret.as_bytes())
            || sig.as_deref() == Some(hmac_signature(&secret, &body).as_bytes())
            || sig.as_deref() == Some(secret.as_bytes());
        prop_assert_eq!(check == SignatureCheck::Valid, knows);
        prop_assert_eq!(verify_signature(None, verif.as_deref(), sig.as_deref(), &body), SignatureCheck::NoSecretConfigured);
    }

    /// Any JSON a shop could send as a checkout either validates into a
    /// checkout whose amount fits its currency, or is refused with a field.
    #[test]
    fn checkout_bodies_validate_or_name_a_field(
        reference in "[ -~]{0,70}",
        amount in prop_oneof![Just(serde_json::json!(1500.5)), "[-0-9.eE+]{1,20}".prop_map(serde_json::Value::from), any::<f64>().prop_map(serde_json::Value::from), any::<i64>().prop_map(serde_json::Value::from)],
        currency in "[A-Za-z]{0,4}",
        email in "[ -~]{0,60}",
        extra in proptest::option::of("[ -~]{0,40}"),
    ) {
        let body = serde_json::json!({"reference": reference, "amount": amount, "currency": currency,
            "customer": {"email": email, "name": extra.clone()}, "redirect_url": extra, "description": "d"});
        if let Ok(req) = serde_json::from_value::<sika::domain::checkout::CheckoutRequest>(body) {
            match req.validate(max()) {
                Ok(c) => {
                    let (amount, currency) = (c.price.amount(), c.price.currency());
                    prop_assert!(amount > Decimal::ZERO && amount <= max());
                    prop_assert!(amount.scale() <= currency.minor_units());
                }
                Err(e) => prop_assert!(!e.field.is_empty() && !e.message.is_empty()),
            }
        }
    }

    /// Payout bodies likewise, whatever their shape.
    #[test]
    fn payout_bodies_validate_or_name_a_field(
        reference in "[ -~]{0,70}",
        amount in "[0-9.]{1,16}",
        currency in "[A-Z]{3}",
        bank in "[ -~]{0,12}",
        account in "[ -~]{0,24}",
        name in proptest::option::of("[ -~]{0,120}"),
        narration in proptest::option::of("[ -~]{0,120}"),
    ) {
        let body = serde_json::json!({"reference": reference, "amount": amount, "currency": currency,
            "bank_code": bank, "account_number": account, "beneficiary_name": name, "narration": narration});
        if let Ok(req) = serde_json::from_value::<sika::domain::payout::PayoutRequest>(body)
            && let Err(e) = req.validate(max())
        {
            prop_assert!(!e.field.is_empty() && !e.message.is_empty());
        }
    }

    /// Money as people type it: parsed exactly or refused, and never more
    /// minor digits than the currency has.
    #[test]
    fn amounts_parse_exactly_or_not_at_all(text in "[-+0-9.,eE ]{0,24}", code in "[A-Z]{3}") {
        if let Some(a) = flutterwave::Amount::parse(&text) {
            prop_assert_eq!(a.decimal().to_string().parse::<Decimal>().unwrap(), a.decimal());
            if let Some(c) = Currency::parse(&code)
                && let Ok(ok) = c.check_amount(a.decimal(), max())
            {
                prop_assert!(ok.scale() <= c.minor_units() && ok > Decimal::ZERO);
            }
        }
    }

    /// The bulk-payout CSV: any bytes are either rows that each validated or
    /// a list of row errors; never a panic, never both.
    #[test]
    fn payout_csv_is_rows_or_row_errors(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        match sika::domain::payout_csv::parse(&bytes, max()) {
            Ok(rows) => prop_assert!(rows.iter().all(|r| r.money.amount() > Decimal::ZERO)),
            Err(errors) => prop_assert!(!errors.is_empty()),
        }
    }

    #[test]
    fn payout_csv_lines_that_look_right(lines in proptest::collection::vec(("[a-z0-9_-]{0,20}", "[0-9.]{0,8}", "(NGN|KES|GHS|XXX)", "[0-9]{0,4}", "[0-9+]{0,14}", "[ -~&&[^,\"]]{0,20}"), 0..6)) {
        let mut text = String::from("reference,amount,currency,bank_code,account_number,beneficiary_name\n");
        for (r, a, c, b, n, name) in &lines {
            text.push_str(&format!("{r},{a},{c},{b},{n},{name}\n"));
        }
        let _ = sika::domain::payout_csv::parse(text.as_bytes(), max());
    }

    /// Dates, instants, durations and list cursors from query strings and
    /// the environment: parsed or refused, never a panic.
    #[test]
    fn dates_durations_and_cursors_never_panic(s in "[ -~]{0,40}") {
        if let Some(ms) = sika::timefmt::parse_date(&s) {
            prop_assert_eq!(ms % 86_400_000, 0, "a date is a UTC midnight");
        }
        let _ = sika::timefmt::parse_instant(&s);
        if let Ok(d) = sika::config::parse_duration(&s) {
            prop_assert!(d.as_secs() > 0);
        }
        if let Some(c) = sika::payments::list::Cursor::parse(&s) {
            prop_assert_eq!(sika::payments::list::Cursor::parse(&c.encode()), Some(c));
        }
        let _ = sika::payments::list::clean_search(&s);
    }

    /// The configuration: any value in any variable is accepted or refused
    /// with one sentence naming a variable; a secret never appears in it.
    #[test]
    fn any_configuration_value_is_accepted_or_refused_by_name(
        name in prop::sample::select(vec!["SIKA_LISTEN", "SIKA_PUBLIC_URL", "SIKA_SESSION_IDLE_TIMEOUT",
            "SIKA_SESSION_ABSOLUTE_TIMEOUT", "SIKA_MAX_BODY_BYTES", "FLW_BASE_URL", "FLW_RATE_PER_SECOND",
            "SIKA_METRICS_LISTEN", "SIKA_MAX_CONNECTIONS_PER_IP", "SIKA_NOTIFY_ALLOW_LOOPBACK", "SIKA_DATA_KEY",
            "SIKA_PAYOUT_RESEND_AFTER", "SIKA_LOGIN_IP_LIMIT"]),
        value in "[ -~]{0,60}",
    ) {
        let secret = sika::crypto::random::token();
        // A real owner-only key file, so every variable after it is parsed too.
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        sika::fsutil::write_private(&key, b"not parsed by Config::load").unwrap();
        let key = key.display().to_string();
        let env = |k: &str| -> Option<String> {
            if k == name { return Some(value.clone()) }
            match k {
                "SIKA_TLS_CERT_FILE" => Some("/nonexistent/cert.pem".into()),
                "SIKA_TLS_KEY_FILE" => Some(key.clone()),
                "SIKA_DATA_KEY" => Some(sika::crypto::keyring::KeyRing::generate_text("k1")),
                "SIKA_AUDIT_KEY" | "FLW_SECRET_HASH" => Some(secret.clone()),
                "FLW_SECRET_KEY" => Some(format!("FLWSECK_TEST-{secret}")),
                _ => None,
            }
        };
        match sika::config::Config::load(&env) {
            Err(e) => {
                prop_assert!(e.0.contains(name), "the refusal names {}: {}", name, e.0);
                prop_assert!(!e.0.contains(&secret));
            }
            Ok(c) => prop_assert!(!format!("{c:?}").contains(&secret), "the configuration's rendering masks secrets"),
        }
    }
}

/// Console forms and query strings through the real router, signed in as
/// the roles that may post them (with a valid CSRF token, so the form is
/// parsed and validated): random fields and values get a refusal or a
/// redirect, never a 500; the same pairs as query strings on the lists too.
#[tokio::test]
async fn console_forms_and_queries_never_fail_on_random_input() {
    use proptest::strategy::ValueTree as _;
    use proptest::test_runner::TestRunner;
    use sika::auth::Role;
    use support::browser::{Browser, code};
    let app = support::spawn_app().await;
    let password = "Corr3ct-Horse!Battery";
    let mut signed_in = Vec::new();
    for (email, role, paths) in [
        (
            "admin@example.com",
            Role::Admin,
            vec![
                "/admin/users",
                "/admin/api-keys",
                "/admin/settings/time-zone",
                "/admin/settings/merchant",
                "/admin/settings",
            ],
        ),
        ("op@example.com", Role::Operator, vec!["/payments", "/payouts", "/account/password"]),
    ] {
        let u = app.auth.create_user(&sika::audit::Actor::cli(), email, None, role, password, true).await.unwrap();
        let mut b = Browser::new(&app.base, app.client.clone());
        assert_eq!(b.login(email, password, &code(&u.totp_secret, 0)).await.status, 303);
        let csrf = b.get("/").await.csrf();
        signed_in.push((b, csrf, paths));
    }
    let mut runner = TestRunner::deterministic();
    let pairs = proptest::collection::vec(
        (
            prop_oneof![
                "[a-z_]{1,14}",
                Just("amount".to_string()),
                Just("email".to_string()),
                Just("role".to_string()),
                Just("reference".to_string()),
                Just("currency".to_string()),
                Just("zone".to_string())
            ],
            "[ -~\u{80}-\u{10FFFF}]{0,40}",
        ),
        0..7,
    );
    for round in 0..48 {
        let pairs: Vec<(String, String)> = pairs.new_tree(&mut runner).unwrap().current();
        for (b, csrf, paths) in signed_in.iter_mut() {
            let path = paths[round % paths.len()];
            let mut form: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            form.push(("csrf_token", csrf.as_str()));
            let page = b.post(path, &form).await;
            assert!(page.status < 500, "{path} {pairs:?}: {}", page.status);
            let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
            for get in ["/payments", "/payouts", "/audit", "/admin/users", "/checkout/return", "/"] {
                let page = b.get(&format!("{get}?{query}")).await;
                assert!(page.status < 500, "{get}?{query}: {}", page.status);
            }
        }
    }
}
