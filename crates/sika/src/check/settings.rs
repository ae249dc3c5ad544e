//! The configuration `serve` would start with, and the database it would
//! open: secrets and where they come from, the Flutterwave key's mode,
//! session limits, TLS files, the shop's notification URL, the audit chain
//! and its checkpoints, and the last backup. Nothing here writes.

use std::time::Duration;

use super::Report;
use crate::config::{self, Config, Origin, Source};
use crate::store::Store;

/// The setting `sika backup` writes when it finishes (milliseconds since the epoch).
pub const LAST_BACKUP_SETTING: &str = "backup.last_at";
/// A backup older than this is a warning.
const BACKUP_MAX_AGE_MS: i64 = 7 * 86_400_000;

const ITEM_ENV: &str = "API Keys should be stored in environmental variables or secrets manager.";
const ITEM_HARDCODED: &str = "API Keys should not be hardcoded in the codebase.";

/// Every finding that needs no running server.
pub async fn check(src: &dyn Source, report: &mut Report) {
    let loaded = Config::load(src);
    match &loaded {
        Ok(_) => {
            report.pass("config.loads", "Sika: `sika serve` accepts this configuration", "every variable is valid")
        }
        Err(e) => report.fail(
            "config.loads",
            "Sika: `sika serve` accepts this configuration",
            format!("serve would refuse to start: {e}"),
        ),
    }
    secrets(src, report);
    flutterwave(src, report);
    database(src, report);
    sessions(src, report);
    tls(src, report);
    match &loaded {
        Ok(c) => {
            report.pass(
                "data.at_rest",
                "Encryption of sensitive data at rest",
                format!(
                    "SIKA_DATA_KEY holds {} key(s); customer and beneficiary fields are sealed with ChaCha20-Poly1305",
                    c.data_keys.len()
                ),
            );
            report.pass(
                "auth.brute_force",
                "Implement controls against brute-force - account lockouts, second-factor authentication and so on.",
                format!(
                    "TOTP for every user; an account locks after 5 failures (30 min doubling, at most 2 h); {} failures per address per 15 min",
                    c.login_ip_limit
                ),
            );
            report.pass(
                "flutterwave.rate_budget",
                "Ensure that you are not rate limited when checking the status of a transaction.",
                format!("one outbound budget of {} requests/s shared by verify, expiry, reconciliation and payouts; 429s back off", c.flw_rate_per_second),
            );
            let item = "Sika: virtual cards are on only where Flutterwave has approved the account";
            if c.cards_enabled {
                report.warn("cards.enabled", item, "SIKA_CARDS_ENABLED is on: Flutterwave issues cards to approved accounts only; every load, funding and withdrawal waits for an approver; Sika never stores a card number or CVV");
            } else {
                report.pass(
                    "cards.enabled",
                    item,
                    "virtual cards are off (SIKA_CARDS_ENABLED unset): every card route refuses",
                );
            }
            let item = "Sika: metrics are served off the public port, to the monitoring network only";
            match c.metrics_listen {
                None => report.warn(
                    "metrics.listener",
                    item,
                    "SIKA_METRICS_LISTEN=off: nothing watches the backlog, workers or 429s",
                ),
                Some(a) if a.ip().is_loopback() => {
                    report.pass("metrics.listener", item, format!("http://{a}/metrics (loopback)"))
                }
                Some(a) if a.port() == c.listen.port() => {
                    report.fail("metrics.listener", item, format!("{a} shares the public port {}", c.listen.port()))
                }
                Some(a) => report.warn(
                    "metrics.listener",
                    item,
                    format!(
                        "http://{a}/metrics is reachable beyond this machine: firewall it to the monitoring network"
                    ),
                ),
            }
            stored(c, report).await;
        }
        Err(_) => report.fail(
            "database.checks",
            "Sika: the database, the audit log and backups",
            "not checked: fix the configuration first",
        ),
    }
    for (id, item, evidence) in super::BUILT_IN {
        report.pass(id, item, *evidence);
    }
    report.warn(
        "patches.current",
        "All OS, web server and app server security patches are up to date at this time, and new patches are applied in a commercially reasonable timeframe after they are made available by the hardware and software vendors",
        "Sika's CI audits its dependencies against the RustSec database; keep this machine's OS patched (e.g. unattended-upgrades) and upgrade Sika when a release says so",
    );
}

