-- Money rules under outages, races and hostile load.
-- Expiry waits for a definite answer: when to look again, and how often it has.
ALTER TABLE checkouts ADD COLUMN expire_check_at BIGINT;
ALTER TABLE checkouts ADD COLUMN expiry_checks BIGINT NOT NULL DEFAULT 0;
-- The return page verifies a checkout at most once per short interval.
ALTER TABLE checkouts ADD COLUMN return_verify_at BIGINT NOT NULL DEFAULT 0;
-- What completed refunds returned, kept with the checkout for lists (exact decimal text).
ALTER TABLE checkouts ADD COLUMN refunded TEXT NOT NULL DEFAULT '0';

-- Refunds are followed until final: Flutterwave's own status text, and when to look again.
ALTER TABLE refunds ADD COLUMN flw_status TEXT;
ALTER TABLE refunds ADD COLUMN comment TEXT;
ALTER TABLE refunds ADD COLUMN next_check_at BIGINT;
ALTER TABLE refunds ADD COLUMN checks BIGINT NOT NULL DEFAULT 0;
CREATE INDEX refunds_follow ON refunds (status, next_check_at);
CREATE UNIQUE INDEX refunds_flw_id ON refunds (flw_refund_id);

-- Wrong step-up codes per session: at the cap the session ends.
ALTER TABLE sessions ADD COLUMN step_up_failures BIGINT NOT NULL DEFAULT 0;
