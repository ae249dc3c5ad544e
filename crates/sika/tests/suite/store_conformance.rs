//! The store conformance suite: every test runs against SQLite and against
//! PostgreSQL (`SIKA_TEST_POSTGRES_URL`), each on a fresh database.

use crate::support;

use sika::store::{Backend, MIGRATIONS, Store, applied_versions};

/// Declares `name` once; it runs as `sqlite::name` and `postgres::name`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { let db = super::support::sqlite().await; super::$name(&db.store).await; })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() {
                let Some(db) = super::support::postgres().await else { return };
                super::$name(&db.store).await;
            })*
        }
    };
}

conformance!(
    migrations_are_recorded_and_idempotent,
    values_round_trip_verbatim_and_sql_stays_sql,
    a_unique_insert_has_exactly_one_winner_under_concurrency,
    a_rolled_back_transaction_leaves_nothing,
    session_settings_are_applied,
    lockouts_double_up_to_a_cap_and_start_over_after_a_sign_in,
    concurrent_attempts_reserve_at_most_the_limit,
    expired_sessions_are_purged,
);

async fn migrations_are_recorded_and_idempotent(store: &Store) {
    let expected: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(applied_versions(store).await.unwrap(), expected);
    assert_eq!(store.migrate().await.unwrap(), 0, "a second run applies nothing");
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(applied_versions(store).await.unwrap(), expected);
    store.ping().await.unwrap();
}

async fn values_round_trip_verbatim_and_sql_stays_sql(store: &Store) {
    let hostile = [
        "'; DROP TABLE settings; --",
        "\" OR 1=1 --",
        "Robert'); DELETE FROM settings WHERE ('1'='1",
        "ünïcødé ✓ 𝄞",
        "$1 $2 ? ?1 :name @x",
        "line\nbreak\ttab",
    ];
    for (i, v) in hostile.iter().enumerate() {
        let key = format!("k{i}{v}");
        store.set_setting(&key, v).await.unwrap();
        assert_eq!(store.setting(&key).await.unwrap().as_deref(), Some(*v));
    }
    // Every row is still there: nothing was executed as SQL.
    for (i, v) in hostile.iter().enumerate() {
        assert_eq!(store.setting(&format!("k{i}{v}")).await.unwrap().as_deref(), Some(*v));
    }
    store.set_setting("k0'; DROP TABLE settings; --", "replaced").await.unwrap();
    assert_eq!(store.setting("k0'; DROP TABLE settings; --").await.unwrap().as_deref(), Some("replaced"));
    assert_eq!(store.setting("missing").await.unwrap(), None);
}

async fn a_unique_insert_has_exactly_one_winner_under_concurrency(store: &Store) {
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(
            async move { store.insert_setting_once("once", &format!("writer-{i}")).await.unwrap() },
        ));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    assert!(store.setting("once").await.unwrap().unwrap().starts_with("writer-"));
}

async fn a_rolled_back_transaction_leaves_nothing(store: &Store) {
    let mut tx = store.begin_write().await.unwrap();
    sqlx::query("INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)")
        .bind("ghost")
        .bind("boo")
        .bind(1_i64)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(store.setting("ghost").await.unwrap(), None);

    let mut tx = store.begin_write().await.unwrap();
    sqlx::query("INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)")
        .bind("kept")
        .bind("yes")
        .bind(1_i64)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.setting("kept").await.unwrap().as_deref(), Some("yes"));
}

async fn session_settings_are_applied(store: &Store) {
    let mut conn = store.acquire_for_tests().await;
    match store.backend() {
        Backend::Sqlite => {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut *conn).await.unwrap();
            assert_eq!(mode.to_lowercase(), "wal");
            let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&mut *conn).await.unwrap();
            assert_eq!(fk, 1);
            let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(&mut *conn).await.unwrap();
            assert!(busy >= 1000, "busy timeout {busy}");
        }
        Backend::Postgres => {
            let timeout: String = sqlx::query_scalar("SHOW statement_timeout").fetch_one(&mut *conn).await.unwrap();
            assert_eq!(timeout, "30s");
        }
    }
}

async fn a_user(store: &Store) -> String {
    let id = sika::crypto::random::hex_id();
    let row = sika::store::UserRow {
        id: id.clone(),
        email_index: format!("k1.{id}"),
        email_enc: "sealed".into(),
        name_enc: None,
        role: "viewer".into(),
        password_hash: "hash".into(),
        totp_secret_enc: "sealed".into(),
        totp_enrolled: true,
        totp_last_step: 0,
        disabled: false,
        failed_logins: 0,
        lockouts: 0,
        locked_until: 0,
        created_at: sika::store::now_ms(),
    };
    assert_eq!(store.insert_user(&row).await.unwrap(), sika::store::Inserted::Yes);
    // The same e-mail index again is refused by the unique index, whatever the row id.
    let twin = sika::store::UserRow { id: sika::crypto::random::hex_id(), ..row };
    assert_eq!(store.insert_user(&twin).await.unwrap(), sika::store::Inserted::EmailTaken);
    id
}

