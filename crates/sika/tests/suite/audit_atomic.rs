//! A privileged change and its audit entry commit together. A failure is
//! injected right after the entry is written and before the transaction
//! commits (`store::audit_failpoint`, the place a crash would cut): afterwards
//! neither the change nor the entry is there. Done again without the fault,
//! both are. On SQLite and on PostgreSQL, and the chain still verifies.

use crate::support;

use crate::support::emulated::{Env, env_on};
use serde_json::{Value, json};
use sika::auth::{AccountChange, Role};
use sika::domain::PayoutStatus;
use sika::settings::{Change, Settings};
use sika::store::{Kept, audit_failpoint};

async fn entries(e: &Env, action: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1")
        .bind(action)
        .fetch_one(e.app.db.store.pool_for_tests())
        .await
        .unwrap()
}

async fn post(e: &Env, key: &str, path: &str, body: Value) -> u16 {
    e.app.client.post(e.app.url(path)).bearer_auth(key).json(&body).send().await.unwrap().status().as_u16()
}

async fn both_or_neither(db: support::TestDb) {
    let e = env_on(db).await;
    let store = &e.app.db.store;
    let actor = support::cli();

    // A setting.
    let settings = Settings::new(store.clone(), e.app.auth.auditor.clone());
    audit_failpoint::fail_after_append("settings.merchant_name");
    assert!(settings.save(&actor, Change::MerchantName("Ada's".into())).await.is_err());
    assert_eq!(store.setting("merchant.name").await.unwrap(), None, "the change rolled back with its entry");
    assert_eq!(entries(&e, "settings.merchant_name").await, 0, "no entry for a change that did not happen");
    settings.save(&actor, Change::MerchantName("Ada's".into())).await.unwrap();
    assert_eq!(store.setting("merchant.name").await.unwrap().as_deref(), Some("Ada's"));
    assert_eq!(entries(&e, "settings.merchant_name").await, 1);

    // A role, with the user's sessions ended in the same transaction.
    let created = e
        .app
        .auth
        .create_user(&actor, "viewer@example.com", None, Role::Viewer, "Corr3ct-Horse!Battery", true)
        .await
        .unwrap();
    let user = e.app.auth.user(&created.id).await.unwrap().unwrap();
    audit_failpoint::fail_after_append("user.role");
    assert!(e.app.auth.change_account(&actor, &user, AccountChange::Role(Role::Operator)).await.is_err());
    assert_eq!(e.app.auth.user(&created.id).await.unwrap().unwrap().role, Role::Viewer);
    assert_eq!(entries(&e, "user.role").await, 0);
    assert_eq!(
        e.app.auth.change_account(&actor, &user, AccountChange::Role(Role::Operator)).await.unwrap(),
        Kept::Changed
    );
    assert_eq!(e.app.auth.user(&created.id).await.unwrap().unwrap().role, Role::Operator);
    assert_eq!(entries(&e, "user.role").await, 1);

    // An API key.
    let (keys_before, entries_before) = (store.api_keys().await.unwrap().len(), entries(&e, "apikey.create").await);
    audit_failpoint::fail_after_append("apikey.create");
    assert!(e.app.auth.create_api_key(&actor, "ops", "payouts").await.is_err());
    assert_eq!(store.api_keys().await.unwrap().len(), keys_before, "no key without its entry");
    assert_eq!(entries(&e, "apikey.create").await, entries_before);
    let (_, key) = e.app.auth.create_api_key(&actor, "ops", "payouts").await.unwrap();
    assert_eq!(store.api_keys().await.unwrap().len(), keys_before + 1);
    assert_eq!(entries(&e, "apikey.create").await, entries_before + 1);

    // A payout's approval: the approval, the hold and the queueing, or none of them.
    let body = json!({"reference": "atomic-1", "amount": "5000", "currency": "NGN", "bank_code": "044",
                      "account_number": "0690000032", "beneficiary_name": "Pastor Bright"});
    assert_eq!(post(&e, &key, "/api/v1/payouts", body).await, 202);
    assert_eq!(entries(&e, "payout.create").await, 1, "an API key's payout is recorded with it");
    audit_failpoint::fail_after_append("payout.approve");
    assert!(e.app.payouts.approve(&actor, "atomic-1", &support::checker("c1")).await.is_err());
    let p = e.app.payouts.payout("atomic-1").await.unwrap().unwrap();
    assert_eq!(p.status, PayoutStatus::AwaitingApproval);
    assert!(e.app.db.store.payout_approvals("atomic-1").await.unwrap().is_empty(), "no approval recorded");
    assert_eq!(entries(&e, "payout.approve").await, 0);
    assert!(e.app.payouts.approve(&actor, "atomic-1", &support::checker("c1")).await.is_ok());
    assert_eq!(e.app.payouts.payout("atomic-1").await.unwrap().unwrap().status, PayoutStatus::Queued);
    assert_eq!(entries(&e, "payout.approve").await, 1);

    // A rejection, with the shop's notification.
    let body = json!({"reference": "atomic-2", "amount": "5000", "currency": "NGN", "bank_code": "044",
                      "account_number": "0690000032", "beneficiary_name": "Pastor Bright"});
    assert_eq!(post(&e, &key, "/api/v1/payouts", body).await, 202);
    audit_failpoint::fail_after_append("payout.reject");
    assert!(e.app.payouts.reject(&actor, "atomic-2", "not ours").await.is_err());
    assert_eq!(e.app.payouts.payout("atomic-2").await.unwrap().unwrap().status, PayoutStatus::AwaitingApproval);
    assert!(e.app.payouts.reject(&actor, "atomic-2", "not ours").await.unwrap());
    assert_eq!(entries(&e, "payout.reject").await, 1);

    // A test notification for the shop: the queued ping and its entry, or neither.
    let pings = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox WHERE event = 'test.ping'")
            .fetch_one(store.pool_for_tests())
            .await
            .unwrap()
    };
    audit_failpoint::fail_after_append("notification.test");
    assert!(e.app.payments.send_test_event(&actor).await.is_err());
    assert_eq!((pings().await, entries(&e, "notification.test").await), (0, 0));
    e.app.payments.send_test_event(&actor).await.unwrap();
    assert_eq!((pings().await, entries(&e, "notification.test").await), (1, 1));

    // Every entry that was kept chains: the rolled-back ones left no gap.
    let verified = e.app.auth.auditor.verify().await.unwrap();
    assert!(verified.is_ok(), "{verified:?}");
}

#[tokio::test]
async fn a_change_and_its_audit_entry_commit_together_on_sqlite() {
    both_or_neither(support::sqlite().await).await;
}

#[tokio::test]
async fn a_change_and_its_audit_entry_commit_together_on_postgres() {
    let Some(db) = support::postgres().await else { return };
    both_or_neither(db).await;
}
