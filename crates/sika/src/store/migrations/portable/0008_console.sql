-- The console a payments team uses: finding a payment by the customer's
-- e-mail (a keyed blind index, never the address), what the payment link
-- says and how long it lives, how the customer paid (from the verify
-- answer: method, card brand and last four digits only, the fee, and the
-- processor's words), and every delivery attempt to the shop.
ALTER TABLE checkouts ADD COLUMN email_index TEXT;
ALTER TABLE checkouts ADD COLUMN description TEXT;
ALTER TABLE checkouts ADD COLUMN link_expires_at BIGINT;
ALTER TABLE checkouts ADD COLUMN payment_type TEXT;
ALTER TABLE checkouts ADD COLUMN card_brand TEXT;
ALTER TABLE checkouts ADD COLUMN card_last4 TEXT;
ALTER TABLE checkouts ADD COLUMN fee TEXT;
ALTER TABLE checkouts ADD COLUMN processor_response TEXT;
CREATE INDEX checkouts_email ON checkouts (email_index);
CREATE INDEX checkouts_created ON checkouts (created_at, reference);

CREATE TABLE outbox_attempts (
    outbox_id  TEXT NOT NULL,
    at         BIGINT NOT NULL,
    url        TEXT NOT NULL,
    status     BIGINT,
    latency_ms BIGINT NOT NULL,
    outcome    TEXT NOT NULL
);
CREATE INDEX outbox_attempts_outbox ON outbox_attempts (outbox_id, at);
CREATE INDEX outbox_attempts_at ON outbox_attempts (at);
