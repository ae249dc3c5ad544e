//! The real `sika` binary: refusal to start on bad configuration, secrets never
//! in logs, and the demo's start-up and clean shutdown.

use std::io::{BufRead as _, BufReader, Read as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sika");

/// A complete, valid `serve` environment with freshly generated secrets.
struct ServeEnv {
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

impl ServeEnv {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = sika::server::tls::self_signed().unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
        sika::fsutil::write_private(&dir.path().join("key.pem"), key.as_bytes()).unwrap();
        let p = |f: &str| dir.path().join(f).display().to_string();
        let vars = vec![
            ("SIKA_DATABASE_URL".into(), format!("sqlite://{}", p("sika.db"))),
            ("SIKA_LISTEN".into(), "127.0.0.1:0".into()),
            ("SIKA_METRICS_LISTEN".into(), "127.0.0.1:0".into()),
            ("SIKA_TLS_CERT_FILE".into(), p("cert.pem")),
            ("SIKA_TLS_KEY_FILE".into(), p("key.pem")),
            ("SIKA_DATA_KEY".into(), sika::crypto::keyring::KeyRing::generate_text("k1")),
            ("SIKA_AUDIT_KEY".into(), sika::crypto::random::token()),
            ("FLW_SECRET_KEY".into(), format!("FLWSECK_TEST-{}-X", sika::crypto::random::hex_id())),
            ("FLW_SECRET_HASH".into(), sika::crypto::random::token()),
        ];
        Self { dir, vars }
    }

    fn without(mut self, name: &str) -> Self {
        self.vars.retain(|(k, _)| k != name);
        self
    }

    fn with(mut self, name: &str, value: &str) -> Self {
        self.vars.retain(|(k, _)| k != name);
        self.vars.push((name.into(), value.into()));
        self
    }

    fn get(&self, name: &str) -> String {
        self.vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }
}

/// Runs `serve` expecting a refusal; returns stderr.
fn refusal(env: &ServeEnv) -> String {
    let out = env.command(&["serve"]).output().unwrap();
    assert!(!out.status.success(), "serve started although it should have refused");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.trim().lines().count(), 1, "one sentence, not a dump: {stderr}");
    stderr
}

