//! TOTP (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits) with a replay guard,
//! and the QR code for enrolment, rendered here as SVG (no third-party script).

use hmac::{Hmac, Mac};
use sha1::Sha1;

pub const STEP_SECONDS: i64 = 30;

/// A new 160-bit secret, base32 without padding (what authenticator apps take).
pub fn generate_secret() -> String {
    data_encoding::BASE32_NOPAD.encode(&super::random::bytes::<20>())
}

pub fn decode_secret(b32: &str) -> Option<Vec<u8>> {
    let clean: String =
        b32.chars().filter(|c| !c.is_whitespace() && *c != '=').collect::<String>().to_ascii_uppercase();
    data_encoding::BASE32_NOPAD.decode(clean.as_bytes()).ok()
}

/// The code for one time step.
pub fn code(secret: &[u8], step: i64) -> String {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[19] & 0x0f);
    let bin = (u32::from(h[offset]) & 0x7f) << 24
        | u32::from(h[offset + 1]) << 16
        | u32::from(h[offset + 2]) << 8
        | u32::from(h[offset + 3]);
    format!("{:06}", bin % 1_000_000)
}

pub fn step_at(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// Checks `candidate` against the steps around `now` (±1), refusing any step
/// at or before `last_used_step`: a code is never accepted twice. Returns the
/// matched step, which the caller must store as the new `last_used_step`.
pub fn verify(secret: &[u8], candidate: &str, unix_seconds: i64, last_used_step: i64) -> Option<i64> {
    if candidate.len() != 6 || !candidate.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(unix_seconds);
    let mut matched = None;
    for step in [now - 1, now, now + 1] {
        // Compare every candidate step in constant time; no early exit.
        let equal: bool = subtle::ConstantTimeEq::ct_eq(code(secret, step).as_bytes(), candidate.as_bytes()).into();
        if equal && step > last_used_step && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// The `otpauth://` URI an authenticator app reads from the QR code.
pub fn otpauth_uri(secret_b32: &str, account: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("otpauth://totp/Sika:{}?secret={secret_b32}&issuer=Sika&algorithm=SHA1&digits=6&period=30", enc(account))
}

/// The QR code of `data` as an SVG document.
pub fn qr_svg(data: &str) -> Option<String> {
    let code = qrcode::QrCode::new(data.as_bytes()).ok()?;
    Some(code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).quiet_zone(true).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (8-digit codes there; the last 6 digits here).
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (t, expected) in
            [(59, "287082"), (1_111_111_109, "081804"), (1_234_567_890, "005924"), (2_000_000_000, "279037")]
        {
            assert_eq!(code(secret, step_at(t)), expected, "t={t}");
        }
    }

    #[test]
    fn window_and_replay_guard() {
        let secret = b"12345678901234567890";
        let now = 1_234_567_890;
        let c = code(secret, step_at(now));
        let step = verify(secret, &c, now, 0).expect("current code");
        assert_eq!(verify(secret, &c, now, step), None, "the same code is refused the second time");
        let prev = code(secret, step_at(now) - 1);
        assert!(verify(secret, &prev, now, 0).is_some(), "one step behind is accepted");
        assert_eq!(verify(secret, &prev, now, step), None, "an older step than one used is refused");
        let old = code(secret, step_at(now) - 2);
        assert_eq!(verify(secret, &old, now, 0), None, "two steps behind is refused");
        assert_eq!(verify(secret, "12345", now, 0), None);
        assert_eq!(verify(secret, "abcdef", now, 0), None);
    }

    #[test]
    fn secrets_round_trip_and_qr_renders() {
        let s = generate_secret();
        assert_eq!(decode_secret(&s).unwrap().len(), 20);
        assert!(qr_svg(&otpauth_uri(&s, "ada@example.com")).unwrap().starts_with("<?xml"));
    }
}
