//! Prints the raw argon2id verification rate of Sika's parameters on this
//! machine, on every core: the ceiling for logins per second.
//!   cargo run --release -p sika --example argon2_rate
#![forbid(unsafe_code)]

use std::time::Instant;

fn main() {
    let hash = sika::crypto::password::hash_blocking("Str0ng!Enough#Pass").expect("hash");
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let per_thread = 40;
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let hash = hash.clone();
            std::thread::spawn(move || {
                for _ in 0..per_thread {
                    assert!(!sika::crypto::password::verify_blocking("wrong-password", &hash));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let secs = start.elapsed().as_secs_f64();
    let n = threads * per_thread;
    println!(
        "argon2id m={} KiB t={} p=1: {n} verifications on {threads} threads in {secs:.2} s = {:.1}/s ({:.1} ms each per core)",
        sika::crypto::password::MEMORY_KIB,
        sika::crypto::password::ITERATIONS,
        n as f64 / secs,
        secs * 1000.0 * threads as f64 / n as f64
    );
}
