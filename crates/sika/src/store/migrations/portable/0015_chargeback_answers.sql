-- A merchant's answer to a chargeback: prepared by one person, sent by an
-- approver who did not prepare it (the same rule as outgoing money). The
-- evidence file is sealed at rest (field encryption) until it is sent.
CREATE TABLE chargeback_answers (
    reference         TEXT PRIMARY KEY,
    chargeback_id     BIGINT NOT NULL,
    action            TEXT NOT NULL,
    comment           TEXT NOT NULL,
    evidence_enc      TEXT,
    evidence_kind     TEXT,
    currency          TEXT NOT NULL,
    status            TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    approvals_needed  BIGINT NOT NULL,
    proof_link        TEXT,
    failure           TEXT,
    expires_at        BIGINT NOT NULL,
    sent_at           BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX chargeback_answers_by_status ON chargeback_answers (status, updated_at);
CREATE INDEX chargeback_answers_by_chargeback ON chargeback_answers (chargeback_id);

CREATE TABLE chargeback_answer_approvals (
    reference  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (reference, user_id)
);