fn secrets(src: &dyn Source, report: &mut Report) {
    for (id, name) in [
        ("secrets.flw_secret_key", "FLW_SECRET_KEY"),
        ("secrets.flw_secret_hash", "FLW_SECRET_HASH"),
        ("secrets.data_key", "SIKA_DATA_KEY"),
        ("secrets.audit_key", "SIKA_AUDIT_KEY"),
    ] {
        match config::secret_with_origin(src, name) {
            Ok(Some((_, Origin::File(path)))) => {
                report.pass(id, ITEM_ENV, format!("{name} from {} (owner-only)", path.display()))
            }
            Ok(Some((_, Origin::Environment))) => report.warn(
                id,
                ITEM_ENV,
                format!("{name} is in the environment, which child processes and /proc can read: prefer {name}_FILE (systemd LoadCredential=)"),
            ),
            Ok(None) => report.fail(id, ITEM_ENV, format!("{name} is not set")),
            Err(e) => report.fail(id, ITEM_ENV, e.to_string()),
        }
    }
    match config::secret_with_origin(src, "FLW_SECRET_KEY") {
        Ok(Some(_)) => report.pass(
            "secrets.not_hardcoded",
            ITEM_HARDCODED,
            "read at start from FLW_SECRET_KEY(_FILE); the binary and repository hold none; placeholders are refused",
        ),
        _ => report.fail("secrets.not_hardcoded", ITEM_HARDCODED, "FLW_SECRET_KEY is missing or invalid"),
    }
}

fn flutterwave(src: &dyn Source, report: &mut Report) {
    let item = "Sika: the Flutterwave key matches the environment (live for go-live)";
    if let Ok(Some((key, _))) = config::secret_with_origin(src, "FLW_SECRET_KEY") {
        let k = key.expose();
        if k.starts_with("FLWSECK_TEST") {
            report.warn(
                "flutterwave.key_mode",
                item,
                "a test key (FLWSECK_TEST…): right for staging, not for taking real money",
            );
        } else if k.starts_with("FLWSECK-") {
            report.pass("flutterwave.key_mode", item, "a live key (FLWSECK-…)");
        } else {
            report.warn(
                "flutterwave.key_mode",
                item,
                "not shaped like a Flutterwave secret key (FLWSECK-… or FLWSECK_TEST…)",
            );
        }
    }
    let base = config::variable(src, "FLW_BASE_URL").unwrap_or_else(|| config::DEFAULT_FLW_BASE_URL.into());
    let item = "Sika: payments go to Flutterwave itself";
    if base.trim_end_matches('/') == config::DEFAULT_FLW_BASE_URL {
        report.pass("flutterwave.base_url", item, config::DEFAULT_FLW_BASE_URL);
    } else {
        report.warn(
            "flutterwave.base_url",
            item,
            format!("FLW_BASE_URL is {base} (an emulator or proxy?), not {}", config::DEFAULT_FLW_BASE_URL),
        );
    }
    let item = "We recommend the use of Secret Hash on your dashboard via Settings > Webhooks in order to verify that the webhook was sent by Flutterwave";
    match config::secret_with_origin(src, "FLW_SECRET_HASH") {
        Ok(Some((h, _))) if h.expose().chars().count() >= 16 => report.pass(
            "webhooks.secret_hash",
            item,
            "FLW_SECRET_HASH is set; every webhook's verif-hash is compared in constant time before it is stored",
        ),
        Ok(Some(_)) => report.warn(
            "webhooks.secret_hash",
            item,
            "FLW_SECRET_HASH is shorter than 16 characters: use a long random value",
        ),
        _ => report.fail("webhooks.secret_hash", item, "FLW_SECRET_HASH is not set: webhooks cannot be verified"),
    }
    report.pass(
        "webhooks.implemented",
        "Always implement webhooks when applicable",
        "POST /webhooks/flutterwave: stored sealed, deduplicated, confirmed by a verify call, answered within milliseconds",
    );
}

