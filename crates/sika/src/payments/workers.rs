//! The background jobs of collecting payments, each supervised on its own
//! (see `crate::jobs`): a slow shop endpoint stalls only notifications, a
//! Flutterwave outage only what needs Flutterwave, a panic only its own job.

use std::time::Duration;

use super::{Payments, notify};
use crate::jobs::{Schedule, Supervisor};
use crate::store::now_ms;

/// Identifies the reconciler's advisory lock: one reconciler across instances.
const RECONCILER_LOCK: i64 = 0x5169_6b61_0003;
/// Identifies the refund follower's advisory lock.
const REFUNDS_LOCK: i64 = 0x5169_6b61_0004;
/// Identifies the chargeback poller's advisory lock: one poller across instances.
const CHARGEBACKS_LOCK: i64 = 0x5169_6b61_0007;
/// Identifies the chargeback answers' sender lock: one sender across instances.
const ANSWERS_LOCK: i64 = 0x5169_6b61_0008;

pub fn spawn(sup: &mut Supervisor, p: &Payments, notifier: notify::Notifier) {
    let store = p.store.clone();
    sup.spawn(
        "notifications",
        Schedule {
            every: Duration::from_secs(1),
            timeout: Duration::from_secs(120),
            stall_after: Duration::from_secs(300),
        },
        move || {
            let (store, notifier) = (store.clone(), notifier.clone());
            Box::pin(async move { notifier.deliver_due(&store).await.map(|n| n > 0).map_err(|e| e.to_string()) })
        },
    );
    let reconciler = p.clone();
    sup.spawn(
        "reconciler",
        Schedule {
            every: Duration::from_secs(5),
            timeout: Duration::from_secs(600),
            stall_after: Duration::from_secs(900),
        },
        move || {
            let p = reconciler.clone();
            Box::pin(async move {
                match p.store.singleton(RECONCILER_LOCK, super::reconcile(&p)).await {
                    Ok(Some(Err(e))) | Err(e) => Err(e.to_string()),
                    Ok(_) => Ok(false),
                }
            })
        },
    );
    let refunds = p.clone();
    sup.spawn(
        "refunds",
        Schedule {
            every: Duration::from_secs(5),
            timeout: Duration::from_secs(600),
            stall_after: Duration::from_secs(900),
        },
        move || {
            let p = refunds.clone();
            Box::pin(async move {
                match p.store.singleton(REFUNDS_LOCK, p.follow_refunds(now_ms())).await {
                    Ok(Some(Err(e))) | Err(e) => Err(e.to_string()),
                    Ok(_) => Ok(false),
                }
            })
        },
    );
    let answers = p.clone();
    sup.spawn(
        "chargeback-answers",
        Schedule {
            every: Duration::from_secs(5),
            timeout: Duration::from_secs(300),
            stall_after: Duration::from_secs(900),
        },
        move || {
            let p = answers.clone();
            Box::pin(async move {
                match p.store.singleton(ANSWERS_LOCK, p.work_answers(now_ms())).await {
                    Ok(Some(Err(e))) | Err(e) => Err(e.to_string()),
                    Ok(_) => Ok(false),
                }
            })
        },
    );
    let chargebacks = p.clone();
    sup.spawn(
        "chargebacks",
        Schedule {
            // A chargeback gives 48 hours to answer: looking every 10 minutes loses little of them.
            every: Duration::from_secs(600),
            timeout: Duration::from_secs(600),
            stall_after: Duration::from_secs(3600),
        },
        move || {
            let p = chargebacks.clone();
            Box::pin(async move {
                let pass = p.poll_chargebacks(super::chargebacks::MAX_PAGES);
                match p.store.singleton(CHARGEBACKS_LOCK, pass).await {
                    Ok(Some(Err(e))) | Err(e) => Err(e.to_string()),
                    Ok(_) => Ok(false),
                }
            })
        },
    );
}
