-- Bulk payouts: a CSV checked all or nothing, prepared item by item (each a
-- payout with `batch_id`), approved as one, dispatched item by item.
CREATE TABLE payout_batches (
    id           TEXT PRIMARY KEY,
    title        TEXT,
    created_by   TEXT NOT NULL,
    status       TEXT NOT NULL,
    -- The uploaded file, sealed (it holds account numbers and names).
    csv_enc      TEXT NOT NULL,
    total_items  BIGINT NOT NULL,
    prepared     BIGINT NOT NULL DEFAULT 0,
    errors       TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX payout_batches_status ON payout_batches (status, created_at);
CREATE INDEX payouts_batch ON payouts (batch_id);
