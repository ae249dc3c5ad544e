//! Signed checkpoints of the audit chain's head, kept outside the database
//! (like CloudTrail's digest files). The chain proves that nothing *inside*
//! it changed; only a record kept elsewhere shows that its newest entries
//! were deleted. Every minute (when the head moved) and at shutdown a line
//! `{"seq", "hash", "at", "sig"}` is appended to the checkpoint file and
//! logged; `sika audit verify` fails when the database ends before a
//! checkpoint or disagrees with one.

use std::io::{BufRead as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Auditor;
use crate::crypto::{ct_eq, hmac_hex};
use crate::secret::Secret;
use crate::store::now_ms;

/// How often the head is checkpointed (when it moved).
pub const INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub at: i64,
    pub sig: String,
}

/// Writes and checks checkpoints with a key derived from `SIKA_AUDIT_KEY`
/// (so the key that seals the chain is never used for anything else as is).
#[derive(Debug, Clone)]
pub struct Checkpoints {
    key: Arc<String>,
    path: PathBuf,
    last_seq: Arc<Mutex<Option<i64>>>,
}

fn derive(audit_key: &Secret) -> String {
    hmac_hex(audit_key.expose().as_bytes(), &[b"sika audit checkpoint v1"])
}

impl Checkpoints {
    pub fn new(audit_key: &Secret, path: &Path) -> Self {
        Checkpoints { key: Arc::new(derive(audit_key)), path: path.to_path_buf(), last_seq: Arc::default() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sign(&self, seq: i64, hash: &str, at: i64) -> String {
        hmac_hex(
            self.key.as_bytes(),
            &[seq.to_string().as_bytes(), b"\n", hash.as_bytes(), b"\n", at.to_string().as_bytes()],
        )
    }

    /// Appends the current head, unless it is the one written last (or the log is empty).
    pub async fn write(&self, auditor: &Auditor) -> Result<Option<Checkpoint>, String> {
        let Some((seq, hash)) = auditor.head().await.map_err(|e| e.to_string())? else { return Ok(None) };
        // Claimed before the write, so a pass cut off mid-way (shutdown) and the
        // final checkpoint do not both append the same head.
        let previous = {
            let mut last = self.last_seq.lock().unwrap_or_else(|e| e.into_inner());
            if *last == Some(seq) {
                return Ok(None);
            }
            last.replace(seq)
        };
        let at = now_ms();
        let c = Checkpoint { seq, sig: self.sign(seq, &hash, at), hash, at };
        let line = serde_json::to_string(&c).map_err(|e| e.to_string())?;
        let path = self.path.clone();
        let written = tokio::task::spawn_blocking(move || append_line(&path, &line)).await.map_err(|e| e.to_string());
        if let Err(e) = written.and_then(|r| r.map_err(|e| e.to_string())) {
            *self.last_seq.lock().unwrap_or_else(|e| e.into_inner()) = previous;
            return Err(format!("cannot append to the audit checkpoint file {}: {e}", self.path.display()));
        }
        // The same record in the log (journald under systemd): a second copy out of the database's reach.
        tracing::info!(target: "sika::audit", seq = c.seq, hash = %c.hash, at = c.at, sig = %c.sig, "audit checkpoint");
        Ok(Some(c))
    }

    /// Reads every checkpoint in `path`, checking each line's signature.
    pub fn read(&self, path: &Path) -> Result<Vec<Checkpoint>, String> {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot read the checkpoint file {}: {e}", path.display())),
        };
        let mut out = Vec::new();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| format!("cannot read the checkpoint file {}: {e}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let c: Checkpoint = serde_json::from_str(&line)
                .map_err(|_| format!("checkpoint line {} of {} is not a checkpoint", i + 1, path.display()))?;
            if !ct_eq(&self.sign(c.seq, &c.hash, c.at), &c.sig) {
                return Err(format!(
                    "checkpoint line {} of {} is not signed with this audit key (altered or foreign)",
                    i + 1,
                    path.display()
                ));
            }
            out.push(c);
        }
        Ok(out)
    }

    /// Checks the database against every checkpoint in `path`: `Ok(n)` when
    /// all `n` agree, or the first disagreement in one sentence.
    pub async fn verify(&self, auditor: &Auditor, path: &Path) -> Result<usize, String> {
        let checkpoints = self.read(path)?;
        let (anchor_seq, anchor_hash) = auditor.anchor().await.map_err(|e| e.to_string())?;
        let head = auditor.head().await.map_err(|e| e.to_string())?.map(|(s, _)| s).unwrap_or(anchor_seq);
        for c in &checkpoints {
            let when = crate::timefmt::datetime(c.at);
            if c.seq > head {
                return Err(format!(
                    "the audit log ends at entry {head}, but a checkpoint of {when} UTC recorded entry {}: entries were deleted",
                    c.seq
                ));
            }
            let stored = if c.seq == anchor_seq {
                Some(anchor_hash.clone())
            } else if c.seq < anchor_seq {
                // Purged by retention (exported first); nothing left to compare.
                continue;
            } else {
                auditor.entry_hash(c.seq).await.map_err(|e| e.to_string())?
            };
            match stored {
                Some(h) if ct_eq(&h, &c.hash) => {}
                Some(_) => {
                    return Err(format!(
                        "entry {} differs from the checkpoint of {when} UTC: the log was rewritten",
                        c.seq
                    ));
                }
                None => return Err(format!("entry {} of the checkpoint of {when} UTC is missing", c.seq)),
            }
        }
        Ok(checkpoints.len())
    }
}

/// Appends one line to a file created owner-only, and syncs it.
fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(path)?;
    writeln!(f, "{line}")?;
    f.sync_data()
}
