//! Operator commands: `user add`, `apikey create`, `audit verify|export|purge`,
//! `keys rotate`. Each opens the store and the keys from the environment or a
//! demo directory, does one thing, and leaves an audit entry.

use std::io::{Read as _, Write as _};

use crate::audit::{Actor, Auditor};
use crate::auth::{Auth, AuthError, Role};
use crate::config::{OpsConfig, Source};
use crate::crypto::field::FieldCipher;
use crate::gateway;
use crate::store::Store;

/// The store and the accounts service over it, as an operator command needs them.
pub async fn auth(src: &dyn Source) -> Result<(Auth, Store), String> {
    let c = OpsConfig::load(src).map_err(|e| e.0)?;
    let store = gateway::open_store_at(&c.database_url).await?;
    let auth = Auth::new(store.clone(), c.data_keys, c.audit_key, c.session_idle_timeout, c.session_absolute_timeout);
    Ok((auth, store))
}

/// `sika user unlock --email E`: lifts a lockout, for when no admin can sign in to do it.
pub async fn user_unlock(src: &dyn Source, email: &str) -> Result<(), String> {
    let email = crate::domain::validate::email(email).map_err(|e| format!("--email: {e}"))?;
    let (auth, store) = auth(src).await?;
    let row = store.user_by_email_index(&auth.email_indexes(&email)).await.map_err(|e| format!("{e}."))?;
    let Some(row) = row else {
        store.close().await;
        return Err("no user has this e-mail address.".into());
    };
    let user = auth.user(&row.id).await.map_err(sentence)?.ok_or("no user has this e-mail address.")?;
    auth.change_account(&Actor::cli(), &user, crate::auth::AccountChange::Unlock)
        .await
        .map_err(|e| format!("nothing was changed: {}", sentence(e)))?;
    println!("unlocked user {}", row.id);
    store.close().await;
    Ok(())
}

fn sentence(e: AuthError) -> String {
    match e {
        AuthError::Invalid(_, msg) => msg,
        other => format!("{other}."),
    }
}

pub async fn user_add(src: &dyn Source, email: &str, role: &str, name: Option<&str>) -> Result<(), String> {
    let role = Role::parse(role).ok_or("--role must be one of admin, operator, approver, viewer, auditor.")?;
    let mut password = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut password)
        .map_err(|e| format!("cannot read the password from stdin: {e}."))?;
    let password = password.trim_end_matches(['\n', '\r']);
    let (auth, store) = auth(src).await?;
    let created = auth.create_user(&Actor::cli(), email, name, role, password, true).await.map_err(sentence)?;
    println!("user_id={}", created.id);
    println!("totp_secret={}", created.totp_secret);
    store.close().await;
    Ok(())
}

pub async fn apikey_create(src: &dyn Source, name: &str, scopes: &str) -> Result<(), String> {
    let (auth, store) = auth(src).await?;
    let (id, key) = auth.create_api_key(&Actor::cli(), name, scopes).await.map_err(sentence)?;
    println!("api_key_id={id}");
    println!("api_key={key}");
    store.close().await;
    Ok(())
}

/// `sika notify set --url URL`: the shop's endpoint and a new signing secret, each audited.
pub async fn notify_set(src: &dyn Source, url: &str) -> Result<(), String> {
    let allow_loopback = matches!(
        crate::config::variable(src, "SIKA_NOTIFY_ALLOW_LOOPBACK").map(|v| v.to_ascii_lowercase()).as_deref(),
        Some("true" | "1" | "yes")
    );
    let url = crate::payments::notify::valid_url(url, allow_loopback).map_err(|e| format!("--url: {e}"))?;
    let c = OpsConfig::load(src).map_err(|e| e.0)?;
    let (auth, store) = auth(src).await?;
    let settings = crate::settings::Settings::new(store.clone(), auth.auditor.clone());
    let secret = format!("whsec_{}", crate::crypto::random::token());
    let cipher = crate::crypto::field::FieldCipher::new(c.data_keys.clone());
    let sealed = cipher.seal_str("settings", "value", crate::payments::notify::SECRET_SETTING, &secret);
    let saved = async {
        settings.save(&Actor::cli(), crate::settings::Change::NotifyUrl(url.clone())).await?;
        settings.save(&Actor::cli(), crate::settings::Change::NotifySecret { sealed }).await
    }
    .await;
    store.close().await;
    saved.map_err(|e| format!("cannot save the notification settings: {e}."))?;
    println!("notify_url={url}");
    println!("notify_secret={secret}");
    Ok(())
}