fn database(src: &dyn Source, report: &mut Report) {
    let item = "Store database credentials securely using secrets manager preferably.";
    match config::secret_with_origin(src, "SIKA_DATABASE_URL") {
        Ok(None) => report.pass("database.credentials", item, "SQLite (sqlite://sika.db): no credentials"),
        Ok(Some((url, origin))) => {
            let u = url.expose();
            if u.starts_with("sqlite:") {
                report.pass("database.credentials", item, "SQLite: no credentials");
            } else {
                let has_password = url::Url::parse(u).ok().and_then(|p| p.password().map(str::to_string)).is_some();
                match origin {
                    Origin::File(p) => report.pass(
                        "database.credentials",
                        item,
                        format!("SIKA_DATABASE_URL from {} (owner-only)", p.display()),
                    ),
                    Origin::Environment if has_password => report.warn(
                        "database.credentials",
                        item,
                        "the database password is in SIKA_DATABASE_URL in the environment: use SIKA_DATABASE_URL_FILE",
                    ),
                    Origin::Environment => {
                        report.pass("database.credentials", item, "no password in SIKA_DATABASE_URL")
                    }
                }
                let host = url::Url::parse(u).ok().and_then(|p| p.host_str().map(str::to_string)).unwrap_or_default();
                let local = host.is_empty()
                    || host == "localhost"
                    || host.starts_with("127.")
                    || host == "::1"
                    || host.starts_with('/');
                let tls = ["sslmode=require", "sslmode=verify-ca", "sslmode=verify-full"].iter().any(|m| u.contains(m));
                let item = "Sika: the database connection is encrypted when it leaves the machine";
                if local || tls {
                    report.pass(
                        "database.tls",
                        item,
                        if local { "the database is on this machine" } else { "sslmode requires TLS" },
                    );
                } else {
                    report.warn(
                        "database.tls",
                        item,
                        format!("{host} is remote and SIKA_DATABASE_URL has no sslmode=verify-full"),
                    );
                }
            }
        }
        Err(e) => report.fail("database.credentials", item, e.to_string()),
    }
}

fn sessions(src: &dyn Source, report: &mut Report) {
    match config::session_timeouts(src) {
        Ok((idle, absolute)) => {
            let mins = |d: Duration| d.as_secs() / 60;
            report.pass(
                "sessions.server_timeouts",
                "Session timeouts should be configured on the server",
                format!("kept in the database: idle {} min, absolute {} min", mins(idle), mins(absolute)),
            );
            report.pass(
                "sessions.max_duration",
                "Session duration should be limited to a maximum of 10 hours, after which the user must be required to authenticate again",
                format!("{} min (at most 600)", mins(absolute)),
            );
            let item = "Implement an idle session timeout";
            if idle >= absolute {
                // A session ends at the absolute limit anyway: an idle one as long never ends one sooner.
                report.fail(
                    "sessions.idle_timeout",
                    item,
                    format!("{} min idle is not less than the {} min absolute limit: there is no idle timeout; set SIKA_SESSION_IDLE_TIMEOUT to 30m or less", mins(idle), mins(absolute)),
                );
            } else if idle <= Duration::from_secs(30 * 60) {
                report.pass("sessions.idle_timeout", item, format!("{} min", mins(idle)));
            } else {
                report.warn("sessions.idle_timeout", item, format!("{} min: 30 or fewer is usual for a payments console", mins(idle)));
            }
        }
        Err(e) => report.fail("sessions.max_duration", "Session duration should be limited to a maximum of 10 hours, after which the user must be required to authenticate again", e.to_string()),
    }
}

