//! The key ring for encryption at rest, given as `SIKA_DATA_KEY`.
//!
//! Format: comma-separated `id:base64(32 bytes)` entries; the first entry is the
//! key that encrypts new data, the others only decrypt rows written before a
//! rotation. Key ids are stored beside every ciphertext.

use std::fmt;

use base64::Engine as _;

/// The data keys, shared by every clone of the ring (one copy in memory) and
/// wiped when the last clone is dropped.
#[derive(Clone)]
pub struct KeyRing {
    keys: std::sync::Arc<Keys>,
}

struct Keys(Vec<(String, [u8; 32])>);

impl std::ops::Deref for Keys {
    type Target = Vec<(String, [u8; 32])>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        for (_, key) in &mut self.0 {
            key.zeroize();
        }
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        write!(f, "KeyRing {{ ids: {ids:?}, keys: [redacted] }}")
    }
}

impl KeyRing {
    /// How many keys the ring holds (the first seals, all open).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys: Vec<(String, [u8; 32])> = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, b64) = entry.split_once(':').ok_or("each entry must look like id:base64key")?;
            if id.is_empty() || id.len() > 16 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err("a key id must be 1 to 16 letters or digits".into());
            }
            if keys.iter().any(|(k, _)| k == id) {
                return Err(format!("key id {id} appears twice"));
            }
            let raw = zeroize::Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|_| format!("key {id} is not valid base64"))?,
            );
            let key: [u8; 32] = raw.as_slice().try_into().map_err(|_| format!("key {id} must be exactly 32 bytes"))?;
            keys.push((id.to_string(), key));
        }
        if keys.is_empty() {
            return Err("it holds no key".into());
        }
        Ok(Self { keys: std::sync::Arc::new(Keys(keys)) })
    }

    /// A fresh one-key ring, as `sika demo` writes it.
    pub fn generate_text(id: &str) -> String {
        format!("{id}:{}", base64::engine::general_purpose::STANDARD.encode(super::random::bytes::<32>()))
    }

    /// The id and key that encrypt new data.
    pub fn primary(&self) -> (&str, &[u8; 32]) {
        let (id, key) = &self.keys[0];
        (id, key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8; 32])> {
        self.keys.iter().map(|(id, key)| (id.as_str(), key))
    }

    pub fn get(&self, id: &str) -> Option<&[u8; 32]> {
        self.keys.iter().find(|(k, _)| k == id).map(|(_, key)| key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rings_and_refuses_bad_ones() {
        let a = KeyRing::generate_text("k2");
        let b = KeyRing::generate_text("k1");
        let ring = KeyRing::parse(&format!("{a},{b}")).unwrap();
        assert_eq!(ring.primary().0, "k2");
        assert!(ring.get("k1").is_some());
        assert!(!format!("{ring:?}").contains(a.split(':').nth(1).unwrap()));
        for bad in ["", "nokey", "k1:notbase64!", "k1:AAAA", &format!("{a},{a}"), "bad id:AAAA"] {
            assert!(KeyRing::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
