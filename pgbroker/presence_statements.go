package pgbroker

// presenceStatements are the SQL texts of a prefix's presence table.
// Every value is a parameter: $1 is always the room's key, never its
// name; leases are in milliseconds, added to the database's clock.
type presenceStatements struct {
	put     string // $2 lease, $3 IDs, $4 entries
	refresh string // $2 lease, $3 IDs; returns the IDs it did not find
	drop    string // $2 IDs
	read    string // returns the entries whose lease runs
	claim   string // deletes and returns the entries whose lease ran out
	trim    string // deletes the rows kept past their keep
}

// leaseSQL are the expires and keep of an entry leased for $2
// milliseconds from now: keep is four leases later, a minute at least.
const leaseSQL = `now() + $2::bigint * interval '1 millisecond', now() + greatest(4 * $2::bigint, 60000) * interval '1 millisecond'`

func newPresenceStatements(prefix string) presenceStatements {
	p := prefix + "_presence"
	return presenceStatements{
		put: `INSERT INTO ` + p + ` AS p (room, id, expires, keep, entry)
SELECT $1, u.id, ` + leaseSQL + `, u.entry FROM unnest($3::text[], $4::bytea[]) AS u(id, entry)
ON CONFLICT (room, id) DO UPDATE SET expires = excluded.expires, keep = excluded.keep, entry = excluded.entry`,
		// A row a concurrent claim deletes is not updated (the UPDATE
		// waits for the DELETE's commit, then skips the row) and is
		// returned as missing; a row this refresh updates first is no
		// longer expired when the claim, which waited, checks it again.
		refresh: `WITH u AS (SELECT unnest($3::text[]) AS id), r AS (
	UPDATE ` + p + ` AS p SET (expires, keep) = (` + leaseSQL + `)
	FROM u WHERE p.room = $1 AND p.id = u.id RETURNING p.id
)
SELECT id FROM u WHERE NOT EXISTS (SELECT 1 FROM r WHERE r.id = u.id)`,
		drop: `DELETE FROM ` + p + ` WHERE room = $1 AND id = ANY($2::text[])`,
		read: `SELECT entry FROM ` + p + ` WHERE room = $1 AND expires > now()`,
		// Of two claims at once, the second waits for the rows the first
		// deletes and then skips them: each row is returned by one DELETE.
		claim: `DELETE FROM ` + p + ` WHERE room = $1 AND expires <= now() RETURNING entry`,
		trim:  `DELETE FROM ` + p + ` WHERE keep < now()`,
	}
}