fn tls(src: &dyn Source, report: &mut Report) {
    let item = "HTTPS is enforced on all pages and endpoints of your application";
    match config::variable(src, "SIKA_PUBLIC_URL") {
        Some(u) if u.starts_with("https://") => {
            report.pass("https.public_url", item, format!("served only over TLS at {u}"))
        }
        Some(u) => report.fail("https.public_url", item, format!("SIKA_PUBLIC_URL is {u}, not https://")),
        None => report.pass(
            "https.public_url",
            item,
            "served only over TLS (SIKA_LISTEN); plain HTTP only redirects when SIKA_HTTP_REDIRECT_LISTEN is set",
        ),
    }
    let item = "Sika: the TLS private key is readable by its owner only";
    match (config::variable(src, "SIKA_TLS_CERT_FILE"), config::variable(src, "SIKA_TLS_KEY_FILE")) {
        (Some(_), Some(key)) => match config::check_owner_only("SIKA_TLS_KEY_FILE", std::path::Path::new(&key)) {
            Ok(()) => report.pass("tls.key_file", item, format!("{key} (owner-only)")),
            Err(e) => report.fail("tls.key_file", item, e.to_string()),
        },
        _ => report.fail("tls.key_file", item, "SIKA_TLS_CERT_FILE and SIKA_TLS_KEY_FILE must both be set"),
    }
}

/// What the database holds: the notification URL, the audit log, backups.
async fn stored(c: &Config, report: &mut Report) {
    let item = "Sika: the database answers";
    if let Some(path) = sqlite_path(c.database_url.expose())
        && !std::path::Path::new(&path).exists()
    {
        return report.fail(
            "database.reachable",
            item,
            format!("{path} does not exist yet: start `sika serve` or run `sika migrate`"),
        );
    }
    let store = match Store::connect(&c.database_url).await {
        Ok(s) => s,
        Err(e) => return report.fail("database.reachable", item, format!("cannot open SIKA_DATABASE_URL: {e}")),
    };
    let versions = crate::store::applied_versions(&store).await.unwrap_or_default();
    let latest = crate::store::MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
    match versions.last().copied().unwrap_or(0) {
        v if v == latest => report.pass("database.reachable", item, format!("schema version {v}")),
        v => report.warn(
            "database.reachable",
            item,
            format!("schema version {v} of {latest}: `sika serve` or `sika migrate` applies the rest"),
        ),
    }

    let item = "Sika: approvers and admins are told by e-mail";
    let transport = crate::mail::Transport::or_broken(&c.mail);
    match crate::mail::reach(&store, &transport).await {
        Ok(r) if !r.configured => report.warn(
            "mail.reach",
            item,
            format!("mail is {}: set SIKA_SMTP_URL and SIKA_MAIL_FROM, or payouts wait unseen until someone opens the console", r.destination),
        ),
        Ok(r) if r.approvers == 0 => report.warn(
            "mail.reach",
            item,
            format!("mail is {}, but no enrolled approver receives approval mail: payouts wait unseen", r.destination),
        ),
        Ok(r) => report.pass(
            "mail.reach",
            item,
            format!("mail is {}; {} approver(s) and {} admin(s) would be reached", r.destination, r.approvers, r.admins),
        ),
        Err(e) => report.fail("mail.reach", item, e.to_string()),
    }

    let item = "Sika: notifications to the shop go over HTTPS";
    match store.setting(crate::payments::notify::URL_SETTING).await {
        Ok(Some(u)) if u.starts_with("https://") => {
            report.pass("notify.https", item, format!("notifications go to {}", without_query(&u)))
        }
        Ok(Some(u)) if !u.is_empty() => {
            report.fail("notify.https", item, format!("notifications go to {}: use https://", without_query(&u)))
        }
        Ok(_) => report.warn(
            "notify.https",
            item,
            "no notification URL is set (Settings): the shop learns outcomes only by asking",
        ),
        Err(e) => report.fail("notify.https", item, e.to_string()),
    }

    let auth = crate::auth::Auth::new(
        store.clone(),
        c.data_keys.clone(),
        c.audit_key.clone(),
        c.session_idle_timeout,
        c.session_absolute_timeout,
    );
    let items = [
        ("audit.privileged_changes", "Ensure to log all privileged changes"),
        ("audit.activities", "Log all user (customer) and administrative activities"),
    ];
    match auth.auditor.verify().await {
        Ok(Ok(n)) => {
            for (id, item) in items {
                report.pass(id, item, format!("the audit chain verifies: {n} entries, each hashed with the one before and keyed by SIKA_AUDIT_KEY"));
            }
        }
        Ok(Err(b)) => {
            for (id, item) in items {
                report.fail(id, item, format!("the audit chain is broken at entry {}: {}", b.seq, b.reason));
            }
        }
        Err(e) => {
            for (id, item) in items {
                report.fail(id, item, format!("cannot read the audit log: {e}"));
            }
        }
    }
    let item = "Store logs securely and follow international standards for log retention";
    let file = &c.audit_checkpoint_file;
    if file.exists() {
        let signer = crate::audit::checkpoint::Checkpoints::new(&c.audit_key, file);
        match signer.verify(&auth.auditor, file).await {
            Ok(k) => report.pass(
                "audit.checkpoints",
                item,
                format!(
                    "{k} signed checkpoints in {} agree with the log; entries are kept {} days by default (`sika audit purge` exports before deleting)",
                    file.display(),
                    crate::audit::DEFAULT_RETENTION_DAYS
                ),
            ),
            Err(why) => report.fail("audit.checkpoints", item, format!("{}: {why}", file.display())),
        }
    } else {
        report.warn(
            "audit.checkpoints",
            item,
            format!("no checkpoints yet at {} (serve writes one a minute)", file.display()),
        );
    }

    let last = store.setting(LAST_BACKUP_SETTING).await;
    backup_recent(report, last, store.backend());
    store.close().await;
}

