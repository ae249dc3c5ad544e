//! The background jobs of payouts, each supervised on its own: the
//! dispatcher, and the follower (lookups of what is in flight, the reversal
//! watch, and expiry of unapproved payouts).

use std::time::Duration;

use super::Payouts;
use crate::jobs::{Schedule, Supervisor};
use crate::store::now_ms;

/// Identifies the payout follower's advisory lock: one follower across instances.
const FOLLOWER_LOCK: i64 = 0x5169_6b61_0005;
/// Identifies the batch preparer's advisory lock.
const PREPARER_LOCK: i64 = 0x5169_6b61_0006;

pub fn spawn(sup: &mut Supervisor, p: &Payouts) {
    let dispatcher = p.clone();
    sup.spawn(
        "payout-dispatch",
        Schedule {
            every: Duration::from_millis(500),
            timeout: Duration::from_secs(300),
            stall_after: Duration::from_secs(600),
        },
        move || {
            let p = dispatcher.clone();
            // Several instances may dispatch at once: each payout is claimed by one of them.
            Box::pin(async move { p.dispatch(50).await.map(|n| n > 0).map_err(|e| e.to_string()) })
        },
    );
    let preparer = p.clone();
    sup.spawn(
        "payout-batches",
        Schedule {
            every: Duration::from_secs(2),
            timeout: Duration::from_secs(900),
            stall_after: Duration::from_secs(1200),
        },
        move || {
            let p = preparer.clone();
            Box::pin(async move {
                match p.store.singleton(PREPARER_LOCK, p.prepare_batches()).await {
                    Ok(Some(Err(e))) | Err(e) => Err(e.to_string()),
                    Ok(Some(Ok(n))) => Ok(n > 0),
                    Ok(None) => Ok(false),
                }
            })
        },
    );
    let follower = p.clone();
    sup.spawn(
        "payout-follow",
        Schedule {
            every: Duration::from_secs(5),
            timeout: Duration::from_secs(600),
            stall_after: Duration::from_secs(900),
        },
        move || {
            let p = follower.clone();
            Box::pin(async move {
                let pass = async {
                    let now = now_ms();
                    p.expire_unapproved(now).await?;
                    p.follow(now).await
                };
                match p.store.singleton(FOLLOWER_LOCK, pass).await {
                    Ok(Some(Err(e))) | Err(e) => Err(e.to_string()),
                    Ok(Some(Ok(n))) => Ok(n >= 100),
                    Ok(None) => Ok(false),
                }
            })
        },
    );
}
