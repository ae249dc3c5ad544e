-- The outbound budget towards Flutterwave, shared by every instance on one
-- database (PostgreSQL; a SQLite instance is alone and keeps it in memory):
-- the next free send time of the account's schedule and of the visitors'
-- share, and until when a 429 pauses everyone — microseconds on the
-- database's clock.
CREATE TABLE flw_budget (
    id            TEXT PRIMARY KEY,
    next_at       BIGINT NOT NULL,
    paused_until  BIGINT NOT NULL
);
INSERT INTO flw_budget (id, next_at, paused_until) VALUES ('all', 0, 0);
INSERT INTO flw_budget (id, next_at, paused_until) VALUES ('interactive', 0, 0);

-- Which worker holds a claimed inbox row: its lease is short and renewed
-- while it works, so a dead instance's rows are taken over within seconds.
ALTER TABLE webhook_inbox ADD COLUMN claimed_by TEXT;
