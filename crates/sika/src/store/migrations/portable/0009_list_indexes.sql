-- Lists that stay fast on a large table: a webhook or a search names a
-- payment by Flutterwave's transaction id, and the payouts list is read
-- newest first.
CREATE INDEX checkouts_transaction ON checkouts (transaction_id);
CREATE INDEX payouts_created ON payouts (created_at, reference);
