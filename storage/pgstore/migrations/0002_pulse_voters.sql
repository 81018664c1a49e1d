-- Who may answer an open pulse: its channel's members when it was
-- posted, as a JSON array of user ids; NULL for a pulse opened before
-- they were kept. Dropped when the pulse closes, with its voter key.
ALTER TABLE pulses ADD COLUMN voters jsonb;
