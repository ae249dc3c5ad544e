-- Virtual cards (only when SIKA_CARDS_ENABLED). Never a card number or a
-- CVV: Flutterwave's card id, the masked number as Flutterwave shows it,
-- and the cardholder sealed by the application.
CREATE TABLE cards (
    reference      TEXT PRIMARY KEY,
    fingerprint    TEXT NOT NULL,
    flw_id         TEXT,
    status         TEXT NOT NULL,
    currency       TEXT NOT NULL,
    amount         TEXT NOT NULL,
    name_on_card   TEXT NOT NULL,
    masked_pan     TEXT,
    card_type      TEXT,
    holder_enc     TEXT NOT NULL,
    api_key_id     TEXT NOT NULL,
    failure        TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    next_check_at  BIGINT,
    checks         BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX cards_flw_id ON cards (flw_id);
CREATE INDEX cards_due ON cards (status, next_check_at);
CREATE INDEX cards_created ON cards (created_at, reference);

CREATE TABLE card_events (
    reference TEXT NOT NULL REFERENCES cards(reference),
    at        BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE INDEX card_events_reference ON card_events (reference, at);