async fn lockouts_double_up_to_a_cap_and_start_over_after_a_sign_in(store: &Store) {
    let id = a_user(store).await;
    let (base, max) = (60_000, 150_000);
    let lock_once = || async {
        let mut until = None;
        for i in 1..=5 {
            assert!(store.reserve_login_attempt(&id, 5, sika::store::now_ms()).await.unwrap(), "attempt {i} reserved");
            until = store.fail_login_attempt(&id, 5, base, max).await.unwrap();
            assert_eq!(until.is_some(), i == 5, "locks at the fifth failure");
        }
        assert!(!store.reserve_login_attempt(&id, 5, sika::store::now_ms()).await.unwrap(), "locked: no attempt");
        let d = until.unwrap() - sika::store::now_ms();
        // Lift it to go on (what the lock's end would do).
        sqlx::query("UPDATE users SET locked_until = 0 WHERE id = $1")
            .bind(&id)
            .execute(store.pool_for_tests())
            .await
            .unwrap();
        d
    };
    let mut durations = Vec::new();
    for _ in 0..3 {
        durations.push(lock_once().await);
    }
    for (d, expected) in durations.iter().zip([base, 2 * base, max]) {
        assert!((expected - 1000..=expected).contains(d), "{d} vs {expected}: doubling, capped");
    }
    // A complete sign-in starts the doubling over.
    store.login_succeeded(&id).await.unwrap();
    let d = lock_once().await;
    assert!((base - 1000..=base).contains(&d), "{d}: back to the base after a sign-in");
    assert!(store.unlock_user(&id).await.unwrap());
    assert_eq!(store.user(&id).await.unwrap().unwrap().locked_until, 0);
}

/// Thirty attempts at once on one account: the reservation is atomic, so at
/// most five pass (the check and the count cannot be raced apart).
async fn concurrent_attempts_reserve_at_most_the_limit(store: &Store) {
    let id = a_user(store).await;
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (store, id) = (store.clone(), id.clone());
        tasks.push(tokio::spawn(
            async move { store.reserve_login_attempt(&id, 5, sika::store::now_ms()).await.unwrap() },
        ));
    }
    let mut passed = 0;
    for t in tasks {
        passed += usize::from(t.await.unwrap());
    }
    assert_eq!(passed, 5);
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.reserve_ip_attempt("203.0.113.9", 20, 900_000).await.unwrap() }));
    }
    let mut passed = 0;
    for t in tasks {
        passed += usize::from(t.await.unwrap());
    }
    assert_eq!(passed, 20, "the address's window holds at most its limit");
}

async fn expired_sessions_are_purged(store: &Store) {
    let id = a_user(store).await;
    let now = sika::store::now_ms();
    let session = |hash: &str, created: i64, seen: i64| sika::store::SessionRow {
        token_hash: hash.into(),
        user_id: id.clone(),
        stage: "full".into(),
        csrf_token: "c".into(),
        created_at: created,
        last_seen_at: seen,
    };
    store.start_session(&session("old", now - 100_000, now - 100_000), "ip", "ua", "x").await.unwrap();
    assert_eq!(store.purge_sessions(10_000, 1_000_000).await.unwrap(), 1, "idle past the limit");
    store.start_session(&session("fresh", now, now), "ip", "ua", "x").await.unwrap();
    assert_eq!(store.purge_sessions(10_000, 1_000_000).await.unwrap(), 0);
    assert!(store.session("fresh").await.unwrap().is_some());
    assert_eq!(store.ended_reason("old").await.unwrap(), None, "purge is not an ending the user is told about");
}

