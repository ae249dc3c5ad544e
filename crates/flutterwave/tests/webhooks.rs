//! Webhook signatures (vectors for both schemes) and parsing of every payload family.

use flutterwave::transactions::TxStatus;
use flutterwave::transfers::TransferStatus;
use flutterwave::webhook::{SignatureCheck, WebhookEvent, hmac_signature, parse, verify_signature};
use proptest::prelude::*;

/// RFC 4231 test case 2 ("Jefe"), base64-encoded.
#[test]
fn hmac_vector() {
    assert_eq!(hmac_signature("Jefe", b"what do ya want for nothing?"), "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
}

#[test]
fn signature_schemes_accept_only_the_secret() {
    let secret = "my-secret-hash";
    let body = br#"{"event":"charge.completed","data":{"id":1}}"#;
    let sig = hmac_signature(secret, body);
    assert_eq!(verify_signature(Some(secret), Some(secret.as_bytes()), None, body), SignatureCheck::Valid);
    assert_eq!(verify_signature(Some(secret), None, Some(sig.as_bytes()), body), SignatureCheck::Valid);
    assert_eq!(
        verify_signature(Some(secret), None, Some(secret.as_bytes()), body),
        SignatureCheck::Valid,
        "plain form"
    );
    // Forged, tampered, missing, wrong scheme, no secret.
    assert_eq!(verify_signature(Some(secret), Some(b"guess"), None, body), SignatureCheck::Invalid);
    let tampered = br#"{"event":"charge.completed","data":{"id":2}}"#;
    assert_eq!(verify_signature(Some(secret), None, Some(sig.as_bytes()), tampered), SignatureCheck::Invalid);
    assert_eq!(verify_signature(Some(secret), None, None, body), SignatureCheck::Missing);
    assert_eq!(
        verify_signature(Some(secret), Some(sig.as_bytes()), None, body),
        SignatureCheck::Invalid,
        "an HMAC in verif-hash is wrong"
    );
    assert_eq!(verify_signature(None, Some(secret.as_bytes()), None, body), SignatureCheck::NoSecretConfigured);
    assert_eq!(verify_signature(Some(""), Some(b""), None, body), SignatureCheck::NoSecretConfigured);
    assert_eq!(verify_signature(Some(secret), Some(b"my-secret-has"), None, body), SignatureCheck::Invalid, "prefix");
}

#[test]
fn charge_completed_wrapped_and_legacy() {
    let wrapped = br#"{"event":"charge.completed","data":{"id":1234567,"tx_ref":"order-42","flw_ref":"FLW-MOCK-1","amount":100.50,"currency":"NGN","status":"successful","customer":{"phone_number":null},"meta":[{"a":1}]},"event.type":"CARD_TRANSACTION"}"#;
    match parse(wrapped) {
        WebhookEvent::Charge(c) => {
            assert_eq!(
                (c.id, c.tx_ref.as_str(), c.status, c.legacy),
                (1234567, "order-42", TxStatus::Successful, false)
            );
            assert_eq!(c.amount.unwrap().to_string(), "100.50");
        }
        other => panic!("{other:?}"),
    }
    let legacy = br#"{"id":"99","txRef":"order-43","flwRef":"X","amount":"250","currency":"KES","status":"failed","event.type":"MPESA_TRANSACTION"}"#;
    match parse(legacy) {
        WebhookEvent::Charge(c) => {
            assert_eq!((c.id, c.tx_ref.as_str(), c.status, c.legacy), (99, "order-43", TxStatus::Failed, true))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn transfer_card_refund_and_unknown() {
    let t = br#"{"event":"transfer.completed","event.type":"Transfer","data":{"id":33286,"fullname":"A B","currency":"NGN","amount":30020,"fee":26.875,"status":"FAILED","reference":"payout-1","complete_message":"DISBURSE FAILED: Insufficient funds in customer wallet","meta":null}}"#;
    match parse(t) {
        WebhookEvent::Transfer(t) => {
            assert_eq!((t.id, t.status, t.reference.as_deref()), (33286, TransferStatus::Failed, Some("payout-1")));
            assert!(t.complete_message.unwrap().contains("Insufficient"));
        }
        other => panic!("{other:?}"),
    }
    let card = br#"{"CardId":"3f1c-uuid","Amount":12.5,"Balance":7.5,"TransactionId":"881","MaskedPan":"536613*******0000","Status":"Successful","Type":"Debit","Description":"CHARGE"}"#;
    match parse(card) {
        WebhookEvent::Card(c) => assert_eq!((c.card_id.as_str(), c.kind.as_deref()), ("3f1c-uuid", Some("Debit"))),
        other => panic!("{other:?}"),
    }
    let refund = br#"{"id":12,"AmountRefunded":50,"status":"completed","FlwRef":"F","destination":"payment_source","comments":"x","meta":"{}","createdAt":"2024","walletId":1,"AccountId":2,"TransactionId":1234567}"#;
    match parse(refund) {
        WebhookEvent::Refund(r) => assert_eq!((r.id, r.transaction_id), (12, Some(1234567))),
        other => panic!("{other:?}"),
    }
    let odd = br#"{"event":"subscription.cancelled","data":{"id":1}}"#;
    assert!(
        matches!(parse(odd), WebhookEvent::Unknown { event: Some(e), raw } if e == "subscription.cancelled" && raw == odd)
    );
    // Anything that calls itself a chargeback is only a hint to look one up by flw_ref.
    let hint = br#"{"event":"Chargeback.Initiated","data":{"flw_ref":"FLW-MOCK-9","status":"won","amount":1}}"#;
    assert_eq!(parse(hint), WebhookEvent::ChargebackHint { flw_ref: "FLW-MOCK-9".into() });
    let no_ref = br#"{"event":"chargeback","data":{"id":3}}"#;
    assert!(matches!(parse(no_ref), WebhookEvent::Unknown { event: Some(_), .. }), "no flw_ref: nothing to look up");
    // A charge event whose data is malformed is Unknown, not a crash or a guess.
    let bad = br#"{"event":"charge.completed","data":{"id":"not-a-number","tx_ref":1}}"#;
    assert!(matches!(parse(bad), WebhookEvent::Unknown { .. }));
    assert!(matches!(parse(b"<xml/>"), WebhookEvent::Unknown { event: None, .. }));
}

proptest! {
    #[test]
    fn parsing_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn parsing_never_panics_on_json_like_input(s in r#"\{"(event|data|txRef|CardId|id|amount)":[ -~]{0,80}\}"#) {
        let _ = parse(s.as_bytes());
    }

    #[test]
    fn money_survives_decode_and_encode_exactly(units in -1_000_000_000_000i64..1_000_000_000_000i64, scale in 0u32..=6) {
        let d = rust_decimal::Decimal::new(units, scale);
        let text = d.to_string();
        let a: flutterwave::Amount = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(a.decimal(), d);
        prop_assert_eq!(a.to_string(), text.clone());
        let back = serde_json::to_string(&a).unwrap();
        prop_assert_eq!(&back, &text);
        let quoted: flutterwave::Amount = serde_json::from_str(&format!("\"{text}\"")).unwrap();
        prop_assert_eq!(quoted.decimal(), d);
    }
}

#[test]
fn the_legacy_transfer_shape_and_reversals_parse() {
    use flutterwave::transfers::TransferStatus;
    use flutterwave::webhook::{WebhookEvent, parse};
    let legacy = br#"{"event.type": "Transfer", "transfer": {"id": 33286, "reference": "payout-1", "status": "SUCCESSFUL", "amount": 30020, "currency": "NGN", "date_created": "2024-01-01T10:00:00.000Z", "complete_message": "Successful"}}"#;
    match parse(legacy) {
        WebhookEvent::Transfer(t) => {
            assert_eq!((t.id, t.reference.as_deref(), t.status), (33286, Some("payout-1"), TransferStatus::Successful))
        }
        other => panic!("{other:?}"),
    }
    let reversed = br#"{"event": "transfer.reversed", "data": {"id": 7, "reference": "p-2", "status": "REVERSED"}}"#;
    match parse(reversed) {
        WebhookEvent::Transfer(t) => assert_eq!(t.status, TransferStatus::Reversed),
        other => panic!("{other:?}"),
    }
}
