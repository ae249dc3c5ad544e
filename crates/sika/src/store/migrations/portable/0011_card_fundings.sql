-- Money moved onto or off a card: a card's first load, a funding, a
-- withdrawal. Each waits for approvers who did not ask for it; once approved
-- a load or a funding holds its amount on the wallet (with payouts' holds).
CREATE TABLE card_fundings (
    reference         TEXT PRIMARY KEY,
    card_reference    TEXT NOT NULL REFERENCES cards(reference),
    kind              TEXT NOT NULL,
    amount            TEXT NOT NULL,
    currency          TEXT NOT NULL,
    fingerprint       TEXT NOT NULL,
    status            TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    approvals_needed  BIGINT NOT NULL,
    hold              TEXT NOT NULL DEFAULT '0',
    reason            TEXT,
    flw_txn_id        TEXT,
    expires_at        BIGINT NOT NULL,
    sent_at           BIGINT,
    next_check_at     BIGINT,
    checks            BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX card_fundings_card ON card_fundings (card_reference, created_at);
CREATE INDEX card_fundings_status ON card_fundings (status, updated_at);
-- One card transaction settles at most one funding.
CREATE UNIQUE INDEX card_fundings_flw_txn ON card_fundings (flw_txn_id);

CREATE TABLE card_funding_approvals (
    reference TEXT NOT NULL REFERENCES card_fundings(reference),
    user_id   TEXT NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (reference, user_id)
);
