//! The audit chain detects an edited, deleted, inserted or reordered entry, on
//! SQLite and PostgreSQL; the table refuses updates outright.

use crate::support;

use sika::audit::checkpoint::Checkpoints;
use sika::audit::{Actor, Auditor, ChainBreak, Outcome};
use sika::secret::Secret;
use sika::store::Store;

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { let db = super::support::sqlite().await; super::$name(&db.store, &db.url).await; })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() {
                let Some(db) = super::support::postgres().await else { return };
                super::$name(&db.store, &db.url).await;
            })*
        }
    };
}

on_both!(
    retention_exports_then_purges_and_the_rest_still_verifies,
    an_untouched_chain_verifies,
    an_edit_is_detected,
    a_deletion_is_detected,
    an_insertion_is_detected,
    a_reordering_is_detected,
    updates_are_refused_by_the_table,
    deleting_the_newest_entries_is_caught_by_a_checkpoint,
    checkpoints_are_signed_and_survive_retention
);

async fn chain(store: &Store) -> Auditor {
    chain_with_key(store, &sika::crypto::random::token()).await
}

async fn chain_with_key(store: &Store, key: &str) -> Auditor {
    let auditor = Auditor::new(store.clone(), Secret::new(key.to_string()));
    let actor = Actor { id: "u1".into(), role: "admin".into(), ip: "127.0.0.1".into(), user_agent: "test".into() };
    for i in 0..5 {
        auditor
            .record(&actor, "test.action", &format!("thing:{i}"), Outcome::Success, serde_json::json!({"i": i}))
            .await
            .unwrap();
    }
    assert_eq!(auditor.verify().await.unwrap(), Ok(5));
    auditor
}

/// What an attacker with database access does first.
async fn raw(url: &str, sql: &str) {
    use sqlx::Connection as _;
    if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::raw_sql("DROP TRIGGER IF EXISTS audit_log_no_update").execute(&mut c).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql("DROP TRIGGER IF EXISTS audit_log_no_update ON audit_log").execute(&mut c).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    }
}

fn broken_at(r: Result<u64, ChainBreak>) -> i64 {
    match r {
        Ok(n) => panic!("tampering went unnoticed ({n} entries verified)"),
        Err(b) => b.seq,
    }
}

async fn an_untouched_chain_verifies(store: &Store, _url: &str) {
    let a = chain(store).await;
    a.record(&Actor::cli(), "more", "x", Outcome::Failure, serde_json::json!({})).await.unwrap();
    assert_eq!(a.verify().await.unwrap(), Ok(6));
}

async fn an_edit_is_detected(store: &Store, url: &str) {
    let a = chain(store).await;
    raw(url, "UPDATE audit_log SET outcome = 'failure' WHERE seq = 3").await;
    assert_eq!(broken_at(a.verify().await.unwrap()), 3);
}

async fn a_deletion_is_detected(store: &Store, url: &str) {
    let a = chain(store).await;
    raw(url, "DELETE FROM audit_log WHERE seq = 3").await;
    assert_eq!(broken_at(a.verify().await.unwrap()), 4);
}

async fn an_insertion_is_detected(store: &Store, url: &str) {
    let a = chain(store).await;
    // Make room after entry 2 and slip a forged entry in that claims to follow it.
    raw(url, "UPDATE audit_log SET seq = seq + 100 WHERE seq > 2").await;
    raw(url, "UPDATE audit_log SET seq = seq - 99 WHERE seq > 100").await;
    raw(
        url,
        "INSERT INTO audit_log (seq, at, actor, role, ip, user_agent, action, target, outcome, details, prev_hash, hash) \
         SELECT 3, at, 'attacker', 'admin', ip, user_agent, 'user.role', target, 'success', '{}', hash, \
         'f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0' FROM audit_log WHERE seq = 2",
    )
    .await;
    assert_eq!(broken_at(a.verify().await.unwrap()), 3);
}

