-- Mail to the people around Sika: an outbox sent by a supervised job. A mail
-- names its reader by user id (the address is read, sealed, from users when
-- it is sent); its text holds counts, amounts, references and links only.
-- dedupe_key makes each mail once however many instances compose it.
CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY,
    dedupe_key      TEXT NOT NULL UNIQUE,
    user_id         TEXT NOT NULL,
    topic           TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX mail_outbox_due ON mail_outbox (state, next_attempt_at);
CREATE INDEX mail_outbox_by_user ON mail_outbox (user_id, topic, created_at);

-- Topics a user turned off (security events cannot be).
CREATE TABLE mail_optouts (
    user_id TEXT NOT NULL,
    topic   TEXT NOT NULL,
    PRIMARY KEY (user_id, topic)
);

-- How far the composer has read the audit log for security events.
CREATE TABLE mail_cursors (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
