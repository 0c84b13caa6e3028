-- pgbroker's schema for the default prefix "wsroom". Run it once per
-- database (it is idempotent) when the broker is made with
-- pgbroker.WithoutSchemaSetup(); for another prefix, run the text that
-- pgbroker.SchemaSQL(prefix) returns, or replace "wsroom_" below.
--
-- The tables are created in the first schema of the search_path. A
-- database set up by an earlier pgbroker runs it again: it adds what is
-- missing (wsroom_presence) and leaves the rest as it is.

-- One row per stream of a room that has been published or recorded to:
-- its key (the first 16 bytes of the SHA-256 of the room's name, in
-- hexadecimal, for its publishes; "h" and the same for its records, its
-- history), its epoch (drawn at random when the row is made: offsets
-- restart from 1 in a new epoch) and the offset of its last message.
CREATE TABLE IF NOT EXISTS wsroom_rooms (
	key     text PRIMARY KEY,
	epoch   bigint NOT NULL,
	top     bigint NOT NULL,
	touched timestamptz NOT NULL DEFAULT now()
);

-- Every message published or recorded, in the order of its stream's
-- offsets: the log that a listener reads what it missed from, and the
-- rooms' histories. The row of a room's offset n
-- is committed, and its notification sent, before offset n+1 is taken.
CREATE TABLE IF NOT EXISTS wsroom_log (
	key     text NOT NULL,
	epoch   bigint NOT NULL,
	off     bigint NOT NULL,
	origin  text NOT NULL,
	at      timestamptz NOT NULL DEFAULT now(),
	payload bytea NOT NULL,
	PRIMARY KEY (key, off)
);

-- Trimming by age.
CREATE INDEX IF NOT EXISTS wsroom_log_at ON wsroom_log (at);

-- Rooms' presence (wsroom.PresenceBroker): one row per connection present,
-- under its room's key (as above) and its ID. entry is the connection's
-- wsroom.PresenceRecord as JSON. expires is when its lease runs out, by
-- the database's clock; keep is four leases later (a minute at least),
-- when the trimming of any Broker deletes it if nobody has claimed it:
-- the rows of a room whose every process died go away by themselves.
-- Neither is indexed, so a renewal is a HOT update within its page, which
-- the fillfactor leaves room for.
CREATE TABLE IF NOT EXISTS wsroom_presence (
	room    text NOT NULL,
	id      text NOT NULL,
	expires timestamptz NOT NULL,
	keep    timestamptz NOT NULL,
	entry   bytea NOT NULL,
	PRIMARY KEY (room, id)
) WITH (fillfactor = 50);
