-- Leadership among replicas sharing the database: the one holding a
-- lease runs the scheduler (due nudges, digests, housekeeping). expires_at
-- is read and written with the database's clock only, so the replicas'
-- own clocks may disagree. epoch counts the terms: each takeover adds
-- one, and the leader's writes are refused unless its epoch still holds
-- the lease (the fencing token).
CREATE TABLE leases (
	name       text COLLATE "C" PRIMARY KEY,
	holder     text NOT NULL DEFAULT '',
	epoch      bigint NOT NULL DEFAULT 0,
	expires_at timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO leases (name) VALUES ('scheduler');
