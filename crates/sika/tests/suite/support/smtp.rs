//! A real SMTP server for the mail tests: `smtp_server.py` (aiosmtpd from PyPI, installed by
//! `scripts/test`) on a loopback port, STARTTLS and AUTH required, with a certificate made at run
//! time that Sika trusts through `SIKA_SMTP_CA_FILE`. Without aiosmtpd the tests say so loudly,
//! and fail under CI rather than pass without having run.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Smtp {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub ca_file: PathBuf,
    user: String,
    password: String,
}

fn aiosmtpd_present() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Smtp {
    /// A server on a free port, or `None` (said loudly; a failure under CI) without aiosmtpd.
    pub fn start() -> Option<Smtp> {
        Smtp::start_on(super::cluster::free_port())
    }

    pub fn start_on(port: u16) -> Option<Smtp> {
        let mut s = Smtp::prepared(port)?;
        s.run();
        Some(s)
    }

    /// Its certificate and directories made, not yet listening ([`Smtp::run`] starts it).
    pub fn prepared(port: u16) -> Option<Smtp> {
        if !aiosmtpd_present() {
            assert!(
                std::env::var_os("CI").is_none(),
                "aiosmtpd is not installed (python3 -m pip install aiosmtpd): the mail tests cannot run under CI"
            );
            eprintln!(
                "#### SKIPPED: aiosmtpd is not installed (scripts/test installs it): mail tests did NOT run ####"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = sika::server::tls::self_signed().unwrap();
        let ca_file = dir.path().join("smtp-cert.pem");
        std::fs::write(&ca_file, &cert).unwrap();
        super::cluster::write_private(&dir.path().join("smtp-key.pem"), &key);
        std::fs::create_dir(dir.path().join("mail")).unwrap();
        Some(Smtp {
            child: None,
            port,
            dir,
            ca_file,
            user: format!("sika-{}", sika::crypto::random::hex_id()),
            // A '+', '/' or '=' in it exercises the URL's percent-decoding.
            password: format!("{}+/=", sika::crypto::random::token()),
        })
    }

    /// Starts listening (again, after [`Smtp::stop`]).
    pub fn run(&mut self) {
        use std::io::BufRead as _;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/suite/support/smtp_server.py");
        let d = self.dir.path();
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--port", &self.port.to_string()])
            .args(["--cert", self.ca_file.to_str().unwrap()])
            .args(["--key", d.join("smtp-key.pem").to_str().unwrap()])
            .args(["--maildir", d.join("mail").to_str().unwrap()])
            // `--name=value`: a generated password may begin with `-`.
            .arg(format!("--user={}", self.user))
            .arg(format!("--password={}", self.password))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the SMTP server");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if line.trim() == "listening" {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(30)).expect("the SMTP server did not start");
        self.child = Some(child);
    }

    /// `SIKA_SMTP_URL` for this server (STARTTLS required: plain `smtp://`), credentials percent-encoded.
    pub fn url(&self) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20");
        format!("smtp://{}:{}@127.0.0.1:{}", enc(&self.user), enc(&self.password), self.port)
    }

    /// The variables that point Sika at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("SIKA_SMTP_URL".into(), self.url()),
            ("SIKA_SMTP_CA_FILE".into(), self.ca_file.display().to_string()),
            ("SIKA_MAIL_FROM".into(), "Sika <sika@shop.example>".into()),
        ]
    }

    /// Every message received so far, whole (headers and body).
    pub fn messages(&self) -> Vec<String> {
        let mut out: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(self.dir.path().join("mail"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .map(|e| (e.metadata().unwrap().modified().unwrap(), std::fs::read_to_string(e.path()).unwrap()))
            .collect();
        out.sort();
        out.into_iter().map(|(_, m)| m).collect()
    }

    /// Waits (at most `limit`) until a message satisfies `pred`; returns it.
    pub async fn wait_for(&self, limit: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(m) = self.messages().into_iter().find(|m| pred(m)) {
                return m;
            }
            assert!(Instant::now() < deadline, "no mail {what} arrived within {limit:?}; got: {:#?}", self.subjects());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Each message's recipient and subject.
    pub fn subjects(&self) -> Vec<String> {
        self.messages().iter().map(|m| format!("{} | {}", header(m, "X-Test-Rcpt"), header(m, "Subject"))).collect()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A header's value (unfolded), or "".
pub fn header(message: &str, name: &str) -> String {
    let mut lines = message.split("\r\n").flat_map(|l| l.split('\n'));
    let prefix = format!("{}:", name.to_ascii_lowercase());
    let mut value = String::new();
    let mut found = false;
    for l in lines.by_ref() {
        if l.is_empty() {
            break;
        }
        if found {
            if l.starts_with(' ') || l.starts_with('\t') {
                value.push_str(l);
                continue;
            }
            break;
        }
        if l.to_ascii_lowercase().starts_with(&prefix) {
            value = l[prefix.len()..].trim().to_string();
            found = true;
        }
    }
    value
}

/// The body after the headers, with quoted-printable soft line breaks joined.
pub fn body(message: &str) -> String {
    let b = message.split_once("\r\n\r\n").or_else(|| message.split_once("\n\n")).map_or("", |(_, b)| b);
    b.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
}