fn auditor(auth: &Auth) -> &Auditor {
    &auth.auditor
}

pub async fn audit_verify(src: &dyn Source, checkpoints: Option<&std::path::Path>) -> Result<(), String> {
    let c = OpsConfig::load(src).map_err(|e| e.0)?;
    let (auth, store) = auth(src).await?;
    let result = auditor(&auth).verify().await.map_err(|e| format!("{e}."))?;
    let n = match result {
        Ok(n) => n,
        Err(b) => {
            store.close().await;
            return Err(format!("audit chain broken at entry {}: {}.", b.seq, b.reason));
        }
    };
    let file = checkpoints.map(std::path::Path::to_path_buf).unwrap_or(c.audit_checkpoint_file.clone());
    let signer = crate::audit::checkpoint::Checkpoints::new(&c.audit_key, &file);
    let checked =
        if checkpoints.is_some() || file.exists() { Some(signer.verify(auditor(&auth), &file).await) } else { None };
    store.close().await;
    match checked {
        Some(Err(why)) => Err(format!("audit checkpoints: {why}.")),
        Some(Ok(k)) => {
            println!("audit chain ok: {n} entries");
            println!("audit checkpoints ok: {k} checkpoints in {} agree", file.display());
            Ok(())
        }
        None => {
            println!("audit chain ok: {n} entries");
            println!("audit checkpoints: none yet at {}", file.display());
            Ok(())
        }
    }
}

