//! The card follower, a supervised job: `creating` cards until Flutterwave
//! says they are active, `unknown` ones until they are found (or shown never
//! to have been made).

use std::time::Duration;

use super::Cards;
use crate::jobs::{Schedule, Supervisor};
use crate::store::now_ms;

pub fn spawn(sup: &mut Supervisor, cards: &Cards) {
    let c = cards.clone();
    sup.spawn(
        "card-follower",
        Schedule {
            every: Duration::from_secs(5),
            timeout: Duration::from_secs(120),
            stall_after: Duration::from_secs(600),
        },
        move || {
            let c = c.clone();
            Box::pin(async move { c.follow(now_ms()).await.map(|n| n > 0).map_err(|e| e.to_string()) })
        },
    );
}
