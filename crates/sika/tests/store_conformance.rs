//! The store conformance suite: every test runs against SQLite and against
//! PostgreSQL (`SIKA_TEST_POSTGRES_URL`), each on a fresh database.

mod support;

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
