//! Passwords: the policy, and argon2id hashing on a bounded pool so a flood
//! of logins cannot starve other requests of CPU or memory.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use argon2::password_hash::{PasswordHash, PasswordVerifier};
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

type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies on a fixed set of dedicated threads, so a flood of
/// sign-ins can use at most those threads' CPU and memory (19 MiB each); the
/// rest of the machine keeps serving. At most [`IN_FLIGHT`] jobs wait or run;
/// further callers wait asynchronously, costing nothing but a task.
#[derive(Clone)]
pub struct PasswordPool {
    jobs: std::sync::mpsc::SyncSender<Job>,
    in_flight: Arc<Semaphore>,
    dummy: Arc<std::sync::OnceLock<String>>,
    workers: usize,
    /// Verifications run so far (tests and metrics: how much argon2 work sign-ins caused).
    verifications: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for PasswordPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordPool").field("workers", &self.workers).finish_non_exhaustive()
    }
}

pub const IN_FLIGHT: usize = 64;

impl PasswordPool {
    pub fn new(workers: usize) -> Self {
        let workers = workers.max(1);
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(IN_FLIGHT);
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            let _ = std::thread::Builder::new().name(format!("sika-argon2-{i}")).spawn(move || {
                // The lowest scheduling priority: when the CPU is contended,
                // serving requests goes first and sign-ins wait.
                let _ = thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min);
                loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
        }
        PasswordPool {
            jobs,
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            dummy: Arc::default(),
            workers,
            verifications: Arc::default(),
        }
    }

    /// All cores but one hash (one on a single-core machine): serving keeps a core.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Self::new(cores.saturating_sub(1).max(1))
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let _permit = self.in_flight.acquire().await.ok()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .try_send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .ok()?;
        rx.await.ok()
    }

    pub async fn hash(&self, password: String) -> Option<String> {
        self.run(move || hash_blocking(&password)).await.flatten()
    }

    /// How many verifications have run.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `true` only on a match with a known hash; `hash: None` (unknown user) does the same work and is `false`.
    pub async fn verify(&self, password: String, hash: Option<String>) -> bool {
        self.verifications.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let known = hash.is_some();
        let dummy = self.dummy.clone();
        let ok = self
            .run(move || {
                // A real hash of a random password, made on first need: unknown
                // users cost the same work as known ones.
                let hash = hash.unwrap_or_else(|| {
                    dummy.get_or_init(|| hash_blocking(&super::random::token()).unwrap_or_default()).clone()
                });
                verify_blocking(&password, &hash)
            })
            .await
            .unwrap_or(false);
        ok && known
    }
}

thread_local! {
    /// Each hashing thread keeps one argon2 work area for its whole life: it is
    /// allocated once (on first use), so memory stays at 19 MiB per thread
    /// instead of growing with the allocator's caches.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn with_blocks<T>(f: impl FnOnce(&mut [argon2::Block]) -> T) -> T {
    BLOCKS.with(|b| {
        let mut b = b.borrow_mut();
        if b.is_empty() {
            *b = vec![argon2::Block::default(); MEMORY_KIB as usize];
        }
        f(&mut b)
    })
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// An argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
pub fn hash_blocking(password: &str) -> Option<String> {
    let salt = super::random::bytes::<16>();
    let mut out = [0u8; 32];
    with_blocks(|blocks| argon().hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)).ok()?;
    Some(format!("$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p=1${}${}", b64(&salt), b64(&out)))
}

pub fn verify_blocking(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let ours = Params::try_from(&parsed)
        .is_ok_and(|p| p.m_cost() == MEMORY_KIB && p.t_cost() == ITERATIONS && p.p_cost() == 1);
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    if !ours || parsed.algorithm.as_str() != "argon2id" {
        // Older parameters: verify the general way (allocates its own memory).
        return argon().verify_password(password.as_bytes(), &parsed).is_ok();
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    let mut out = vec![0u8; expected.len()];
    if with_blocks(|blocks| argon().hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks))
        .is_err()
    {
        return false;
    }
    subtle::ConstantTimeEq::ct_eq(out.as_slice(), expected.as_bytes()).into()
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
