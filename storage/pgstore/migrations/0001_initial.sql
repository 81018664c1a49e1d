-- nudgebot's first PostgreSQL schema: the same records as the bbolt
-- layout (storage/doc.go), one table per bucket, the indexes as real
-- indexes. Records are the JSON encodings of package nudges; the columns
-- beside them are what the indexes and the conditional writes need.
-- Times in index columns are Unix nanoseconds (bigint): timestamptz
-- keeps microseconds, and a due time compared for exactly-once start
-- must round-trip to the nanosecond. Ids sort as bytes (COLLATE "C"),
-- as bbolt's keys do.

CREATE TABLE meta (
	key   text COLLATE "C" PRIMARY KEY,
	value jsonb NOT NULL
);

CREATE TABLE subscribers (
	user_id  text COLLATE "C" PRIMARY KEY,
	next_due bigint,              -- NULL: not scheduled
	active   boolean NOT NULL,    -- subscribed and not inactive
	record   jsonb NOT NULL
);
-- The due index: Due reads the people due, in order, and no others.
CREATE INDEX subscribers_due ON subscribers (next_due, user_id) WHERE next_due IS NOT NULL;

CREATE TABLE deliveries (
	id      text COLLATE "C" PRIMARY KEY,
	user_id text COLLATE "C" NOT NULL,
	slot    bigint NOT NULL,
	pending boolean NOT NULL,
	record  jsonb NOT NULL
);
CREATE INDEX deliveries_person ON deliveries (user_id, slot);
CREATE INDEX deliveries_slot ON deliveries (slot);
-- The outbox.
CREATE INDEX deliveries_outbox ON deliveries (slot, id) WHERE pending;

CREATE TABLE seen (
	key     text COLLATE "C" PRIMARY KEY,
	seen_at bigint NOT NULL
);
CREATE INDEX seen_by_time ON seen (seen_at);

CREATE TABLE digests (
	channel text COLLATE "C" PRIMARY KEY,
	state   jsonb NOT NULL
);

CREATE TABLE pulses (
	id        text COLLATE "C" PRIMARY KEY,
	channel   text COLLATE "C" NOT NULL,
	opened    bigint NOT NULL,
	closed    bigint,             -- NULL while open
	totals    jsonb NOT NULL,     -- running totals, never who gave which score
	voter_key bytea               -- while open; destroyed at close
);
CREATE INDEX pulses_closed ON pulses (closed) WHERE closed IS NOT NULL;

-- A keyed marker per person who answered an open pulse (HMAC under the
-- pulse's voter key), deleted with the key when the pulse closes.
CREATE TABLE pulse_voters (
	pulse_id  text COLLATE "C" NOT NULL REFERENCES pulses (id) ON DELETE CASCADE,
	marker    bytea NOT NULL,
	voted     boolean NOT NULL DEFAULT false,
	hear_more integer NOT NULL DEFAULT 0,
	PRIMARY KEY (pulse_id, marker)
);

CREATE TABLE pulse_history (
	channel  text COLLATE "C" NOT NULL,
	closed   bigint NOT NULL,
	pulse_id text COLLATE "C" NOT NULL,
	summary  jsonb NOT NULL,
	PRIMARY KEY (channel, closed, pulse_id)
);
CREATE INDEX pulse_history_closed ON pulse_history (closed);

-- Each person's data key, sealed under a master key.
CREATE TABLE data_keys (
	user_id text COLLATE "C" PRIMARY KEY,
	master  text NOT NULL,
	key_id  text NOT NULL,
	sealed  bytea NOT NULL
);

-- A reflection: text and commitment sealed under its author's data key,
-- bound to user_id, seq, created, share and share_channel; the rest
-- plain in record so digests and follow-ups need no key.
CREATE TABLE reflections (
	user_id       text COLLATE "C" NOT NULL,
	seq           integer NOT NULL,
	created       bigint NOT NULL,
	data_key      text NOT NULL,
	sealed        bytea NOT NULL,
	share         text NOT NULL,
	message_ts    text COLLATE "C",
	follow_up_due bigint,         -- set while the follow-up is pending
	record        jsonb NOT NULL,
	PRIMARY KEY (user_id, seq)
);
CREATE INDEX reflections_shared ON reflections (user_id, created, seq) WHERE share <> '';
CREATE INDEX reflections_follow_ups ON reflections (user_id, follow_up_due, seq) WHERE follow_up_due IS NOT NULL;
CREATE INDEX reflections_message ON reflections (user_id, message_ts) WHERE message_ts IS NOT NULL;

-- The last seq given each person, so a seq is never reused.
CREATE TABLE reflection_seq (
	user_id text COLLATE "C" PRIMARY KEY,
	last    integer NOT NULL
);

-- People whose Forget has not finished; Open finishes it.
CREATE TABLE forgetting (
	user_id text COLLATE "C" PRIMARY KEY,
	since   bigint NOT NULL
);
