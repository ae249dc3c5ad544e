//! The mail jobs: one composes the outbox from what waits, what is wrong and the audit log;
//! one sends it. Both are safe on several instances (dedupe keys, claimed rows).

use std::time::Duration;

use super::Mail;
use crate::jobs::{Schedule, Supervisor};
use crate::store::now_ms;

/// Mails sent per pass at most (a busy pass is followed by another at once).
const SEND_BATCH: i64 = 20;

pub fn spawn(sup: &mut Supervisor, mail: &Mail) {
    let m = mail.clone();
    sup.spawn(
        "mail-compose",
        Schedule {
            every: Duration::from_secs(10),
            timeout: Duration::from_secs(120),
            stall_after: Duration::from_secs(600),
        },
        move || {
            let m = m.clone();
            Box::pin(async move { m.compose(now_ms()).await.map(|_| false).map_err(|e| e.to_string()) })
        },
    );
    let m = mail.clone();
    sup.spawn(
        "mail-send",
        Schedule {
            every: Duration::from_secs(2),
            // A pass tries at most one unreachable server (SEND_TIMEOUT), then leaves the rest for later.
            timeout: Duration::from_secs(SEND_BATCH as u64 * super::transport::SEND_TIMEOUT.as_secs() + 30),
            stall_after: Duration::from_secs(SEND_BATCH as u64 * super::transport::SEND_TIMEOUT.as_secs() + 120),
        },
        move || {
            let m = m.clone();
            Box::pin(async move { m.send_due(now_ms(), SEND_BATCH).await.map_err(|e| e.to_string()) })
        },
    );
}
