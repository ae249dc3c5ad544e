//! The settings operators edit in the console, typed: the shop's notification
//! URL and signing secret, the merchant's name, the console's time zone and,
//! per currency, the amount above which outgoing money needs two approvers.
//! Each change is written with its audit entry (before and after) in one
//! transaction: both are kept, or neither.

use rust_decimal::Decimal;
use serde_json::json;

use crate::audit::{Actor, Auditor, Outcome};
use crate::domain::Currency;
use crate::store::{Store, StoreError, settings as keys};
use crate::timefmt::Zone;

/// One change to the settings, each value already validated by its caller.
#[derive(Debug, Clone)]
pub enum Change {
    /// Where the shop's signed notifications go (`notify::valid_url`).
    NotifyUrl(String),
    /// The new signing secret, sealed; its value is never audited.
    NotifySecret {
        sealed: String,
    },
    MerchantName(String),
    TimeZone(Zone),
    /// `None`: one approver whatever the amount.
    TwoApproversAbove(Currency, Option<Decimal>),
}

impl Change {
    fn key(&self) -> String {
        match self {
            Change::NotifyUrl(_) => keys::NOTIFY_URL.into(),
            Change::NotifySecret { .. } => keys::NOTIFY_SECRET.into(),
            Change::MerchantName(_) => keys::MERCHANT_NAME.into(),
            Change::TimeZone(_) => keys::TIME_ZONE.into(),
            Change::TwoApproversAbove(c, _) => keys::two_approvers_above(*c),
        }
    }

    fn value(&self) -> String {
        match self {
            Change::NotifyUrl(v) | Change::MerchantName(v) => v.clone(),
            Change::NotifySecret { sealed } => sealed.clone(),
            Change::TimeZone(z) => z.id.to_string(),
            Change::TwoApproversAbove(_, a) => a.map(|a| a.to_string()).unwrap_or_default(),
        }
    }

    fn action(&self) -> &'static str {
        match self {
            Change::NotifyUrl(_) => "settings.notify_url",
            Change::NotifySecret { .. } => "settings.notify_secret",
            Change::MerchantName(_) => "settings.merchant_name",
            Change::TimeZone(_) => "settings.time_zone",
            Change::TwoApproversAbove(..) => "settings.two_approvers_above",
        }
    }

    /// What the audit entry says: before and after, never a secret.
    fn details(&self, before: Option<String>, after: &str) -> serde_json::Value {
        match self {
            Change::NotifySecret { .. } => json!({"rotated": true}),
            Change::TwoApproversAbove(c, _) => json!({"currency": c, "before": before, "after": after}),
            Change::TimeZone(_) => {
                json!({"before": before.unwrap_or_else(|| crate::timefmt::console_zone().id.into()), "after": after})
            }
            _ => json!({"before": before, "after": after}),
        }
    }
}

/// Every setting as the console shows it.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub notify_url: Option<String>,
    pub has_notify_secret: bool,
    pub merchant_name: Option<String>,
    /// Per currency: the amount above which two approvers are needed (text as stored; "" = never).
    pub two_approvers_above: Vec<(Currency, String)>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    store: Store,
    auditor: Auditor,
}

impl Settings {
    pub fn new(store: Store, auditor: Auditor) -> Self {
        Settings { store, auditor }
    }

    /// Writes `change` and its audit entry in one transaction.
    pub async fn save(&self, actor: &Actor, change: Change) -> Result<(), StoreError> {
        let key = change.key();
        let value = change.value();
        let mut tx = self.store.begin_write().await?;
        let before = keys::get_in(&mut tx, &key).await?;
        let details = change.details(before, &value);
        let draft = self.auditor.draft(actor, change.action(), "settings", Outcome::Success, details).await?;
        keys::set_in(&mut tx, &key, &value).await?;
        draft.append_in(&mut tx, self.store.backend()).await?;
        tx.commit().await?;
        if let Change::TimeZone(z) = change {
            crate::timefmt::set_console_zone(z);
        }
        Ok(())
    }

    pub async fn view(&self) -> Result<View, StoreError> {
        let mut two_approvers_above = Vec::new();
        for c in Currency::ALL {
            two_approvers_above
                .push((*c, self.store.setting(&keys::two_approvers_above(*c)).await?.unwrap_or_default()));
        }
        Ok(View {
            notify_url: self.store.setting(keys::NOTIFY_URL).await?,
            has_notify_secret: self.store.setting(keys::NOTIFY_SECRET).await?.is_some(),
            merchant_name: self.store.setting(keys::MERCHANT_NAME).await?,
            two_approvers_above,
        })
    }

    /// The console's time zone as stored (the process keeps it for rendering).
    pub async fn time_zone(&self) -> Result<Option<Zone>, StoreError> {
        Ok(self.store.setting(keys::TIME_ZONE).await?.and_then(|z| Zone::parse(&z)))
    }
}