/// Whether the last `sika backup` is at most 7 days old, on Sika's clock.
fn backup_recent(
    report: &mut Report,
    last: Result<Option<String>, crate::store::StoreError>,
    backend: crate::store::Backend,
) {
    let item = "Sika: a recent backup exists";
    match last {
        Ok(Some(at)) => match at.parse::<i64>() {
            Ok(ms) if crate::store::now_ms() - ms <= BACKUP_MAX_AGE_MS => {
                report.pass("backup.recent", item, format!("last `sika backup` at {}", crate::timefmt::iso(ms)))
            }
            Ok(ms) => report.warn(
                "backup.recent",
                item,
                format!("the last `sika backup` was at {}, more than 7 days ago", crate::timefmt::iso(ms)),
            ),
            Err(_) => report.fail("backup.recent", item, "the last backup's time is unreadable"),
        },
        Ok(None) if backend == crate::store::Backend::Postgres => report.warn(
            "backup.recent",
            item,
            "PostgreSQL: Sika cannot see pg_dump backups; take them as the README says and test a restore",
        ),
        Ok(None) => report.fail("backup.recent", item, "no `sika backup` has been taken"),
        Err(e) => report.fail("backup.recent", item, e.to_string()),
    }
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite:")?.trim_start_matches("//");
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

fn without_query(u: &str) -> String {
    u.split(['?', '#']).next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_backup_is_recent_for_seven_days_on_sikas_clock() {
        let clock = crate::clock::install_manual();
        let taken = crate::store::now_ms();
        let status = |clock: &crate::clock::ManualClock, by: u64| {
            clock.advance(std::time::Duration::from_secs(by * 86_400));
            let mut r = Report::default();
            backup_recent(&mut r, Ok(Some(taken.to_string())), crate::store::Backend::Sqlite);
            r.get("backup.recent").map(|f| f.status)
        };
        assert_eq!(status(&clock, 0), Some(super::super::Status::Pass));
        assert_eq!(status(&clock, 6), Some(super::super::Status::Pass), "six days on");
        assert_eq!(status(&clock, 2), Some(super::super::Status::Warn), "eight days on");
    }

    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        move |k: &str| map.get(k).cloned()
    }

    fn status(r: &Report, id: &str) -> super::super::Status {
        r.get(id).unwrap_or_else(|| panic!("no finding {id}: {}", r.text())).status
    }

    #[test]
    fn secrets_from_files_pass_from_the_environment_warn_and_weak_ones_fail() {
        use super::super::Status::*;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, value: &str, mode: u32| {
            let p = dir.path().join(name);
            std::fs::write(&p, value).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p.display().to_string()
        };
        let key = format!("FLWSECK-{}-X", crate::crypto::random::hex_id());
        let src = env(&[
            ("FLW_SECRET_KEY_FILE", file("k", &key, 0o600)),
            ("FLW_SECRET_HASH", crate::crypto::random::token()),
            ("SIKA_DATA_KEY_FILE", file("d", "x", 0o644)),
            ("SIKA_AUDIT_KEY", "changeme".into()),
            ("SIKA_SESSION_IDLE_TIMEOUT", "1h".into()),
        ]);
        let mut r = Report::default();
        secrets(&src, &mut r);
        flutterwave(&src, &mut r);
        sessions(&src, &mut r);
        assert_eq!(status(&r, "secrets.flw_secret_key"), Pass);
        assert_eq!(status(&r, "secrets.flw_secret_hash"), Warn, "in the environment");
        assert_eq!(status(&r, "secrets.data_key"), Fail, "group-readable file");
        assert!(r.get("secrets.data_key").unwrap().evidence.contains("chmod 600"));
        assert_eq!(status(&r, "secrets.audit_key"), Fail, "a placeholder");
        assert_eq!(status(&r, "flutterwave.key_mode"), Pass, "a live key");
        assert_eq!(status(&r, "webhooks.secret_hash"), Pass);
        assert_eq!(status(&r, "sessions.idle_timeout"), Warn, "an hour idle");
        assert!(!r.text().contains(&key), "a secret never appears in the report");
        // An idle timeout as long as the absolute limit is none at all.
        for (idle, absolute) in [("10h", "10h"), ("1h", "1h")] {
            let mut r = Report::default();
            let src =
                env(&[("SIKA_SESSION_IDLE_TIMEOUT", idle.into()), ("SIKA_SESSION_ABSOLUTE_TIMEOUT", absolute.into())]);
            sessions(&src, &mut r);
            assert_eq!(status(&r, "sessions.idle_timeout"), Fail, "idle {idle}, absolute {absolute}");
        }

        let mut r = Report::default();
        let weak = env(&[
            ("FLW_SECRET_KEY", "FLWSECK_TEST-abc-X".into()),
            ("FLW_SECRET_HASH", "short".into()),
            ("SIKA_SESSION_ABSOLUTE_TIMEOUT", "11h".into()),
            ("FLW_BASE_URL", "http://127.0.0.1:8081/v3".into()),
        ]);
        flutterwave(&weak, &mut r);
        sessions(&weak, &mut r);
        assert_eq!(status(&r, "flutterwave.key_mode"), Warn, "a test key");
        assert_eq!(status(&r, "flutterwave.base_url"), Warn, "not Flutterwave");
        assert_eq!(status(&r, "webhooks.secret_hash"), Warn, "a short hash");
        assert_eq!(status(&r, "sessions.max_duration"), Fail, "eleven hours");
        let mut r = Report::default();
        flutterwave(&env(&[]), &mut r);
        assert_eq!(status(&r, "webhooks.secret_hash"), Fail, "no hash");
    }

    #[test]
    fn database_passwords_in_the_environment_and_unencrypted_remote_databases_warn() {
        use super::super::Status::*;
        let mut r = Report::default();
        database(&env(&[("SIKA_DATABASE_URL", "postgres://sika:pw-123456@db.internal/sika".into())]), &mut r);
        assert_eq!(status(&r, "database.credentials"), Warn);
        assert_eq!(status(&r, "database.tls"), Warn);
        let mut r = Report::default();
        database(&env(&[("SIKA_DATABASE_URL", "postgres://sika@127.0.0.1/sika".into())]), &mut r);
        assert_eq!((status(&r, "database.credentials"), status(&r, "database.tls")), (Pass, Pass));
    }

    #[test]
    fn a_plain_http_public_url_and_a_readable_tls_key_fail() {
        use super::super::Status::*;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "k").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let src = env(&[
            ("SIKA_PUBLIC_URL", "http://pay.example.com/".into()),
            ("SIKA_TLS_CERT_FILE", "/x.pem".into()),
            ("SIKA_TLS_KEY_FILE", key.display().to_string()),
        ]);
        let mut r = Report::default();
        tls(&src, &mut r);
        assert_eq!((status(&r, "https.public_url"), status(&r, "tls.key_file")), (Fail, Fail));
    }
}
