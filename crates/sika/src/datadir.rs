//! A demo directory: generated secrets, certificate and SQLite database in one
//! folder. `sika demo` creates it; every database command's `--data-dir DIR`
//! reads it instead of the environment.

use std::path::{Path, PathBuf};

use crate::config::{ProcessEnv, Source};
use crate::crypto::{keyring::KeyRing, random};
use crate::fsutil;

/// The secrets a demo generates, each in `DIR/secrets/NAME` (mode 0600).
pub const SECRETS: [&str; 4] = ["SIKA_DATA_KEY", "SIKA_AUDIT_KEY", "FLW_SECRET_KEY", "FLW_SECRET_HASH"];

#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
    listen: Option<String>,
    flw_base_url: Option<String>,
}

impl DataDir {
    /// Opens a directory that `sika demo` has prepared.
    pub fn open(root: &Path) -> Result<Self, String> {
        let root = root
            .canonicalize()
            .map_err(|_| format!("the data directory {} does not exist (run sika demo first).", root.display()))?;
        Ok(Self { root, listen: None, flw_base_url: None })
    }

    /// Creates the directory, its generated secrets and certificate, keeping any already there.
    pub fn prepare(root: &Path) -> Result<Self, String> {
        let io = |what: &str, e: std::io::Error| format!("cannot prepare {what} in {}: {e}.", root.display());
        fsutil::ensure_private_dir(root).map_err(|e| io("the data directory", e))?;
        let dir = Self::open(root)?;
        fsutil::ensure_private_dir(&dir.root.join("secrets")).map_err(|e| io("secrets/", e))?;
        for name in SECRETS {
            let path = dir.secret_path(name);
            if !path.exists() {
                let value = match name {
                    "SIKA_DATA_KEY" => KeyRing::generate_text("k1"),
                    "FLW_SECRET_KEY" => {
                        format!("FLWSECK_TEST-{}-X", random::hex_id().repeat(2).get(..32).unwrap_or(""))
                    }
                    _ => random::token(),
                };
                fsutil::write_private(&path, value.as_bytes()).map_err(|e| io(name, e))?;
            }
        }
        fsutil::ensure_private_dir(&dir.root.join("tls")).map_err(|e| io("tls/", e))?;
        crate::server::tls::ensure_self_signed(&dir.root.join("tls")).map_err(|e| format!("{e}."))?;
        Ok(dir)
    }

    pub fn with_listen(mut self, listen: Option<String>) -> Self {
        self.listen = listen;
        self
    }

    pub fn with_flw_base_url(mut self, url: Option<String>) -> Self {
        self.flw_base_url = url;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn secret_path(&self, name: &str) -> PathBuf {
        self.root.join("secrets").join(name)
    }

    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.root.join("sika.db").display())
    }
}

impl Source for DataDir {
    fn get(&self, name: &str) -> Option<String> {
        let path = |p: PathBuf| Some(p.display().to_string());
        match name {
            "SIKA_DATABASE_URL" => Some(self.database_url()),
            "SIKA_DATABASE_URL_FILE" | "SIKA_PUBLIC_URL" | "SIKA_HTTP_REDIRECT_LISTEN" => None,
            "SIKA_TLS_CERT_FILE" => path(self.root.join("tls/cert.pem")),
            "SIKA_TLS_KEY_FILE" => path(self.root.join("tls/key.pem")),
            "SIKA_LISTEN" => self.listen.clone().or_else(|| ProcessEnv.get(name)),
            // The demo's shop receiver may live on this machine.
            "SIKA_NOTIFY_ALLOW_LOOPBACK" => Some("true".into()),
            "SIKA_AUDIT_CHECKPOINT_FILE" => path(self.root.join("audit-checkpoints")),
            // The demo needs no mail server: each mail is a file in DIR/mail (unless a real one is set).
            "SIKA_MAIL_DIR"
                if ProcessEnv.get("SIKA_SMTP_URL").is_none() && ProcessEnv.get("SIKA_SMTP_URL_FILE").is_none() =>
            {
                ProcessEnv.get(name).or_else(|| path(self.root.join("mail")))
            }
            "SIKA_MAIL_FROM" => ProcessEnv.get(name).or_else(|| Some("Sika demo <sika@demo.localhost>".into())),
            // Any free loopback port, so two demos never collide.
            "SIKA_METRICS_LISTEN" => ProcessEnv.get(name).or_else(|| Some("127.0.0.1:0".into())),
            "FLW_BASE_URL" => self.flw_base_url.clone().or_else(|| ProcessEnv.get(name)),
            n if SECRETS.contains(&n) => None,
            n => match n.strip_suffix("_FILE") {
                Some(secret) if SECRETS.contains(&secret) => path(self.secret_path(secret)),
                _ => ProcessEnv.get(n),
            },
        }
    }
}
