//! The settlement job: once a day, one instance at a time.

use std::time::Duration;

use super::Settlements;
use crate::jobs::{Schedule, Supervisor};
use crate::store::now_ms;

/// Identifies the settlement poller's advisory lock: one poller across instances.
const SETTLEMENTS_LOCK: i64 = 0x5169_6b61_0009;

pub fn spawn(sup: &mut Supervisor, s: &Settlements) {
    let s = s.clone();
    sup.spawn(
        "settlements",
        Schedule {
            // Flutterwave settles daily and sends no webhook for it: a complete pass a day (the
            // first at start); a pass cut short by Flutterwave is tried again the next hour.
            every: Duration::from_secs(3600),
            timeout: Duration::from_secs(900),
            stall_after: Duration::from_secs(3 * 3600),
        },
        move || {
            let s = s.clone();
            Box::pin(async move {
                if !s.due(now_ms()) {
                    return Ok(false);
                }
                let pass = s.poll(now_ms(), super::MAX_PAGES);
                match s.store.singleton(SETTLEMENTS_LOCK, pass).await {
                    Ok(Some(Err(e))) | Err(e) => Err(e.to_string()),
                    Ok(_) => Ok(false),
                }
            })
        },
    );
}
