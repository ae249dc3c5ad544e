-- Chargebacks as Flutterwave reports them (found by the poller, or looked up
-- on a webhook hint), linked to the checkout they dispute. Statuses and stages
-- are kept in Flutterwave's own words; amounts as exact decimal text.
CREATE TABLE chargebacks (
    id                  BIGINT PRIMARY KEY,
    checkout_reference  TEXT,
    transaction_id      BIGINT,
    flw_ref             TEXT NOT NULL,
    amount              TEXT NOT NULL,
    currency            TEXT,
    status              TEXT NOT NULL,
    stage               TEXT NOT NULL,
    due_at              BIGINT,
    comment             TEXT,
    history_seen        BIGINT NOT NULL DEFAULT 0,
    first_seen_at       BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX chargebacks_by_checkout ON chargebacks (checkout_reference);
CREATE INDEX chargebacks_by_due ON chargebacks (status, due_at);
