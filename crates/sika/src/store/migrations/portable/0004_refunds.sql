-- Refunds of paid checkouts, each with its own state:
-- requested → completed | failed, or unknown when Flutterwave gave no definite answer.
CREATE TABLE refunds (
    id             TEXT PRIMARY KEY,
    reference      TEXT NOT NULL REFERENCES checkouts(reference),
    transaction_id BIGINT NOT NULL,
    amount         TEXT NOT NULL,
    status         TEXT NOT NULL,
    flw_refund_id  BIGINT,
    note           TEXT,
    requested_by   TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX refunds_reference ON refunds (reference);