/// Two instances starting together on an empty PostgreSQL database: every
/// migration step, the bookkeeping table included, runs under one lock, so
/// both start (five tries, each on a fresh database).
/// Issue 9's release left the schema at version 7. A database it wrote —
/// a paid checkout with its sealed customer, its timeline, a payout and an
/// audit chain — upgrades to today's schema with nothing lost: the rows
/// read back through today's code, sealed fields open, the chain verifies,
/// and the checkout waits for its e-mail index (backfilled at start).
async fn an_upgrade_from_the_previous_release_loses_nothing(url: String) {
    use sika::secret::Secret;
    const PREVIOUS_RELEASE: i64 = 7;
    let store = Store::connect(&Secret::new(url.clone())).await.unwrap();
    store.migrate_up_to(PREVIOUS_RELEASE).await.unwrap();
    assert_eq!(applied_versions(&store).await.unwrap().last(), Some(&PREVIOUS_RELEASE));
    let ring = sika::crypto::keyring::KeyRing::parse(&sika::crypto::keyring::KeyRing::generate_text("k1")).unwrap();
    let cipher = sika::crypto::field::FieldCipher::new(ring);
    let audit_key = Secret::new(sika::crypto::random::token());
    let email = cipher.seal("checkouts", "email", "old-1", b"old.buyer@example.com");
    let pool = store.pool_for_tests();
    sqlx::query(
        "INSERT INTO checkouts (reference, fingerprint, amount, currency, email_enc, status, api_key_id, created_at, \
         updated_at, transaction_id, paid_amount, refunded) VALUES ('old-1', 'f1', '1500.50', 'NGN', $1, 'paid', 'key-1', \
         1790000000000, 1790000001000, 777, '1500.50', '100')",
    )
    .bind(&email)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO checkout_events (reference, at, kind, detail) VALUES ('old-1', 1790000001000, 'paid', 'transaction 777')")
        .execute(pool)
        .await
        .unwrap();
    let auditor = sika::audit::Auditor::new(store.clone(), audit_key.clone());
    for i in 0..5 {
        auditor
            .record(
                &sika::audit::Actor::cli(),
                "test.before_upgrade",
                &format!("n:{i}"),
                sika::audit::Outcome::Success,
                serde_json::json!({"i": i}),
            )
            .await
            .unwrap();
    }
    store.close().await;

    // Today's release starts on it.
    let store = Store::connect(&Secret::new(url)).await.unwrap();
    let applied = store.migrate().await.unwrap();
    assert_eq!(applied, MIGRATIONS.iter().filter(|m| m.version > PREVIOUS_RELEASE).count());
    let c = store.checkout("old-1").await.unwrap().expect("the checkout survives");
    assert_eq!((c.amount.to_string().as_str(), c.currency.code(), c.status.as_str()), ("1500.50", "NGN", "paid"));
    assert_eq!((c.transaction_id, c.refunded.to_string().as_str()), (Some(777), "100"));
    assert_eq!(cipher.open("checkouts", "email", "old-1", &c.email_enc).unwrap(), b"old.buyer@example.com");
    assert_eq!(store.checkout_events("old-1").await.unwrap().len(), 1);
    assert!(c.description.is_none() && c.payment.card_last4.is_none(), "new columns start empty");
    let waiting = store.checkouts_without_email_index(10).await.unwrap();
    assert_eq!(waiting.iter().map(|r| r.reference.as_str()).collect::<Vec<_>>(), vec!["old-1"]);
    let q = sika::store::CheckoutQuery { limit: 10, ..Default::default() };
    assert_eq!(store.checkouts_page(&q).await.unwrap().1, 1, "listed by today's query");
    let auditor = sika::audit::Auditor::new(store.clone(), audit_key);
    assert_eq!(auditor.verify().await.unwrap().expect("the chain verifies after the upgrade"), 5);
    assert_eq!(store.migrate().await.unwrap(), 0, "a second start changes nothing");
    store.close().await;
}

#[tokio::test]
async fn an_upgrade_from_the_previous_release_loses_nothing_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    an_upgrade_from_the_previous_release_loses_nothing(format!("sqlite://{}", dir.path().join("old.db").display()))
        .await;
}

#[tokio::test]
async fn an_upgrade_from_the_previous_release_loses_nothing_on_postgres() {
    let Some(url) = support::empty_postgres().await else { return };
    an_upgrade_from_the_previous_release_loses_nothing(url).await;
}

#[tokio::test]
async fn two_instances_migrating_an_empty_postgres_database_at_once_both_start() {
    for _ in 0..5 {
        let Some(url) = support::empty_postgres().await else { return };
        let start = |url: String| async move {
            let store = Store::connect(&sika::secret::Secret::new(url)).await.unwrap();
            store.migrate().await.map(|_| store)
        };
        // Two pools, two connections, interleaved: the race is in the database.
        let (a, b) = tokio::join!(start(url.clone()), start(url.clone()));
        let stores = [a.expect("the first instance starts"), b.expect("the second instance starts")];
        let expected: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(applied_versions(&stores[0]).await.unwrap(), expected);
    }
}

/// A singleton's advisory lock lives on a connection that is closed when the
/// work panics or is cancelled: another instance can take it at once.
#[tokio::test]
async fn an_advisory_lock_never_leaks_back_into_the_pool() {
    let Some(db) = support::postgres().await else { return };
    let other = Store::connect(&sika::secret::Secret::new(db.url.clone())).await.unwrap();
    // Cancelled mid-work.
    let store = db.store.clone();
    let cancelled =
        tokio::time::timeout(std::time::Duration::from_millis(100), store.singleton(77, std::future::pending::<()>()));
    assert!(cancelled.await.is_err());
    // Panicking mid-work.
    let store = db.store.clone();
    let panicked = tokio::spawn(async move { store.singleton(77, async { panic!("boom") }).await });
    assert!(panicked.await.unwrap_err().is_panic());
    // The same pool's connections are reused: none still holds the lock.
    for _ in 0..20 {
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let s = db.store.clone();
            tasks.push(tokio::spawn(async move { sqlx::query("SELECT 1").execute(s.pool_for_tests()).await.unwrap() }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    assert_eq!(other.singleton(77, async { 1 }).await.unwrap(), Some(1), "another instance takes the lock");
}
