-- What Flutterwave's verify said arrived for a checkout under review (late,
-- underpaid, in another currency), exactly as verified: the cap for refunding it.
ALTER TABLE checkouts ADD COLUMN received_amount TEXT;
ALTER TABLE checkouts ADD COLUMN received_currency TEXT;