pub async fn audit_export(src: &dyn Source, output: Option<&std::path::Path>) -> Result<(), String> {
    let (auth, store) = auth(src).await?;
    let mut out: Box<dyn std::io::Write> = match output {
        Some(p) => Box::new(std::fs::File::create(p).map_err(|e| format!("cannot create {}: {e}.", p.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let (n, _) = auditor(&auth).export(&mut out, None).await?;
    out.flush().map_err(|e| e.to_string())?;
    eprintln!("exported {n} audit entries");
    store.close().await;
    Ok(())
}

pub async fn audit_purge(src: &dyn Source, days: i64, export: &std::path::Path) -> Result<(), String> {
    let (auth, store) = auth(src).await?;
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(export)
        .map_err(|e| format!("cannot open --export {}: {e}.", export.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let n = auditor(&auth).purge(days, &mut out).await?;
    println!("exported to {} and purged {n} audit entries older than {days} days", export.display());
    store.close().await;
    Ok(())
}

/// Re-encrypts every sealed field under the first key of `SIKA_DATA_KEY`, in
/// batches. Interrupted, it resumes where it stopped: rows already on the new
/// key are not selected again.
pub async fn keys_rotate(src: &dyn Source, batch: i64) -> Result<(), String> {
    let (auth, store) = auth(src).await?;
    let primary = auth.cipher.primary_key_id().to_string();
    let mut done = 0u64;
    loop {
        let rows = store.users_not_on_key(&primary, batch.max(1)).await.map_err(|e| format!("{e}."))?;
        if rows.is_empty() {
            break;
        }
        for mut row in rows {
            let user = auth.open_user(&row).map_err(sentence)?;
            let secret = auth.totp_secret(&row).map_err(sentence)?;
            row.email_index = auth.cipher.blind_index("email", &user.email);
            row.email_enc = auth.cipher.seal_str("users", "email", &row.id, &user.email);
            row.name_enc = user.name.as_deref().map(|n| auth.cipher.seal_str("users", "name", &row.id, n));
            row.totp_secret_enc = auth.cipher.seal_str("users", "totp_secret", &row.id, &secret);
            debug_assert_eq!(FieldCipher::key_id(&row.email_enc), Some(primary.as_str()));
            store.reseal_user(&row).await.map_err(|e| format!("{e}."))?;
            done += 1;
        }
        println!("re-encrypted {done} users so far");
    }
    auth.auditor
        .record(
            &Actor::cli(),
            "keys.rotate",
            "users",
            crate::audit::Outcome::Success,
            serde_json::json!({"rows": done, "key": primary}),
        )
        .await
        .map_err(|e| format!("{e}."))?;
    println!("key rotation complete: {done} users now under key {primary}");
    store.close().await;
    Ok(())
}

fn backup_key(src: &dyn Source) -> Result<crate::secret::Secret, String> {
    match crate::config::secret_with_origin(src, "SIKA_BACKUP_KEY") {
        Ok(Some((k, _))) => Ok(k),
        Ok(None) => Err("SIKA_BACKUP_KEY is missing: set it, or SIKA_BACKUP_KEY_FILE to a file (mode 0600), to a random value of 32 characters or more, and keep a copy away from the backups.".into()),
        Err(e) => Err(e.0),
    }
}

/// `sika backup --output FILE`: a sealed copy, its time recorded for `sika check`, audited.
pub async fn backup(src: &dyn Source, output: &std::path::Path) -> Result<(), String> {
    let key = backup_key(src)?;
    let (auth, store) = auth(src).await?;
    let result = crate::backup::create(&store, &key, output).await;
    let outcome = if result.is_ok() { crate::audit::Outcome::Success } else { crate::audit::Outcome::Failure };
    let details = serde_json::json!({"file": output.display().to_string()});
    auditor(&auth)
        .record(&crate::audit::Actor::cli(), "backup.create", "database", outcome, details)
        .await
        .map_err(|e| format!("{e}."))?;
    let bytes = match result {
        Ok(n) => n,
        Err(e) => {
            store.close().await;
            return Err(e.to_string());
        }
    };
    let now = crate::store::now_ms().to_string();
    store.set_setting(crate::check::settings::LAST_BACKUP_SETTING, &now).await.map_err(|e| format!("{e}."))?;
    store.close().await;
    println!("backup written: {} ({bytes} bytes of database, encrypted)", output.display());
    Ok(())
}

/// `sika restore --input FILE --to PATH`: decrypts into a new SQLite file,
/// then verifies its audit chain and counts what it holds.
pub async fn restore(src: &dyn Source, input: &std::path::Path, to: &std::path::Path) -> Result<(), String> {
    let key = backup_key(src)?;
    let c = OpsConfig::load(src).map_err(|e| e.0)?;
    let bytes = crate::backup::restore(&key, input, to).map_err(|e| e.to_string())?;
    let url = crate::secret::Secret::new(format!("sqlite://{}", to.display()));
    let store =
        crate::store::Store::connect(&url).await.map_err(|e| format!("cannot open the restored database: {e}."))?;
    let auth = Auth::new(store.clone(), c.data_keys, c.audit_key, c.session_idle_timeout, c.session_absolute_timeout);
    let chain = auditor(&auth).verify().await.map_err(|e| format!("{e}."))?;
    let checkouts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM checkouts")
        .fetch_one(store.pool())
        .await
        .map_err(|e| format!("{e}."))?;
    store.close().await;
    match chain {
        Ok(n) => {
            println!("restored {bytes} bytes to {}", to.display());
            println!("audit chain ok: {n} entries");
            println!("checkouts: {checkouts}");
            Ok(())
        }
        Err(b) => Err(format!("restored, but the audit chain is broken at entry {}: {}.", b.seq, b.reason)),
    }
}
