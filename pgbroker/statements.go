package pgbroker

// statements are the SQL texts of a prefix. Identifiers come only from
// the prefix, which New has checked; every value is a parameter.
type statements struct {
	publish string // $1 stream, $2 origin, $3 payload, $4 channel, $5 payload as text or NULL
	record  string // publish's, returning the message's epoch and offset
	// Of History: a recorded stream's row, made if missing; its log.
	head, makeHead, history string
	// Of a recorded stream's new epoch (rotate): $1 stream, $2 epoch.
	rotate, rotateLog string
	positions         string // $1 keys
	catchUp           string // $1 keys, $2 epochs, $3 offsets
	trimLen           string // $1 messages kept per room
	trimAge           string // $1 seconds kept
	trimRooms         string // $1 seconds kept
	presence          presenceStatements
}

func newStatements(prefix string) statements {
	rooms, log := prefix+"_rooms", prefix+"_log"
	return statements{
		presence: newPresenceStatements(prefix),
		// The room's row is locked from the offset's increment to the
		// commit, so a room's offsets are committed, and notified, in
		// their order (PostgreSQL delivers notifications in commit order).
		// A new room's epoch is at most 2^53, exact in JSON numbers.
		publish: `WITH r AS (
	INSERT INTO ` + rooms + ` AS r (key, epoch, top)
	VALUES ($1, floor(random() * 9007199254740990)::bigint + 1, 1)
	ON CONFLICT (key) DO UPDATE SET top = r.top + 1, touched = now()
	RETURNING r.epoch, r.top
), l AS (
	INSERT INTO ` + log + ` (key, epoch, off, origin, payload)
	SELECT $1, epoch, top, $2::text, $3 FROM r
	RETURNING epoch, off
)
SELECT pg_notify($4, epoch || ':' || off || ':' || $2::text || coalesce(':' || $5::text, '')) FROM l`,
		record: `WITH r AS (
	INSERT INTO ` + rooms + ` AS r (key, epoch, top)
	VALUES ($1, floor(random() * 9007199254740990)::bigint + 1, 1)
	ON CONFLICT (key) DO UPDATE SET top = r.top + 1, touched = now()
	RETURNING r.epoch, r.top
), l AS (
	INSERT INTO ` + log + ` (key, epoch, off, origin, payload)
	SELECT $1, epoch, top, $2::text, $3 FROM r
	RETURNING epoch, off
)
SELECT epoch, off, pg_notify($4, epoch || ':' || off || ':' || $2::text || coalesce(':' || $5::text, ''))::text FROM l`,
		head: `SELECT epoch, top FROM ` + rooms + ` WHERE key = $1`,
		// A stream's row made by History has top 0: the next record is
		// at offset 1 of its epoch.
		makeHead: `INSERT INTO ` + rooms + ` AS r (key, epoch, top)
VALUES ($1, floor(random() * 9007199254740990)::bigint + 1, 0)
ON CONFLICT (key) DO UPDATE SET touched = now()
RETURNING r.epoch, r.top`,
		history: `SELECT off, payload FROM ` + log + `
WHERE key = $1 AND epoch = $2 AND off > $3 AND off <= $4 ORDER BY off LIMIT $5`,
		// rotate locks the stream's row, so the records in progress have
		// committed when rotateLog, the next statement, deletes their
		// rows: the log keeps no row of the old epoch whose offset the
		// new one would take again.
		rotate: `UPDATE ` + rooms + ` SET epoch = floor(random() * 9007199254740990)::bigint + 1, top = 0, touched = now()
WHERE key = $1 AND epoch = $2 RETURNING epoch`,
		rotateLog: `DELETE FROM ` + log + ` WHERE key = $1`,
		positions: `SELECT key, epoch, top FROM ` + rooms + ` WHERE key = ANY($1::text[])`,
		// Rows of another epoch than the listener's are all of the
		// room's current epoch: a room's row, and with it its epoch, is
		// made again only once the log holds nothing of the room.
		catchUp: `SELECT l.key, l.epoch, l.off, l.origin, l.payload
FROM ` + log + ` l JOIN unnest($1::text[], $2::bigint[], $3::bigint[]) AS p(key, epoch, off)
	ON l.key = p.key AND (l.epoch <> p.epoch OR l.off > p.off)
ORDER BY l.key, l.off`,
		trimLen: `DELETE FROM ` + log + ` l USING ` + rooms + ` r WHERE l.key = r.key AND l.off <= r.top - $1`,
		trimAge: `DELETE FROM ` + log + ` WHERE at < now() - make_interval(secs => $1)`,
		trimRooms: `DELETE FROM ` + rooms + ` r WHERE r.touched < now() - make_interval(secs => $1)
	AND NOT EXISTS (SELECT 1 FROM ` + log + ` l WHERE l.key = r.key)`,
	}
}
