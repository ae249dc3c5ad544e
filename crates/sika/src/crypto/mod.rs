//! Cryptographic building blocks: the key ring and field encryption at rest,
//! password hashing, TOTP, random tokens, keyed hashes.

pub mod field;
pub mod keyring;
pub mod password;
pub mod random;
pub mod totp;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// SHA-256 in hex: how session tokens and API keys are stored (they are
/// 256-bit random values, so a fast hash is enough and the raw value is never kept).
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC-SHA256 in hex.
pub fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two strings.
pub fn ct_eq(a: &str, b: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}
