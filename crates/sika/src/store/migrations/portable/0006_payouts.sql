-- Payouts: transfers to bank accounts and mobile money, with maker-checker approval.
-- Account numbers and names are sealed by the application; `account_mask` is what is shown.
CREATE TABLE payouts (
    reference         TEXT PRIMARY KEY,
    fingerprint       TEXT NOT NULL,
    amount            TEXT NOT NULL,
    currency          TEXT NOT NULL,
    fee               TEXT NOT NULL,
    country           TEXT NOT NULL,
    bank_code         TEXT NOT NULL,
    bank_name         TEXT,
    kind              TEXT NOT NULL,
    branch_code       TEXT,
    account_enc       TEXT NOT NULL,
    account_mask      TEXT NOT NULL,
    given_name_enc    TEXT,
    resolved_name_enc TEXT,
    name_mismatch     BIGINT NOT NULL DEFAULT 0,
    narration         TEXT,
    meta              TEXT,
    status            TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    approvals_needed  BIGINT NOT NULL,
    -- Amount plus fee held on the currency's balance while approved and not final.
    hold              TEXT NOT NULL DEFAULT '0',
    transfer_id       BIGINT,
    flw_status        TEXT,
    complete_message  TEXT,
    reason            TEXT,
    retry_of          TEXT,
    batch_id          TEXT,
    beneficiary_id    TEXT,
    expires_at        BIGINT NOT NULL,
    next_check_at     BIGINT,
    checks            BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX payouts_status ON payouts (status, created_at);
CREATE INDEX payouts_due ON payouts (status, next_check_at);
CREATE UNIQUE INDEX payouts_transfer ON payouts (transfer_id);

-- One row per approver: the approval rule counts distinct approvers who are not the creator.
CREATE TABLE payout_approvals (
    reference TEXT NOT NULL REFERENCES payouts(reference),
    user_id   TEXT NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (reference, user_id)
);

CREATE TABLE payout_events (
    reference TEXT NOT NULL REFERENCES payouts(reference),
    at        BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE INDEX payout_events_reference ON payout_events (reference, at);

-- Saved beneficiaries, sealed like payouts.
CREATE TABLE beneficiaries (
    id                TEXT PRIMARY KEY,
    country           TEXT NOT NULL,
    bank_code         TEXT NOT NULL,
    bank_name         TEXT,
    kind              TEXT NOT NULL,
    branch_code       TEXT,
    account_enc       TEXT NOT NULL,
    account_mask      TEXT NOT NULL,
    name_enc          TEXT,
    resolved_name_enc TEXT,
    created_by        TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    deleted_at        BIGINT
);

-- Flutterwave's bank lists, cached (refreshed daily, served stale on an upstream error).
CREATE TABLE bank_lists (
    country    TEXT PRIMARY KEY,
    banks      TEXT NOT NULL,
    fetched_at BIGINT NOT NULL
);
