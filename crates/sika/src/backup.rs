//! `sika backup` and `sika restore`: an encrypted copy of a SQLite database
//! taken while Sika serves, and its way back.
//!
//! The copy is SQLite's own `VACUUM INTO` (one read transaction: a
//! consistent snapshot, writers are not blocked for long), then sealed in
//! 64 KiB chunks with XChaCha20-Poly1305 under a key derived from
//! `SIKA_BACKUP_KEY`. Each chunk's nonce carries its number and whether it
//! is the last (the STREAM construction), so a reordered, truncated or
//! altered file does not decrypt. PostgreSQL is backed up with `pg_dump`
//! (README); Sika refuses rather than pretend.

use std::io::{Read, Write};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::Secret;
use crate::store::{Backend, Store};

const MAGIC: &[u8; 8] = b"SIKABAK1";
const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Refused(String),
    #[error("the backup does not decrypt: wrong SIKA_BACKUP_KEY, or the file is truncated or altered")]
    Tampered,
    #[error("{0}")]
    Io(String),
}

fn io(what: &str, e: impl std::fmt::Display) -> BackupError {
    BackupError::Io(format!("{what}: {e}"))
}

/// The file key: HMAC-SHA256(secret, purpose), so the backup key is never used raw.
fn file_key(secret: &Secret) -> Result<XChaCha20Poly1305, BackupError> {
    if secret.expose().chars().count() < 32 {
        return Err(BackupError::Refused("SIKA_BACKUP_KEY must be at least 32 characters long.".into()));
    }
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
        .map_err(|_| BackupError::Refused("SIKA_BACKUP_KEY is unusable.".into()))?;
    mac.update(b"sika/backup/v1");
    let key: [u8; 32] = mac.finalize().into_bytes().into();
    XChaCha20Poly1305::new_from_slice(&key).map_err(|_| BackupError::Refused("bad key length".into()))
}

fn nonce(prefix: &[u8; 16], counter: u32, last: bool) -> XNonce {
    let mut n = [0u8; 24];
    n[..16].copy_from_slice(prefix);
    n[16..20].copy_from_slice(&counter.to_be_bytes());
    n[20] = u8::from(last);
    XNonce::from(n)
}

/// Seals `input` into `output`: MAGIC ‖ 16-byte nonce prefix ‖ chunks.
pub fn seal(secret: &Secret, mut input: impl Read, mut output: impl Write) -> Result<u64, BackupError> {
    let cipher = file_key(secret)?;
    let prefix: [u8; 16] = crate::crypto::random::bytes::<16>();
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&prefix);
    output.write_all(&header).map_err(|e| io("cannot write the backup", e))?;
    let mut buf = vec![0u8; CHUNK];
    let mut next = read_full(&mut input, &mut buf)?;
    let mut counter: u32 = 0;
    let mut total = 0u64;
    loop {
        let this = buf[..next].to_vec();
        let n = read_full(&mut input, &mut buf)?;
        let last = n == 0;
        let sealed = cipher
            .encrypt(&nonce(&prefix, counter, last), Payload { msg: &this, aad: &header })
            .map_err(|_| BackupError::Io("encryption failed".into()))?;
        output.write_all(&sealed).map_err(|e| io("cannot write the backup", e))?;
        total += this.len() as u64;
        if last {
            break;
        }
        counter = counter.checked_add(1).ok_or_else(|| BackupError::Refused("the database is too large".into()))?;
        next = n;
    }
    output.flush().map_err(|e| io("cannot write the backup", e))?;
    Ok(total)
}

/// Opens what `seal` wrote; refuses a wrong key, a truncated, reordered or altered file.
pub fn open(secret: &Secret, mut input: impl Read, mut output: impl Write) -> Result<u64, BackupError> {
    let cipher = file_key(secret)?;
    let mut header = [0u8; 24];
    input.read_exact(&mut header).map_err(|_| BackupError::Refused("not a Sika backup (too short)".into()))?;
    if &header[..8] != MAGIC {
        return Err(BackupError::Refused("not a Sika backup (no SIKABAK1 header)".into()));
    }
    let mut prefix = [0u8; 16];
    prefix.copy_from_slice(&header[8..]);
    let mut buf = vec![0u8; CHUNK + TAG];
    let mut next = read_full(&mut input, &mut buf)?;
    let mut counter: u32 = 0;
    let mut total = 0u64;
    loop {
        if next < TAG {
            return Err(BackupError::Tampered);
        }
        let this = buf[..next].to_vec();
        let n = read_full(&mut input, &mut buf)?;
        let last = n == 0;
        let plain = cipher
            .decrypt(&nonce(&prefix, counter, last), Payload { msg: &this, aad: &header })
            .map_err(|_| BackupError::Tampered)?;
        output.write_all(&plain).map_err(|e| io("cannot write the restored database", e))?;
        total += plain.len() as u64;
        if last {
            break;
        }
        counter = counter.checked_add(1).ok_or(BackupError::Tampered)?;
        next = n;
    }
    output.flush().map_err(|e| io("cannot write the restored database", e))?;
    Ok(total)
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> Result<usize, BackupError> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io("cannot read", e)),
        }
    }
    Ok(n)
}

