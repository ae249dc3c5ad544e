//! Encryption at rest: after a full flow, no plaintext e-mail, name or TOTP
//! secret is in the SQLite file, its WAL, or a PostgreSQL dump; key rotation
//! re-encrypts and old rows keep working; API keys are stored only as hashes.

use crate::support;

use std::collections::HashMap;

use crate::support::browser::{Browser, code};
use sika::audit::Actor;
use sika::auth::Role;

use crate::support::people::PASSWORD;

/// Creates users, signs in, enrols one through the console; returns the plaintexts that must never be stored.
async fn full_flow(app: &support::TestApp) -> Vec<String> {
    let mut secrets = Vec::new();
    for (i, role) in [Role::Admin, Role::Viewer, Role::Auditor].into_iter().enumerate() {
        let email = format!("plain.person{i}@distinctive-domain.test");
        let name = format!("Zebulon Quixote{}", ["a", "b", "c"][i]);
        let c = app.auth.create_user(&Actor::cli(), &email, Some(&name), role, PASSWORD, true).await.unwrap();
        let mut b = Browser::new(&app.base, app.client.clone());
        assert_eq!(b.login(&email, PASSWORD, &code(&c.totp_secret, 0)).await.status, 303);
        assert_eq!(b.get("/").await.status, 200);
        if role == Role::Admin {
            assert_eq!(b.get("/admin/users").await.status, 200);
        }
        secrets.extend([email, name, c.totp_secret]);
    }
    secrets
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[tokio::test]
async fn nothing_sensitive_is_in_the_sqlite_file_or_its_wal() {
    let app = support::spawn_app().await;
    let secrets = full_flow(&app).await;
    let path = app.db.url.trim_start_matches("sqlite://").to_string();
    let mut files = vec![std::fs::read(&path).unwrap()];
    if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
        files.push(wal);
    }
    assert!(files.iter().any(|f| contains(f, "v1.k1.")), "the sealed values are there");
    for bytes in &files {
        for s in &secrets {
            assert!(!contains(bytes, s), "plaintext {s:?} found in the database files");
        }
    }
}

#[tokio::test]
async fn nothing_sensitive_is_in_a_postgres_dump() {
    let Some(db) = support::postgres().await else { return };
    let url = db.url.clone();
    let app = support::spawn_on(
        db,
        axum::Router::new(),
        std::time::Duration::from_secs(900),
        std::time::Duration::from_secs(36_000),
    )
    .await;
    let secrets = full_flow(&app).await;
    let pg_dump = ["pg_dump".to_string()]
        .into_iter()
        .chain(
            std::fs::read_dir("/usr/lib/postgresql")
                .into_iter()
                .flatten()
                .flatten()
                .map(|d| d.path().join("bin/pg_dump").display().to_string()),
        )
        .find(|p| std::process::Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("pg_dump is installed with PostgreSQL");
    let out = std::process::Command::new(pg_dump).arg("--no-owner").arg(&url).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(contains(&out.stdout, "v1.k1."));
    for s in &secrets {
        assert!(!contains(&out.stdout, s), "plaintext {s:?} found in the dump");
    }
}

#[tokio::test]
async fn key_rotation_reencrypts_in_batches_and_old_keys_keep_working_until_then() {
    let db = support::sqlite().await;
    let old = sika::crypto::keyring::KeyRing::generate_text("k1");
    let audit_key = sika::crypto::random::token();
    let auth_with = |ring: &str| {
        sika::auth::Auth::new(
            db.store.clone(),
            sika::crypto::keyring::KeyRing::parse(ring).unwrap(),
            sika::secret::Secret::new(audit_key.clone()),
            std::time::Duration::from_secs(900),
            std::time::Duration::from_secs(3600),
        )
    };
    let before = auth_with(&old);
    for i in 0..5 {
        before
            .create_user(
                &Actor::cli(),
                &format!("rot{i}@example.com"),
                Some("Rot Person"),
                Role::Viewer,
                PASSWORD,
                true,
            )
            .await
            .unwrap();
    }
    let ring = format!("{},{old}", sika::crypto::keyring::KeyRing::generate_text("k2"));
    let after = auth_with(&ring);
    // Before rotation, lookups still find users sealed under the old key.
    assert!(db.store.user_by_email_index(&after.email_indexes("rot3@example.com")).await.unwrap().is_some());

    let env: HashMap<&str, String> = HashMap::from([
        ("SIKA_DATABASE_URL", db.url.clone()),
        ("SIKA_DATA_KEY", ring.clone()),
        ("SIKA_AUDIT_KEY", audit_key.clone()),
    ]);
    let src = move |k: &str| env.get(k).cloned();
    sika::ops::keys_rotate(&src, 2).await.unwrap();
    for row in db.store.users().await.unwrap() {
        for sealed in [&row.email_enc, &row.totp_secret_enc, row.name_enc.as_ref().unwrap()] {
            assert!(sealed.starts_with("v1.k2."), "{sealed}");
        }
        assert!(row.email_index.starts_with("k2."));
    }
    // Run again: nothing left to do (it resumes where it stopped).
    sika::ops::keys_rotate(&src, 2).await.unwrap();
    // The old key can now leave the ring.
    let only_new = auth_with(ring.split(',').next().unwrap());
    let u = db.store.user_by_email_index(&only_new.email_indexes("rot3@example.com")).await.unwrap().unwrap();
    assert_eq!(only_new.open_user(&u).unwrap().email, "rot3@example.com");
}

#[tokio::test]
async fn api_keys_are_stored_as_hashes_scoped_and_revocable() {
    let app = support::spawn_app().await;
    let (id, key) = app.auth.create_api_key(&Actor::cli(), "shop", "read,checkouts").await.unwrap();
    assert!(key.starts_with(&format!("{id}.")) && id.starts_with("sk_"));
    let who = app.auth.authenticate_key(&key).await.unwrap().expect("valid key");
    assert_eq!(who.scopes, vec!["checkouts".to_string(), "read".to_string()]);
    let mut forged = key.clone();
    forged.pop();
    forged.push(if key.ends_with('A') { 'B' } else { 'A' });
    assert!(app.auth.authenticate_key(&forged).await.unwrap().is_none());
    assert!(app.auth.authenticate_key("garbage").await.unwrap().is_none());
    assert!(app.auth.create_api_key(&Actor::cli(), "x", "everything").await.is_err(), "unknown scopes are refused");
    assert!(app.db.store.api_key(&id).await.unwrap().unwrap().last_used_at.is_some(), "last use is recorded");
    let raw = std::fs::read(app.db.url.trim_start_matches("sqlite://")).unwrap();
    let wal = std::fs::read(format!("{}-wal", app.db.url.trim_start_matches("sqlite://"))).unwrap_or_default();
    let secret_part = key.split('.').nth(1).unwrap();
    assert!(!contains(&raw, secret_part) && !contains(&wal, secret_part));
    assert!(app.auth.revoke_api_key(&Actor::cli(), &id).await.unwrap());
    assert!(app.auth.authenticate_key(&key).await.unwrap().is_none(), "revoked");
    let audit = app.db.store.audit_search(&Default::default(), 100).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "apikey.create") && audit.iter().any(|e| e.action == "apikey.revoke"));
}
