//! Field-level encryption at rest (XChaCha20-Poly1305) and keyed blind indexes.
//!
//! A sealed field is `v1.<key id>.<base64(nonce ‖ ciphertext)>`. The associated
//! data binds it to `table/column/row`, so a ciphertext copied into another
//! row or column does not decrypt. Lookups on encrypted values (an e-mail at
//! login) use a blind index: `<key id>.<hex HMAC-SHA256(index key, value)>`.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::keyring::KeyRing;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("sealed field is malformed")]
    Malformed,
    #[error("no key with id {0} in SIKA_DATA_KEY")]
    UnknownKey(String),
    #[error("sealed field does not authenticate (wrong key, row or column, or tampered)")]
    Tampered,
}

/// Derives a purpose-bound subkey so the same data key never serves two purposes.
fn subkey(key: &[u8; 32], purpose: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(b"sika/");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().into()
}

#[derive(Debug, Clone)]
pub struct FieldCipher {
    ring: KeyRing,
}

impl FieldCipher {
    pub fn new(ring: KeyRing) -> Self {
        FieldCipher { ring }
    }

    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    pub fn primary_key_id(&self) -> &str {
        self.ring.primary().0
    }

    fn aad(table: &str, column: &str, row: &str) -> String {
        format!("{table}/{column}/{row}")
    }

    pub fn seal(&self, table: &str, column: &str, row: &str, plaintext: &[u8]) -> String {
        let (id, key) = self.ring.primary();
        let cipher = XChaCha20Poly1305::new(&subkey(key, "field-encryption/v1").into());
        let nonce_bytes = super::random::bytes::<24>();
        let nonce = XNonce::from_slice(&nonce_bytes);
        let aad = Self::aad(table, column, row);
        let ct = cipher
            .encrypt(nonce, Payload { msg: plaintext, aad: aad.as_bytes() })
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory buffers");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&ct);
        format!("v1.{id}.{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(out))
    }

    pub fn seal_str(&self, table: &str, column: &str, row: &str, plaintext: &str) -> String {
        self.seal(table, column, row, plaintext.as_bytes())
    }

    pub fn open(&self, table: &str, column: &str, row: &str, sealed: &str) -> Result<Vec<u8>, FieldError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some("v1"), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(FieldError::Malformed);
        };
        let key = self.ring.get(id).ok_or_else(|| FieldError::UnknownKey(id.to_string()))?;
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64).map_err(|_| FieldError::Malformed)?;
        if raw.len() < 24 + 16 {
            return Err(FieldError::Malformed);
        }
        let (nonce, ct) = raw.split_at(24);
        let cipher = XChaCha20Poly1305::new(&subkey(key, "field-encryption/v1").into());
        let aad = Self::aad(table, column, row);
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: aad.as_bytes() })
            .map_err(|_| FieldError::Tampered)
    }

    pub fn open_str(&self, table: &str, column: &str, row: &str, sealed: &str) -> Result<String, FieldError> {
        String::from_utf8(self.open(table, column, row, sealed)?).map_err(|_| FieldError::Malformed)
    }

    /// The key id a sealed value was written with.
    pub fn key_id(sealed: &str) -> Option<&str> {
        sealed.strip_prefix("v1.").and_then(|r| r.split('.').next())
    }

    fn index_with(id: &str, key: &[u8; 32], purpose: &str, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&subkey(key, &format!("blind-index/v1/{purpose}")))
            .expect("HMAC accepts any key length");
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("{id}.{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    /// The blind index under the current key (what new rows store).
    pub fn blind_index(&self, purpose: &str, value: &str) -> String {
        let (id, key) = self.ring.primary();
        Self::index_with(id, key, purpose, value)
    }

    /// The blind index under every key of the ring (what a lookup searches,
    /// so rows not yet rotated are still found).
    pub fn blind_indexes(&self, purpose: &str, value: &str) -> Vec<String> {
        self.ring.iter().map(|(id, key)| Self::index_with(id, key, purpose, value)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(text: &str) -> FieldCipher {
        FieldCipher::new(KeyRing::parse(text).unwrap())
    }

    #[test]
    fn round_trip_and_binding() {
        let c = cipher(&KeyRing::generate_text("k1"));
        let sealed = c.seal_str("users", "email", "row1", "ada@example.com");
        assert!(!sealed.contains("ada"));
        assert_eq!(c.open_str("users", "email", "row1", &sealed).unwrap(), "ada@example.com");
        assert_eq!(c.open_str("users", "email", "row2", &sealed), Err(FieldError::Tampered), "bound to the row");
        assert_eq!(c.open_str("users", "name", "row1", &sealed), Err(FieldError::Tampered), "bound to the column");
        let mut bad = sealed.clone();
        bad.pop();
        bad.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(c.open_str("users", "email", "row1", &bad).is_err(), "tampering is detected");
        assert_ne!(sealed, c.seal_str("users", "email", "row1", "ada@example.com"), "fresh nonce each time");
    }

    #[test]
    fn old_keys_still_open_after_rotation_and_indexes_cover_the_ring() {
        let old = KeyRing::generate_text("k1");
        let before = cipher(&old);
        let sealed = before.seal_str("t", "c", "r", "secret");
        let after = cipher(&format!("{},{old}", KeyRing::generate_text("k2")));
        assert_eq!(after.open_str("t", "c", "r", &sealed).unwrap(), "secret");
        assert_eq!(FieldCipher::key_id(&after.seal_str("t", "c", "r", "x")), Some("k2"));
        let idx = before.blind_index("email", "ada@example.com");
        assert!(after.blind_indexes("email", "ada@example.com").contains(&idx));
        assert_ne!(before.blind_index("email", "ada@example.com"), before.blind_index("email", "bob@example.com"));
    }
}
