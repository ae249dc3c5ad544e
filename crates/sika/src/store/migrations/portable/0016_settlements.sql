-- Settlements as Flutterwave reports them (polled daily), and the lines each
-- paid, linked to the checkout their tx_ref names. Amounts are Flutterwave's,
-- as exact decimal text: Sika computes none of them. Id lists (the
-- transactions, refunds and chargebacks a settlement covers) are JSON arrays.
CREATE TABLE settlements (
    id                BIGINT PRIMARY KEY,
    status            TEXT NOT NULL,
    currency          TEXT NOT NULL,
    gross_amount      TEXT NOT NULL,
    app_fee           TEXT NOT NULL,
    merchant_fee      TEXT NOT NULL,
    stampduty         TEXT NOT NULL,
    refund            TEXT NOT NULL,
    chargeback        TEXT NOT NULL,
    net_amount        TEXT NOT NULL,
    transaction_count BIGINT,
    transaction_ids   TEXT NOT NULL,
    refund_ids        TEXT NOT NULL,
    chargeback_ids    TEXT NOT NULL,
    settled_at        BIGINT,
    lines_at          BIGINT,
    first_seen_at     BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX settlements_by_date ON settlements (settled_at);
CREATE TABLE settlement_lines (
    settlement_id      BIGINT NOT NULL REFERENCES settlements(id),
    transaction_id     BIGINT NOT NULL,
    tx_ref             TEXT NOT NULL,
    flw_ref            TEXT,
    charged_amount     TEXT NOT NULL,
    fees               TEXT NOT NULL,
    settlement_amount  TEXT NOT NULL,
    status             TEXT,
    transaction_at     BIGINT,
    checkout_reference TEXT,
    PRIMARY KEY (settlement_id, transaction_id)
);
CREATE INDEX settlement_lines_by_checkout ON settlement_lines (checkout_reference);
CREATE INDEX settlement_lines_by_transaction ON settlement_lines (transaction_id);