/// A consistent copy of the live SQLite database, sealed into `output`
/// (created with mode 0600; never overwritten). Returns the plain size.
pub async fn create(store: &Store, secret: &Secret, output: &Path) -> Result<u64, BackupError> {
    if store.backend() != Backend::Sqlite {
        return Err(BackupError::Refused(
            "SIKA_DATABASE_URL is PostgreSQL: back it up with pg_dump (see the README's Backups section).".into(),
        ));
    }
    file_key(secret)?;
    if output.exists() {
        return Err(BackupError::Refused(format!("{} exists already: choose a new file.", output.display())));
    }
    let dir = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let snapshot = dir.join(format!(".sika-backup-{}.db", crate::crypto::random::hex_id()));
    let result = async {
        store.snapshot_sqlite(&snapshot).await.map_err(|e| io("cannot copy the database", e))?;
        let plain = std::fs::File::open(&snapshot).map_err(|e| io("cannot read the copy", e))?;
        let sealed = {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(output)
                .map_err(|e| io(&format!("cannot create {}", output.display()), e))?
        };
        let mut w = std::io::BufWriter::new(sealed);
        let n = seal(secret, std::io::BufReader::new(plain), &mut w)?;
        w.into_inner().map_err(|e| io("cannot write the backup", e.error()))?.sync_all().map_err(|e| io("sync", e))?;
        Ok(n)
    }
    .await;
    let _ = std::fs::remove_file(&snapshot);
    if result.is_err() {
        let _ = std::fs::remove_file(output);
    }
    result
}

/// Decrypts `input` into a new SQLite file at `target` (never over an existing one).
pub fn restore(secret: &Secret, input: &Path, target: &Path) -> Result<u64, BackupError> {
    if target.exists() {
        return Err(BackupError::Refused(format!(
            "{} exists: restore into a new path (move the old database aside first).",
            target.display()
        )));
    }
    let file = std::fs::File::open(input).map_err(|e| io(&format!("cannot open {}", input.display()), e))?;
    let partial = target.with_extension("restoring");
    let out = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .map_err(|e| io(&format!("cannot create {}", partial.display()), e))?
    };
    let mut w = std::io::BufWriter::new(out);
    match open(secret, std::io::BufReader::new(file), &mut w) {
        Ok(n) => {
            drop(w);
            std::fs::rename(&partial, target).map_err(|e| io("cannot move the restored database in place", e))?;
            Ok(n)
        }
        Err(e) => {
            drop(w);
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Secret {
        Secret::new(crate::crypto::random::token())
    }

    #[test]
    fn what_is_sealed_opens_and_nothing_else_does() {
        let k = key();
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut sealed = Vec::new();
            assert_eq!(seal(&k, &data[..], &mut sealed).unwrap(), len as u64);
            let mut back = Vec::new();
            open(&k, &sealed[..], &mut back).unwrap();
            assert_eq!(back, data, "{len} bytes");
            if len > CHUNK {
                // Cut at a chunk boundary: the last chunk is missing.
                let cut = 24 + CHUNK + TAG;
                assert!(matches!(open(&k, &sealed[..cut], &mut Vec::new()), Err(BackupError::Tampered)));
            }
            let mut flipped = sealed.clone();
            let at = flipped.len() - 1;
            flipped[at] ^= 1;
            assert!(matches!(open(&k, &flipped[..], &mut Vec::new()), Err(BackupError::Tampered)));
            assert!(matches!(open(&key(), &sealed[..], &mut Vec::new()), Err(BackupError::Tampered)), "another key");
        }
        assert!(matches!(open(&k, &b"not a backup at all"[..], &mut Vec::new()), Err(BackupError::Refused(_))));
        assert!(matches!(seal(&Secret::new("short"), &b""[..], &mut Vec::new()), Err(BackupError::Refused(_))));
    }
}
