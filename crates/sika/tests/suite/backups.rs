//! A backup taken while checkouts pour in restores to a database whose
//! audit chain verifies and whose every checkout is the one that was
//! written; a wrong key, a cut or altered file, an existing target refuse.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::json;
use sika::audit::Auditor;
use sika::secret::Secret;
use sika::store::Store;
use sqlx::Row as _;

type Rows = Vec<(String, String, String, String, String)>;

async fn checkouts(store: &Store) -> Rows {
    sqlx::query("SELECT reference, amount, currency, email_enc, status FROM checkouts ORDER BY reference")
        .fetch_all(store.pool_for_tests())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

#[tokio::test]
async fn a_backup_taken_under_load_restores_every_checkout_and_the_audit_chain() {
    let e = Arc::new(support::emulated::env_on(support::sqlite().await).await);
    let dir = tempfile::tempdir().unwrap();
    let key = Secret::new(sika::crypto::random::token());
    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (e, stop, created) = (e.clone(), stop.clone(), created.clone());
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"reference": format!("load-{worker}-{i:04}"), "amount": "1500.50", "currency": "NGN",
                                  "customer": {"email": format!("c{i}@example.com")}});
                assert_eq!(e.create(body).await.status(), 201);
                created.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    while created.load(Ordering::Relaxed) < 40 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before = created.load(Ordering::Relaxed);
    let backup = dir.path().join("sika.bak");
    sika::backup::create(&e.app.db.store, &key, &backup).await.unwrap();
    let after = created.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777, 0o600);
    let raw = std::fs::read(&backup).unwrap();
    assert!(!raw.windows(6).any(|w| w == b"load-0"), "references are not readable in the backup");
    assert!(!raw.windows(15).any(|w| w == b"SQLite format 3"));

    let target = dir.path().join("restored.db");
    sika::backup::restore(&key, &backup, &target).unwrap();
    let restored = Store::connect(&Secret::new(format!("sqlite://{}", target.display()))).await.unwrap();
    let audit = Auditor::new(restored.clone(), Secret::new(e.app.audit_key.clone()));
    let entries = audit.verify().await.unwrap().expect("the restored audit chain verifies");
    assert!(entries > 0);

    let (copy, live) = (checkouts(&restored).await, checkouts(&e.app.db.store).await);
    // Four requests may have been written but not yet counted when `after` was read.
    assert!(
        copy.len() >= before && copy.len() <= after + 4,
        "{} rows; {before}..={after} were created around the backup",
        copy.len()
    );
    for row in &copy {
        assert!(live.contains(row), "{row:?} is in the backup exactly as written");
    }

    // Refusals: an existing target, a wrong key, a cut file, a flipped byte, an existing output.
    assert!(sika::backup::restore(&key, &backup, &target).unwrap_err().to_string().contains("exists"));
    let other = Secret::new(sika::crypto::random::token());
    let err = sika::backup::restore(&other, &backup, &dir.path().join("x.db")).unwrap_err().to_string();
    assert!(err.contains("does not decrypt"), "{err}");
    assert!(
        !dir.path().join("x.db").exists() && !dir.path().join("x.restoring").exists(),
        "nothing half-written is left"
    );
    let cut = dir.path().join("cut.bak");
    std::fs::write(&cut, &raw[..raw.len() - 100]).unwrap();
    assert!(sika::backup::restore(&key, &cut, &dir.path().join("y.db")).is_err());
    let mut flipped = raw.clone();
    flipped[raw.len() / 2] ^= 0x40;
    std::fs::write(&cut, &flipped).unwrap();
    assert!(sika::backup::restore(&key, &cut, &dir.path().join("z.db")).is_err());
    let again = sika::backup::create(&e.app.db.store, &key, &backup).await.unwrap_err().to_string();
    assert!(again.contains("exists already"), "{again}");
    restored.close().await;
}

#[tokio::test]
async fn postgres_is_backed_up_with_pg_dump_not_pretended() {
    let Some(db) = support::postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = Secret::new(sika::crypto::random::token());
    let err = sika::backup::create(&db.store, &key, &dir.path().join("b")).await.unwrap_err().to_string();
    assert!(err.contains("pg_dump"), "{err}");
    assert!(!dir.path().join("b").exists());
}
