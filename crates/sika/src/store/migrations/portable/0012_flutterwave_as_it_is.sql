-- Flutterwave as it really answers (the corpus):
-- what it settled to the merchant and what the customer was charged, as it
-- said them (never computed by Sika); when a transfer's status at
-- Flutterwave last changed (a transfer can wait at `NEW` for days); and why
-- a payout needs a person (a lookup that could not finish, never re-sent).
ALTER TABLE checkouts ADD COLUMN settled_amount TEXT;
ALTER TABLE checkouts ADD COLUMN charged_amount TEXT;
ALTER TABLE payouts ADD COLUMN flw_status_at BIGINT;
ALTER TABLE payouts ADD COLUMN attention TEXT;
