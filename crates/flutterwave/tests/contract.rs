//! The client against the emulator over real HTTP: every endpoint, success and error paths.

mod support;

use flutterwave::banks::ResolveRequest;
use flutterwave::cards::CardRequest;
use flutterwave::transactions::{RefundRequest, TxStatus};
use flutterwave::transfers::{BeneficiaryRequest, BulkItem, BulkTransferRequest, TransferRequest, TransferStatus};
use flutterwave::{Amount, ErrorKind, Indefinite, Reply};
use serde_json::json;
use support::Env;

fn amt(s: &str) -> Amount {
    s.parse().unwrap()
}

fn rejected<T: std::fmt::Debug>(r: Reply<T>) -> flutterwave::ApiError {
    match r {
        Reply::Rejected(e) => e,
        other => panic!("expected a definite refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_key_is_a_definite_401() {
    let env = Env::start().await;
    let mut config = env.config();
    config.secret_key = flutterwave::SecretKey::new("FLWSECK_TEST-wrong-X");
    let client = flutterwave::Client::new(config).unwrap();
    let e = rejected(client.balances().await);
    assert_eq!((e.http_status, e.kind), (401, ErrorKind::Unauthorized));
    assert!(!format!("{:?}", env.config()).contains(&env.key), "the key is masked in Debug");
}

#[tokio::test]
async fn payments_verify_list_refund_and_resend() {
    let env = Env::start().await;
    let client = env.client();
    let id = env.paid_checkout("order-1", "1500.50", "NGN").await;

    let t = client.verify_transaction(id).await.ok().expect("verify");
    assert_eq!(
        (t.id, t.tx_ref.as_str(), t.currency.as_str(), t.status.clone()),
        (id, "order-1", "NGN", TxStatus::Successful)
    );
    assert_eq!(t.amount, amt("1500.50"), "money survives exactly");
    assert!(t.amount_settled.is_some() && t.card.is_some() && t.customer.is_some());

    let by_ref = client.verify_by_reference("order-1").await.ok().expect("verify by reference");
    assert_eq!(by_ref.id, id);

    let e = rejected(client.verify_transaction(99).await);
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(rejected(client.verify_by_reference("nope").await).kind, ErrorKind::NotFound);

    // Several attempts under one tx_ref get their own ids; the list shows string ids (a quirk) and decodes.
    env.control("/_emulator/charges", json!({"tx_ref": "order-1", "status": "failed"})).await;
    let page = client.list_transactions(None, None, 1).await.ok().expect("list");
    assert_eq!(page.items.len(), 2);
    assert_ne!(page.items[0].id, page.items[1].id);
    assert_eq!(page.page_info.and_then(|p| p.total), Some(2));

    let r = client
        .refund(id, &RefundRequest { amount: Some(amt("500")), comments: Some("partial".into()) })
        .await
        .ok()
        .expect("refund");
    assert_eq!(r.amount_refunded, Some(amt("500")));
    let e = rejected(client.refund(id, &RefundRequest { amount: Some(amt("2000")), comments: None }).await);
    assert_eq!(e.kind, ErrorKind::Invalid, "{e:?}");
    // The refund reads back, alone and in the listing.
    let again = client.get_refund(r.id).await.ok().expect("GET /refunds/{id}");
    assert_eq!((again.id, again.tx_id, again.status.as_str()), (r.id, Some(id), "completed"));
    let listed = client.list_refunds(None, 1).await.ok().expect("GET /refunds");
    assert!(listed.items.iter().any(|f| f.id == r.id && f.amount_refunded == Some(amt("500"))));
    assert_eq!(rejected(client.get_refund(424242).await).kind, ErrorKind::NotFound);

    assert_eq!(client.resend_hook(id).await.ok().as_deref(), Some("hook sent"));
    assert_eq!(rejected(client.resend_hook(424242).await).kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn banks_branches_and_account_resolution() {
    let env = Env::start().await;
    let client = env.client();
    for country in ["NG", "GH", "KE", "UG", "ZA"] {
        let banks = client.banks(country).await.ok().unwrap_or_else(|| panic!("banks {country}"));
        assert!(banks.len() >= 5, "{country}");
    }
    let ke = client.banks("KE").await.ok().unwrap();
    assert!(ke.iter().any(|b| b.code == "MPS"));
    let ng = client.banks("NG").await.ok().unwrap();
    assert!(ng.iter().any(|b| b.code == "999992"), "codes longer than 3 characters");
    assert!(rejected(client.banks("../../x").await).http_status >= 400);

    let gh = client.banks("GH").await.ok().unwrap();
    let branches = client.bank_branches(gh[0].id).await.ok().expect("branches");
    assert!(!branches.is_empty());
    assert!(matches!(client.bank_branches(1).await, Reply::Rejected(_)));

    let ok = client
        .resolve_account(&ResolveRequest {
            account_number: "0690000032".into(),
            account_bank: "044".into(),
            kind: None,
            country: None,
        })
        .await
        .ok()
        .expect("test account resolves");
    assert_eq!(ok.account_number, "0690000032");
    let e = rejected(
        client
            .resolve_account(&ResolveRequest {
                account_number: "0123456789".into(),
                account_bank: "044".into(),
                kind: None,
                country: None,
            })
            .await,
    );
    assert_eq!(e.kind, ErrorKind::InvalidAccount);
    let mpesa = client
        .resolve_account(&ResolveRequest {
            account_number: "+254709929220".into(),
            account_bank: "MPS".into(),
            kind: Some("MOBILEMONEY".into()),
            country: Some("KE".into()),
        })
        .await
        .ok()
        .expect("M-Pesa resolves");
    assert_eq!(mpesa.account_number, "254709929220");
}

fn transfer(reference: &str, amount: &str) -> TransferRequest {
    TransferRequest {
        account_bank: "044".into(),
        account_number: "0690000040".into(),
        amount: amt(amount),
        currency: "NGN".into(),
        reference: reference.into(),
        debit_currency: None,
        narration: Some("payout".into()),
        callback_url: None,
        beneficiary_name: None,
        destination_branch_code: None,
        meta: None,
    }
}

#[tokio::test]
async fn transfers_lifecycle_fees_retries_and_bulk() {
    let env = Env::start().await;
    let client = env.client();
    env.faults(json!({"minute_ms": 20})).await;
    let before = client.balance("NGN").await.ok().expect("balance").available_balance;

    let t = client.create_transfer(&transfer("payout-1_PMCKDU_1", "5500")).await.ok().expect("queued");
    assert_eq!(t.status, TransferStatus::New);
    assert_eq!(t.fee, Some(amt("26.875")));
    let dup = rejected(client.create_transfer(&transfer("payout-1_PMCKDU_1", "5500")).await);
    assert_eq!(dup.kind, ErrorKind::DuplicateReference);
    let mut black = transfer("black-1", "100");
    black.account_number = "0690000036".into();
    assert_eq!(rejected(client.create_transfer(&black).await).kind, ErrorKind::InvalidAccount);

    let mut settled = None;
    for _ in 0..100 {
        let now = client.get_transfer(t.id).await.ok().expect("fetch");
        if now.status.is_final() {
            settled = Some(now);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(settled.expect("settles").status, TransferStatus::Successful);
    let after = client.balance("NGN").await.ok().unwrap().available_balance;
    assert_eq!(before.decimal() - after.decimal(), amt("5526.875").decimal(), "amount and fee left the wallet");

    // A transfer with no test suffix stays pending until settled by the control surface.
    let f = client.create_transfer(&transfer("payout-2", "100")).await.ok().unwrap();
    env.control(&format!("/_emulator/transfers/{}/complete", f.id), json!({"status": "FAILED"})).await;
    assert_eq!(client.get_transfer(f.id).await.ok().unwrap().status, TransferStatus::Failed);
    let failed = client.list_transfers(Some("FAILED"), 1).await.ok().expect("list");
    assert_eq!(failed.items.len(), 1);
    let retried = client.retry_transfer(f.id).await.ok().expect("retry");
    assert_eq!(retried.reference.as_deref(), Some("payout-2_RETRY_1"));
    assert_eq!(rejected(client.retry_transfer(t.id).await).kind, ErrorKind::Invalid, "only failed transfers retry");
    assert_eq!(rejected(client.get_transfer(1).await).kind, ErrorKind::NotFound);

    let fees = client.transfer_fee(amt("100"), "NGN", Some("account")).await.ok().expect("fee");
    assert_eq!(fees[0].fee, amt("10.75"));

    let bulk = client
        .bulk_transfer(&BulkTransferRequest {
            title: Some("salaries".into()),
            bulk_data: vec![
                BulkItem {
                    bank_code: "044".into(),
                    account_number: "0690000031".into(),
                    amount: amt("100"),
                    currency: "NGN".into(),
                    narration: "a".into(),
                    reference: "bulk-a".into(),
                    debit_currency: None,
                    beneficiary_name: None,
                },
                BulkItem {
                    bank_code: "044".into(),
                    account_number: "0690000032".into(),
                    amount: amt("200"),
                    currency: "NGN".into(),
                    narration: "b".into(),
                    reference: "bulk-b".into(),
                    debit_currency: None,
                    beneficiary_name: None,
                },
            ],
        })
        .await
        .ok()
        .expect("bulk");
    assert!(bulk.id > 0);
}

#[tokio::test]
async fn beneficiaries_and_balances() {
    let env = Env::start().await;
    let client = env.client();
    let b = client
        .create_beneficiary(&BeneficiaryRequest {
            account_bank: "044".into(),
            account_number: "0690000034".into(),
            beneficiary_name: "Ngozi Eze".into(),
            currency: Some("NGN".into()),
            bank_name: None,
        })
        .await
        .ok()
        .expect("create");
    assert_eq!(client.get_beneficiary(b.id).await.ok().expect("get").account_number, "0690000034");
    assert_eq!(client.list_beneficiaries(1).await.ok().expect("list").items.len(), 1);
    assert_eq!(client.delete_beneficiary(b.id).await.ok().as_deref(), Some("Deleted"));
    assert_eq!(rejected(client.get_beneficiary(b.id).await).kind, ErrorKind::NotFound);
    let bad = client
        .create_beneficiary(&BeneficiaryRequest {
            account_bank: "044".into(),
            account_number: "1111111111".into(),
            beneficiary_name: "X".into(),
            currency: None,
            bank_name: None,
        })
        .await;
    assert_eq!(rejected(bad).kind, ErrorKind::InvalidAccount);
    let balances = client.balances().await.ok().expect("balances");
    assert!(balances.iter().any(|b| b.currency == "NGN"));
    assert!(matches!(client.balance("XYZ").await, Reply::Rejected(_)));
}

#[tokio::test]
async fn virtual_cards_end_to_end() {
    let env = Env::start().await;
    env.faults(json!({"minute_ms": 10})).await;
    let client = env.client();
    let req = CardRequest {
        currency: "USD".into(),
        amount: amt("5"),
        debit_currency: Some("USD".into()),
        billing_name: None,
        billing_address: None,
        billing_city: None,
        billing_state: None,
        billing_postal_code: None,
        billing_country: None,
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        date_of_birth: "1990/01/01".into(),
        email: "ada@example.com".into(),
        phone: "2348000000000".into(),
        title: "MRS".into(),
        gender: "F".into(),
        callback_url: None,
    };
    let card = client.create_card(&req).await.ok().expect("card");
    assert_eq!(card.amount, amt("5.00"), "string amounts decode");
    // Created active, without `card_hash` (as Flutterwave's answer is); a read has it.
    assert!(card.is_active && card.card_hash.is_none(), "{card:?}");
    assert!(!format!("{card:?}").contains(card.card_pan.as_deref().unwrap()), "PAN is masked in Debug");
    let read = client.get_card(&card.id).await.ok().expect("get");
    assert!(read.is_active && read.card_hash.is_some());
    client.fund_card(&card.id, "USD", amt("10")).await.ok().expect("fund");
    client.withdraw_from_card(&card.id, amt("3")).await.ok().expect("withdraw");
    assert!(matches!(client.withdraw_from_card(&card.id, amt("1000")).await, Reply::Rejected(_)));
    client.block_card(&card.id).await.ok().expect("block");
    assert!(!client.get_card(&card.id).await.ok().unwrap().is_active);
    client.unblock_card(&card.id).await.ok().expect("unblock");
    let txns = client.card_transactions(&card.id, "2000-01-01", "2999-01-01", 0, 20).await.ok().expect("transactions");
    assert_eq!(txns.len(), 3);
    assert_eq!(client.list_cards().await.ok().expect("list").len(), 1);
    client.terminate_card(&card.id).await.ok().expect("terminate");
    assert!(matches!(client.fund_card(&card.id, "USD", amt("1")).await, Reply::Rejected(_)));
    assert_eq!(rejected(client.get_card("no-such-card").await).kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn an_unparsable_answer_is_indefinite() {
    // Point the client at the emulator's hosted-page path: HTML, not an envelope.
    let env = Env::start().await;
    let mut config = env.config();
    config.base_url = url::Url::parse(&format!("{}/hosted/pay", env.emulator.url())).unwrap();
    config.max_retries = 0;
    let client = flutterwave::Client::new(config).unwrap();
    match client.verify_transaction(1).await {
        Reply::Indefinite(Indefinite::Unparsable { .. }) => {}
        other => panic!("expected indefinite, got {other:?}"),
    }
}

#[tokio::test]
async fn a_closed_port_is_indefinite_not_a_refusal() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut config = flutterwave::Config::new(
        url::Url::parse(&format!("http://{addr}/v3")).unwrap(),
        flutterwave::SecretKey::new("k"),
    );
    config.max_retries = 0;
    let client = flutterwave::Client::new(config).unwrap();
    assert!(matches!(client.verify_transaction(1).await, Reply::Indefinite(Indefinite::Connection(_))));
}