#[test]
fn serve_without_flw_secret_key_names_it() {
    let stderr = refusal(&ServeEnv::new().without("FLW_SECRET_KEY"));
    assert!(stderr.contains("FLW_SECRET_KEY"), "{stderr}");
    let stderr = refusal(&ServeEnv::new().with("FLW_SECRET_KEY", ""));
    assert!(stderr.contains("FLW_SECRET_KEY"), "{stderr}");
    for name in ["SIKA_DATA_KEY", "SIKA_AUDIT_KEY", "FLW_SECRET_HASH", "SIKA_TLS_CERT_FILE"] {
        let stderr = refusal(&ServeEnv::new().without(name));
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
}

#[test]
fn a_world_or_group_readable_secret_file_is_refused() {
    let env = ServeEnv::new();
    let path = env.dir.path().join("flw_key");
    std::fs::write(&path, env.get("FLW_SECRET_KEY")).unwrap();
    for mode in [0o644, 0o640] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let env = ServeEnv::new().without("FLW_SECRET_KEY").with("FLW_SECRET_KEY_FILE", path.to_str().unwrap());
        let stderr = refusal(&env);
        assert!(stderr.contains("FLW_SECRET_KEY_FILE") && stderr.contains("group or others"), "{stderr}");
    }
    // The TLS private key is a secret file too.
    let env = ServeEnv::new();
    std::fs::set_permissions(env.get("SIKA_TLS_KEY_FILE"), std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(refusal(&env).contains("SIKA_TLS_KEY_FILE"));
}

#[test]
fn session_lifetime_above_ten_hours_and_bad_durations_are_refused() {
    let stderr = refusal(&ServeEnv::new().with("SIKA_SESSION_ABSOLUTE_TIMEOUT", "11h"));
    assert!(stderr.contains("SIKA_SESSION_ABSOLUTE_TIMEOUT"), "{stderr}");
    let stderr = refusal(&ServeEnv::new().with("SIKA_SESSION_IDLE_TIMEOUT", "15 minutes"));
    assert!(stderr.contains("SIKA_SESSION_IDLE_TIMEOUT"), "{stderr}");
}

/// Waits for the line that announces the HTTPS address and returns it.
fn wait_for_https(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(i) = line.find("https://") {
                let _ = tx.send(line[i..].trim_end_matches('/').to_string());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("no https:// line within 30 s")
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "did not stop within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn trusting_client(cert_file: &Path) -> reqwest::Client {
    let pem = std::fs::read(cert_file).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn no_configured_secret_ever_appears_in_the_logs() {
    let env = ServeEnv::new();
    let mut child =
        env.command(&["serve"]).env("SIKA_LOG", "trace").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let base = wait_for_https(&mut child);
    let client = trusting_client(Path::new(&env.get("SIKA_TLS_CERT_FILE")));
    let key = env.get("FLW_SECRET_KEY");
    // A full cycle: pages, errors, refused bodies, and the secrets themselves sent as input.
    assert_eq!(client.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(client.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
    assert_eq!(client.get(format!("{base}/nope")).send().await.unwrap().status(), 404);
    let res = client
        .post(format!("{base}/api/v1/x"))
        .header("content-type", "application/xml")
        .body("<a/>")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    let _ = client.get(format!("{base}/healthz")).bearer_auth(&key).send().await.unwrap();
    let status = terminate(&mut child);
    assert!(status.success(), "serve should exit 0 on SIGTERM, got {status}");
    let mut logs = String::new();
    child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    assert!(logs.contains("request completed"), "the logs were captured: {logs}");
    for name in ["SIKA_DATA_KEY", "SIKA_AUDIT_KEY", "FLW_SECRET_KEY", "FLW_SECRET_HASH"] {
        let value = env.get(name);
        assert!(!logs.contains(&value), "{name} appeared in the logs");
        // Parts of a key ring entry would leak the key too.
        if let Some((_, raw)) = value.split_once(':') {
            assert!(!logs.contains(raw), "{name}'s key material appeared in the logs");
        }
    }
    let key_pem = std::fs::read_to_string(env.get("SIKA_TLS_KEY_FILE")).unwrap();
    let key_body: String = key_pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!logs.contains(&key_body[..32]), "the TLS key appeared in the logs");
    for line in logs.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        assert!(v.get("level").is_some() && v.get("timestamp").is_some());
        // A clean run and a clean shutdown (workers stop before the database closes) log no error.
        assert_ne!(v["level"], "ERROR", "{line}");
    }
    assert!(logs.contains("stopped cleanly"));
}

#[tokio::test]
async fn demo_prepares_its_directory_serves_https_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut child = start_demo(&data);
    let base = wait_for_https(&mut child);
    let client = trusting_client(&data.join("tls/cert.pem"));
    assert_eq!(client.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    for name in ["SIKA_DATA_KEY", "SIKA_AUDIT_KEY", "FLW_SECRET_KEY", "FLW_SECRET_HASH"] {
        let mode = std::fs::metadata(data.join("secrets").join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
    for f in ["tls/key.pem", "sika.db"] {
        assert_eq!(std::fs::metadata(data.join(f)).unwrap().permissions().mode() & 0o077, 0, "{f} is private");
    }
    // An in-flight request finishes during shutdown.
    let slow = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/readyz");
        async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    let status = terminate(&mut child);
    assert!(status.success(), "demo should exit 0 on SIGTERM, got {status}");
    if let Ok(Ok(code)) = slow.await {
        assert_eq!(code, 200);
    }
    // The database was left consistent: it opens and migrates to nothing new.
    let out = Command::new(BIN).args(["migrate", "--data-dir", data.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A second start reuses the generated secrets.
    let before = std::fs::read(data.join("secrets/SIKA_DATA_KEY")).unwrap();
    let mut again = start_demo(&data);
    wait_for_https(&mut again);
    assert!(terminate(&mut again).success());
    assert_eq!(std::fs::read(data.join("secrets/SIKA_DATA_KEY")).unwrap(), before);
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["demo", "--help"],
        vec!["migrate", "--help"],
        vec!["emulator", "--help"],
        vec!["user", "add", "--help"],
        vec!["apikey", "create", "--help"],
        vec!["audit", "verify", "--help"],
        vec!["keys", "rotate", "--help"],
        vec!["check", "--help"],
        vec!["backup", "--help"],
        vec!["restore", "--help"],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{args:?}");
    }
}

/// `sika demo` on `data`, on any free port, its output read by the caller.
fn start_demo(data: &Path) -> Child {
    Command::new(BIN)
        .args(["demo", "--data-dir", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn run_with_stdin(args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// A fresh demo, seeded: its process, its `https://` base, and the lines it prints after it.
struct SeededDemo {
    child: Child,
    base: String,
    lines: std::sync::mpsc::Receiver<String>,
}

impl SeededDemo {
    fn start(data: &Path) -> Self {
        let mut child = start_demo(data);
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut demo = SeededDemo { child, base: String::new(), lines };
        demo.base = demo.wait_for("sika demo is ready: ", Duration::from_secs(90)).trim_end_matches('/').to_string();
        demo
    }

    /// Reads the demo's output until a line starts with `prefix` (within `within`); returns its rest.
    fn wait_for(&self, prefix: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) else { continue };
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_string();
            }
        }
        panic!("no {prefix:?} line within {within:?}")
    }

    /// The demo's operator, signed in to its console.
    async fn operator(&self, data: &Path) -> (crate::support::browser::Browser, Vec<String>) {
        let users = std::fs::read_to_string(data.join("demo-users.txt")).unwrap();
        let operator: Vec<String> = users
            .lines()
            .find(|l| l.starts_with("operator "))
            .expect("an operator")
            .split(' ')
            .map(String::from)
            .collect();
        let pem = std::fs::read_to_string(data.join("tls/cert.pem")).unwrap();
        let mut b =
            crate::support::browser::Browser::new(&self.base, crate::support::client_for(&pem).build().unwrap());
        let code = crate::support::browser::code(&operator[3], 0);
        assert_eq!(b.login(&operator[1], &operator[2], &code).await.status, 303, "the operator signs in");
        (b, operator)
    }
}

/// A newcomer's demo: an operator and an approver besides the admin (in a 0600 file), and a
/// few payments, a refund, payouts waiting for approval and a batch, made through the API and
/// the emulator — the operator signs in and sees them.
#[tokio::test]
async fn the_demo_has_people_and_payments_to_explore() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut demo = SeededDemo::start(&data);
    let seeded = demo.wait_for("demo data: ", Duration::from_secs(90));
    for what in ["9 payments", "a refund (completed)", "2 payouts waiting for approval", "a batch of 2 payouts"] {
        assert!(seeded.contains(what), "{what}: {seeded}");
    }
    let users = std::fs::read_to_string(data.join("demo-users.txt")).unwrap();
    assert_eq!(std::fs::metadata(data.join("demo-users.txt")).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(users.lines().any(|l| l.starts_with("approver ")) && users.lines().any(|l| l.starts_with("admin ")));
    let (mut b, operator) = demo.operator(&data).await;
    let list = b.get("/payments").await;
    for reference in ["demo-1001", "demo-1005", "demo-1007", "demo-1008"] {
        assert!(list.body.contains(reference), "{reference}");
    }
    assert!(b.get("/payments/new").await.status == 200, "the operator may make a payment link");
    let payouts = b.get("/payouts?status=awaiting_approval").await;
    assert!(payouts.body.contains("demo-po-1"), "{}", payouts.body);
    // No mail server needed: mail is one .eml a message in DIR/mail — the approver's digest of the
    // seeded payouts, and the operator's "new sign-in" — and each file is the reader's alone.
    let deadline = Instant::now() + Duration::from_secs(60);
    let wanted = ["wait for your approval", "a new sign-in to your account"];
    loop {
        let mails: Vec<(String, u32)> = std::fs::read_dir(data.join("mail"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| {
                        (
                            std::fs::read_to_string(e.path()).unwrap_or_default(),
                            e.metadata().unwrap().permissions().mode(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if wanted.iter().all(|w| mails.iter().any(|(m, _)| m.contains(w))) {
            assert!(mails.iter().all(|(_, mode)| mode & 0o077 == 0), "mail files are 0600");
            assert!(mails.iter().all(|(m, _)| !m.contains(&operator[2])), "no password in a mail");
            break;
        }
        assert!(Instant::now() < deadline, "the demo wrote no digest and sign-in mail to DIR/mail");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(terminate(&mut demo.child).success());
}

/// The demo's late payment takes real minutes: `demo-1009`'s link expires five minutes after the
/// start, the reconciler closes the checkout unpaid, then its customer's transfer lands and the
/// webhook's verified success finds a closed checkout — under review, never paid, never lost.
#[tokio::test]
async fn the_demo_shows_a_late_payment_under_review() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut demo = SeededDemo::start(&data);
    demo.wait_for("demo data: ", Duration::from_secs(90));
    let (mut b, _) = demo.operator(&data).await;
    let before = b.get("/payments/demo-1009").await;
    assert!(before.body.contains("Pending"), "open until its link expires: {}", before.body);
    let later = demo.wait_for("demo data, later: ", Duration::from_secs(9 * 60));
    assert_eq!(later, "a late payment under review (demo-1009)");
    let page = b.get("/payments/demo-1009").await;
    assert!(page.body.contains("Needs review"), "{}", page.body);
    assert!(page.body.contains("Money arrived after it closed"), "the timeline says why: {}", page.body);
    assert!(terminate(&mut demo.child).success());
}

/// A demo directory, prepared by running `sika demo` once and stopping it.
fn demo_directory() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut child = start_demo(&data);
    wait_for_https(&mut child);
    assert!(terminate(&mut child).success());
    (dir, data)
}

#[tokio::test]
async fn operator_commands_on_a_demo_directory() {
    let (_dir, data) = demo_directory();
    let d = data.to_str().unwrap();

    let creds = std::fs::read_to_string(data.join("admin-credentials.txt")).unwrap();
    assert_eq!(std::fs::metadata(data.join("admin-credentials.txt")).unwrap().permissions().mode() & 0o777, 0o600);
    for key in ["email=", "password=", "totp_secret="] {
        assert!(creds.lines().any(|l| l.starts_with(key) && l.len() > key.len()), "{key}");
    }

    let weak = run_with_stdin(
        &["user", "add", "--data-dir", d, "--email", "w@example.com", "--role", "viewer", "--password-stdin"],
        "password\n",
    );
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 12 characters"), "the reason is given");
    let bad_role = run_with_stdin(
        &["user", "add", "--data-dir", d, "--email", "r@example.com", "--role", "root", "--password-stdin"],
        "Str0ng!Enough#Pass\n",
    );
    assert!(!bad_role.status.success());
    let ok = run_with_stdin(
        &["user", "add", "--data-dir", d, "--email", "ops@example.com", "--role", "operator", "--password-stdin"],
        "Str0ng!Enough#Pass\n",
    );
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let out = String::from_utf8_lossy(&ok.stdout).into_owned();
    let secret = out.lines().find_map(|l| l.strip_prefix("totp_secret=")).expect("totp_secret=");
    assert!(secret.len() >= 32 && secret.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
    let dup = run_with_stdin(
        &["user", "add", "--data-dir", d, "--email", "OPS@example.com", "--role", "viewer", "--password-stdin"],
        "Str0ng!Enough#Pass\n",
    );
    assert!(!dup.status.success(), "e-mails are unique, case-insensitively");

    let key = Command::new(BIN)
        .args(["apikey", "create", "--data-dir", d, "--name", "shop", "--scopes", "checkouts,read"])
        .output()
        .unwrap();
    assert!(key.status.success());
    assert!(String::from_utf8_lossy(&key.stdout).lines().any(|l| l.starts_with("api_key=sk_")));
    let bad = Command::new(BIN)
        .args(["apikey", "create", "--data-dir", d, "--name", "shop", "--scopes", "root"])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    let verify = Command::new(BIN).args(["audit", "verify", "--data-dir", d]).output().unwrap();
    let text = String::from_utf8_lossy(&verify.stdout).into_owned();
    assert!(verify.status.success() && text.starts_with("audit chain ok: "), "{text}");
    let first = text.lines().next().unwrap_or("");
    let n: u64 = first.trim_start_matches("audit chain ok: ").trim_end_matches(" entries").parse().unwrap();
    assert!(n >= 3, "demo admin, user add, apikey create: {n}");

    let export = Command::new(BIN).args(["audit", "export", "--data-dir", d]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&export.stdout).lines().count() as u64, n);

    // Tamper with one entry, as someone with the database file would.
    {
        use sqlx::Connection as _;
        let mut c =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", data.join("sika.db").display())).await.unwrap();
        sqlx::raw_sql("DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2")
            .execute(&mut c)
            .await
            .unwrap();
    }
    let verify = Command::new(BIN).args(["audit", "verify", "--data-dir", d]).output().unwrap();
    assert!(!verify.status.success());
    assert!(String::from_utf8_lossy(&verify.stderr).contains("entry 2"), "{}", String::from_utf8_lossy(&verify.stderr));
}

fn sqlite_of(data: &Path) -> String {
    format!("sqlite://{}", data.join("sika.db").display())
}

/// The demo checkpoints the audit chain's head when it stops; deleting the
/// newest entries afterwards is caught by `sika audit verify`.
#[tokio::test]
async fn deleting_the_newest_audit_entries_is_caught_against_the_checkpoints() {
    let (_dir, data) = demo_directory();
    let d = data.to_str().unwrap();
    let checkpoints = data.join("audit-checkpoints");
    assert!(checkpoints.exists(), "a checkpoint is written at shutdown");
    let verify = Command::new(BIN).args(["audit", "verify", "--data-dir", d]).output().unwrap();
    let text = String::from_utf8_lossy(&verify.stdout).into_owned();
    assert!(verify.status.success(), "{text}{}", String::from_utf8_lossy(&verify.stderr));
    assert!(text.contains("audit checkpoints ok: 1 checkpoints"), "{text}");
    {
        use sqlx::Connection as _;
        let mut c = sqlx::SqliteConnection::connect(&sqlite_of(&data)).await.unwrap();
        sqlx::raw_sql("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)")
            .execute(&mut c)
            .await
            .unwrap();
    }
    for args in [
        vec!["audit", "verify", "--data-dir", d],
        vec!["audit", "verify", "--data-dir", d, "--checkpoints", checkpoints.to_str().unwrap()],
    ] {
        let verify = Command::new(BIN).args(&args).output().unwrap();
        assert!(!verify.status.success(), "the chain alone verifies; the checkpoint does not");
        let err = String::from_utf8_lossy(&verify.stderr).into_owned();
        assert!(err.contains("entries were deleted"), "{err}");
    }
}

/// The last admin locked out can be let in from the command line; audited.
#[tokio::test]
async fn a_locked_out_user_is_unlocked_from_the_command_line() {
    let (_dir, data) = demo_directory();
    let d = data.to_str().unwrap();
    {
        use sqlx::Connection as _;
        let mut c = sqlx::SqliteConnection::connect(&sqlite_of(&data)).await.unwrap();
        sqlx::raw_sql("UPDATE users SET locked_until = 99999999999999, lockouts = 7").execute(&mut c).await.unwrap();
    }
    let unknown =
        Command::new(BIN).args(["user", "unlock", "--data-dir", d, "--email", "nobody@example.com"]).output().unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user has this e-mail address"));
    let ok = Command::new(BIN)
        .args(["user", "unlock", "--data-dir", d, "--email", "admin@sika-demo.test"])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    use sqlx::Connection as _;
    let mut c = sqlx::SqliteConnection::connect(&sqlite_of(&data)).await.unwrap();
    let (until, lockouts): (i64, i64) =
        sqlx::query_as("SELECT locked_until, lockouts FROM users").fetch_one(&mut c).await.unwrap();
    assert_eq!((until, lockouts), (0, 0), "unlocked, and the doubling starts over");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'user.unlock' AND actor = 'cli'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

/// `sika check` on a demo directory fails only for want of a backup; after
/// `sika backup` that line passes; `sika restore` brings the database back
/// and verifies its audit chain. The backup key comes from a file.
#[tokio::test]
async fn check_backup_and_restore_from_the_command_line() {
    let (dir, data) = demo_directory();
    let d = data.to_str().unwrap();
    let key_file = dir.path().join("backup.key");
    std::fs::write(&key_file, sika::crypto::random::token()).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("SIKA_BACKUP_KEY_FILE", &key_file)
            .env_remove("SIKA_BACKUP_KEY")
            .output()
            .unwrap()
    };
    let findings = |out: &std::process::Output| -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["id"].as_str().unwrap().to_string(), f["status"].clone()))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let first = run(&["check", "--data-dir", d, "--json"]);
    assert!(!first.status.success(), "a FAIL exits non-zero");
    let f = findings(&first);
    assert_eq!(f["backup.recent"], "FAIL");
    assert_eq!(f["secrets.flw_secret_key"], "PASS", "the demo's secrets are files");
    assert_eq!(f["flutterwave.key_mode"], "WARN", "the demo has a test key");
    let fails: Vec<&String> = f.as_object().unwrap().iter().filter(|(_, s)| *s == "FAIL").map(|(k, _)| k).collect();
    assert_eq!(fails, vec!["backup.recent"], "{f}");

    let backup = dir.path().join("demo.bak");
    let out = run(&["backup", "--data-dir", d, "--output", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777, 0o600);
    let second = run(&["check", "--data-dir", d, "--json"]);
    assert_eq!(findings(&second)["backup.recent"], "PASS");
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stdout));
    let text = run(&["check", "--data-dir", d]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("PASS  backup.recent") && text.contains("0 failed"), "{text}");

    let restored = dir.path().join("restored.db");
    let out =
        run(&["restore", "--data-dir", d, "--input", backup.to_str().unwrap(), "--to", restored.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("audit chain ok"), "{said}");
    let without_key = Command::new(BIN)
        .args(["backup", "--data-dir", d, "--output", dir.path().join("x.bak").to_str().unwrap()])
        .env_remove("SIKA_BACKUP_KEY")
        .env_remove("SIKA_BACKUP_KEY_FILE")
        .output()
        .unwrap();
    assert!(!without_key.status.success());
    assert!(String::from_utf8_lossy(&without_key.stderr).contains("SIKA_BACKUP_KEY is missing"));
}

/// Metrics are served on their own loopback listener, never on the public
/// port, and count what happened: requests by route template (unmatched
/// paths share one label), webhooks received, duplicated and refused,
/// failed sign-ins, the workers' heartbeats, money by status.
#[tokio::test]
async fn metrics_count_requests_webhooks_and_sign_ins_on_their_own_listener() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let env = ServeEnv::new().with("SIKA_METRICS_LISTEN", &format!("127.0.0.1:{port}"));
    let mut child = env.command(&["serve"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let base = wait_for_https(&mut child);
    let client = trusting_client(Path::new(&env.get("SIKA_TLS_CERT_FILE")));
    for _ in 0..3 {
        assert_eq!(client.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    }
    assert_eq!(
        client.get(format!("{base}/probe-{}", sika::crypto::random::hex_id())).send().await.unwrap().status(),
        404
    );
    let hook = |hash: String| {
        client
            .post(format!("{base}/webhooks/flutterwave"))
            .header("verif-hash", hash)
            .json(&serde_json::json!({"event": "charge.completed", "data": {"id": 42, "tx_ref": "m-1", "status": "successful"}}))
            .send()
    };
    assert_eq!(hook("forged".into()).await.unwrap().status(), 401);
    assert_eq!(hook(env.get("FLW_SECRET_HASH")).await.unwrap().status(), 200);
    assert_eq!(hook(env.get("FLW_SECRET_HASH")).await.unwrap().status(), 200);
    // A wrong password through the real form (its CSRF cookie and field).
    let login = client.get(format!("{base}/login")).send().await.unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let page = login.text().await.unwrap();
    let csrf = page.split("name=\"csrf_token\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let res = client
        .post(format!("{base}/login"))
        .header("cookie", cookie)
        .header("origin", &base)
        .form(&[
            ("email", "nobody@example.com"),
            ("password", "Wrong-Password-1!"),
            ("totp", "123456"),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "refused on the form");

    assert_eq!(client.get(format!("{base}/metrics")).send().await.unwrap().status(), 404, "not on the public port");
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    let has = |line: &str| assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    has(r#"sika_http_requests_total{route="/healthz",method="GET",status="200"} 3"#);
    // The probe and the try at /metrics on the public port.
    has(r#"sika_http_requests_total{route="unmatched",method="GET",status="404"} 2"#);
    has(r#"sika_webhooks_total{outcome="refused"} 1"#);
    has(r#"sika_webhooks_total{outcome="received"} 1"#);
    has(r#"sika_webhooks_total{outcome="duplicate"} 1"#);
    has("sika_signin_failures_total 1");
    // Payouts waiting at Flutterwave (NEW) and needing a person: an alert can fire on them.
    has("sika_payouts_waiting_at_flutterwave 0");
    has("sika_payouts_waiting_at_flutterwave_oldest_seconds 0.0");
    has("sika_payouts_needing_attention 0");
    assert!(!text.contains("probe-"), "raw paths never become labels");
    assert!(text.contains(r#"sika_http_request_duration_seconds_bucket{le="#));
    assert!(text.contains(r#"sika_worker_heartbeat_age_seconds{worker="inbox"}"#), "{text}");
    assert!(text.contains("sika_inbox_backlog "));
    assert!(text.contains("sika_upstream_rate_limited_total 0"));
    assert!(text.ends_with("# EOF\n"));
    assert!(terminate(&mut child).success());
}