async fn a_reordering_is_detected(store: &Store, url: &str) {
    let a = chain(store).await;
    raw(url, "UPDATE audit_log SET seq = 100 WHERE seq = 2").await;
    raw(url, "UPDATE audit_log SET seq = 2 WHERE seq = 3").await;
    raw(url, "UPDATE audit_log SET seq = 3 WHERE seq = 100").await;
    assert_eq!(broken_at(a.verify().await.unwrap()), 2);
}

async fn updates_are_refused_by_the_table(store: &Store, _url: &str) {
    let _ = chain(store).await;
    let r = sqlx::query("UPDATE audit_log SET outcome = 'failure' WHERE seq = 1")
        .execute(&mut *store.acquire_for_tests().await)
        .await;
    assert!(r.is_err(), "the append-only trigger refuses updates");
}

async fn retention_exports_then_purges_and_the_rest_still_verifies(store: &Store, _url: &str) {
    let a = chain(store).await;
    let third = store.audit_page(2, 1).await.unwrap().remove(0);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut exported = Vec::new();
    let n = a.purge_before(third.at + 1, &mut exported).await.unwrap();
    assert!(n >= 3, "the oldest entries went out ({n})");
    let lines = String::from_utf8(exported).unwrap();
    assert_eq!(lines.lines().count() as u64, n, "everything purged was exported first");
    assert!(lines.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    assert_eq!(a.verify().await.unwrap(), Ok(5 - n), "the chain still verifies from its anchor");
    a.record(&Actor::cli(), "after.purge", "x", Outcome::Success, serde_json::json!({})).await.unwrap();
    assert_eq!(a.verify().await.unwrap(), Ok(6 - n));
}

/// The chain cannot show that its newest entries were deleted (what is left
/// still chains); a signed checkpoint kept outside the database does.
async fn deleting_the_newest_entries_is_caught_by_a_checkpoint(store: &Store, url: &str) {
    let key = sika::crypto::random::token();
    let a = chain_with_key(store, &key).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoints");
    let cp = Checkpoints::new(&Secret::new(key.clone()), &file);
    assert_eq!(cp.write(&a).await.unwrap().map(|c| c.seq), Some(5));
    assert_eq!(cp.write(&a).await.unwrap(), None, "an unchanged head is not written again");
    assert_eq!(cp.verify(&a, &file).await, Ok(1));
    raw(url, "DELETE FROM audit_log WHERE seq >= 4").await;
    assert_eq!(a.verify().await.unwrap(), Ok(3), "the chain alone cannot tell");
    let why = cp.verify(&a, &file).await.unwrap_err();
    assert!(why.contains("ends at entry 3") && why.contains("recorded entry 5"), "{why}");
}

/// A checkpoint line is signed with a key derived from the audit key: an
/// edited line, or one signed with another key, is refused. Checkpoints of
/// entries retention purged are skipped, not failed.
async fn checkpoints_are_signed_and_survive_retention(store: &Store, _url: &str) {
    let key = sika::crypto::random::token();
    let a = chain_with_key(store, &key).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoints");
    let cp = Checkpoints::new(&Secret::new(key.clone()), &file);
    cp.write(&a).await.unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "owner-only");
    let foreign = Checkpoints::new(&Secret::new(sika::crypto::random::token()), &file);
    assert!(foreign.verify(&a, &file).await.unwrap_err().contains("not signed with this audit key"));
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = dir.path().join("edited");
    std::fs::write(&edited, text.replace("\"seq\":5", "\"seq\":4")).unwrap();
    assert!(cp.verify(&a, &edited).await.unwrap_err().contains("not signed"));
    // Retention purges the first entries; the checkpoint of entry 5 still holds.
    let third = store.audit_page(2, 1).await.unwrap().remove(0);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    a.purge_before(third.at + 1, &mut Vec::new()).await.unwrap();
    a.record(&Actor::cli(), "after", "x", Outcome::Success, serde_json::json!({})).await.unwrap();
    cp.write(&a).await.unwrap();
    assert_eq!(cp.verify(&a, &file).await, Ok(2));
}
