-- Collecting payments: checkouts, the webhook inbox, the shop-notification outbox.
-- Customer e-mails, names, phones and raw webhook bodies are sealed by the application.
CREATE TABLE checkouts (
    reference          TEXT PRIMARY KEY,
    fingerprint        TEXT NOT NULL,
    amount             TEXT NOT NULL,
    currency           TEXT NOT NULL,
    email_enc          TEXT NOT NULL,
    name_enc           TEXT,
    phone_enc          TEXT,
    redirect_url       TEXT,
    status             TEXT NOT NULL,
    checkout_url       TEXT,
    transaction_id     BIGINT,
    paid_amount        TEXT,
    review_reason      TEXT,
    api_key_id         TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    -- The reconciler's schedule: when to verify by reference next, and how often it has.
    next_check_at      BIGINT,
    checks             BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX checkouts_status ON checkouts (status, created_at);
CREATE INDEX checkouts_due ON checkouts (status, next_check_at);

CREATE TABLE checkout_events (
    reference TEXT NOT NULL REFERENCES checkouts(reference),
    at        BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE INDEX checkout_events_reference ON checkout_events (reference, at);

-- Every signed webhook, stored before the 200 is returned. The dedupe key is kept forever.
CREATE TABLE webhook_inbox (
    id              TEXT PRIMARY KEY,
    dedupe_key      TEXT NOT NULL UNIQUE,
    body_enc        TEXT NOT NULL,
    received_at     BIGINT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    note            TEXT
);
CREATE INDEX webhook_inbox_due ON webhook_inbox (state, next_attempt_at);

-- Notifications to the shop, written in the same transaction as the state change.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    event           TEXT NOT NULL,
    reference       TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at    BIGINT,
    dead            BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX outbox_once ON outbox (event, reference);
