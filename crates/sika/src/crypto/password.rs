//! Passwords: the policy, and argon2id hashing on a bounded pool so a flood
//! of logins cannot starve other requests of CPU or memory.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// OWASP's argon2id minimum: 19 MiB, 2 iterations, 1 lane.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;

fn argon() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("../../assets/common-passwords.txt").lines().collect());

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 128;

/// Why a password is refused, in words shown to the person choosing it.
pub fn check_policy(password: &str, email: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(format!("The password must be at least {MIN_LEN} characters long."));
    }
    if len > MAX_LEN {
        return Err(format!("The password must be at most {MAX_LEN} characters long."));
    }
    if password.chars().any(char::is_control) {
        return Err("The password must not contain control characters.".into());
    }
    if !password.chars().any(|c| c.is_uppercase()) {
        return Err("The password must contain an upper-case letter.".into());
    }
    if !password.chars().any(|c| c.is_lowercase()) {
        return Err("The password must contain a lower-case letter.".into());
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        return Err("The password must contain a digit.".into());
    }
    if !password.chars().any(|c| !c.is_alphanumeric() && !c.is_whitespace()) {
        return Err("The password must contain a special character (for example ! ? # or -).".into());
    }
    let lower = password.to_lowercase();
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    if local.chars().count() >= 3 && lower.contains(&local) {
        return Err("The password must not contain your e-mail address.".into());
    }
    let trimmed = lower.trim_end_matches(|c: char| !c.is_alphabetic());
    let letters: String = lower.chars().filter(|c| c.is_alphabetic()).collect();
    if COMMON.contains(lower.as_str())
        || COMMON.contains(trimmed)
        || (letters.len() >= 5 && COMMON.contains(letters.as_str()) && letters.len() * 2 >= len)
    {
        return Err("This password is too common; choose one that is not on lists of leaked passwords.".into());
    }
    Ok(())
}

/// Hashes and verifies on at most `permits` blocking threads at a time.
#[derive(Debug, Clone)]
pub struct PasswordPool {
    permits: Arc<Semaphore>,
    dummy: Arc<String>,
}

impl PasswordPool {
    pub fn new(permits: usize) -> Self {
        // A real hash of a random password: unknown users cost the same work as known ones.
        let dummy = hash_blocking(&super::random::token()).expect("hashing a random password");
        PasswordPool { permits: Arc::new(Semaphore::new(permits.max(1))), dummy: Arc::new(dummy) }
    }

    /// One permit per CPU: hashing never uses more than the machine has.
    pub fn for_this_machine() -> Self {
        Self::new(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
    }

    pub async fn hash(&self, password: String) -> Option<String> {
        let _permit = self.permits.acquire().await.ok()?;
        tokio::task::spawn_blocking(move || hash_blocking(&password)).await.ok().flatten()
    }

    /// `Some(true)` on a match; `None` when `hash` is `None` (unknown user), after the same work.
    pub async fn verify(&self, password: String, hash: Option<String>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else { return false };
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.as_ref().clone());
        let ok = tokio::task::spawn_blocking(move || verify_blocking(&password, &hash)).await.unwrap_or(false);
        ok && known
    }
}

pub fn hash_blocking(password: &str) -> Option<String> {
    let salt = SaltString::encode_b64(&super::random::bytes::<16>()).ok()?;
    argon().hash_password(password.as_bytes(), &salt).ok().map(|h| h.to_string())
}

pub fn verify_blocking(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| argon().verify_password(password.as_bytes(), &h).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_reasons() {
        assert!(check_policy("Str0ng!Enough#Pass", "ada@example.com").is_ok());
        for (pw, why) in [
            ("Sh0rt!", "at least 12"),
            ("alllowercase1!x", "upper-case"),
            ("ALLUPPERCASE1!X", "lower-case"),
            ("NoDigitsHere!!x", "digit"),
            ("NoSpecials1234x", "special"),
            ("Ada.Lovelace!123", "e-mail"),
            ("Password123!", "too common"),
            ("Qwertyuiop1!", "too common"),
        ] {
            let e = check_policy(pw, "ada.lovelace@example.com").unwrap_err();
            assert!(e.contains(why), "{pw}: {e}");
        }
        assert!(check_policy(&format!("Aa1!{}", "x".repeat(125)), "a@b.c").unwrap_err().contains("at most"));
        assert!(COMMON.len() >= 10_000);
    }

    #[test]
    fn hashes_are_argon2id_with_the_required_cost() {
        let h = hash_blocking("Str0ng!Enough#Pass").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_blocking("Str0ng!Enough#Pass", &h));
        assert!(!verify_blocking("Str0ng!Enough#Pasz", &h));
        assert!(!verify_blocking("x", "not a hash"));
    }
}
