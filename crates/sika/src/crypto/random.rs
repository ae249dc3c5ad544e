//! Randomness from the operating system's CSPRNG, for tokens and generated secrets.

use base64::Engine as _;

/// `n` bytes from the OS CSPRNG.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // Failure here means the OS has no entropy source; nothing safe can go on.
    getrandom::fill(&mut out).expect("the OS random number generator failed");
    out
}

/// 32 random bytes as URL-safe base64 without padding (43 characters).
pub fn token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes::<32>())
}

/// 16 random bytes as lower-case hex: request ids and other opaque handles.
pub fn hex_id() -> String {
    bytes::<16>().iter().map(|b| format!("{b:02x}")).collect()
}
