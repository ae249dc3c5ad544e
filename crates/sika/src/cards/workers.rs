//! The card worker, a supervised job: sends approved loads, fundings and
//! withdrawals (one sender per funding across instances), follows
//! `creating` cards until Flutterwave says they are active, `unknown` cards
//! and fundings until they are found (or shown never to have been made),
//! and expires what was not approved in time.

use std::time::Duration;

use super::Cards;
use crate::jobs::{Schedule, Supervisor};
use crate::store::now_ms;

pub fn spawn(sup: &mut Supervisor, cards: &Cards) {
    let c = cards.clone();
    sup.spawn(
        "card-follower",
        Schedule {
            every: Duration::from_secs(1),
            timeout: Duration::from_secs(120),
            stall_after: Duration::from_secs(600),
        },
        move || {
            let c = c.clone();
            Box::pin(async move {
                let now = now_ms();
                let work = c.expire_fundings(now).await.map_err(|e| e.to_string())?
                    + c.dispatch_fundings(20).await.map_err(|e| e.to_string())?
                    + c.follow(now).await.map_err(|e| e.to_string())?
                    + c.follow_fundings(now).await.map_err(|e| e.to_string())?;
                Ok(work > 0)
            })
        },
    );
}
