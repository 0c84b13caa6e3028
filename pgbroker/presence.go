package pgbroker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/wsroom/wsroom"
)

var _ wsroom.PresenceBroker = (*Broker)(nil)

// PutPresence stores entries in room, each as its JSON in a row of the
// presence table under the room's key and its ID, replacing the row of
// the same ID, and leases them until lease from now by the database's
// clock: one statement. Like Publish, it waits for at most the publish
// timeout; it fails at once with ErrUnavailable while the Broker knows
// PostgreSQL is unreachable.
func (b *Broker) PutPresence(room string, entries []wsroom.PresenceRecord, lease time.Duration) error {
	if len(entries) == 0 {
		return nil
	}
	byID := make(map[string]int, len(entries)) // a statement may not write a row twice: the last entry of an ID wins
	ids := make([]string, 0, len(entries))
	data := make([][]byte, 0, len(entries))
	for _, x := range entries {
		js, err := json.Marshal(x)
		if err != nil {
			return fmt.Errorf("pgbroker: presence in room %q: %w", room, err)
		}
		if i, ok := byID[x.ID]; ok {
			data[i] = js
			continue
		}
		byID[x.ID] = len(ids)
		ids, data = append(ids, x.ID), append(data, js)
	}
	return b.presenceExec(room, func(ctx context.Context) error {
		_, err := b.pool.Exec(ctx, b.sql.presence.put, roomKey(room), leaseMs(lease), ids, data)
		return err
	})
}

// RefreshPresence leases room's entries of ids until lease from now and
// returns the IDs the table does not hold, in one statement that sends
// IDs, not entries. It is bounded and fails like PutPresence.
func (b *Broker) RefreshPresence(room string, ids []string, lease time.Duration) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var missing []string
	err := b.presenceExec(room, func(ctx context.Context) error {
		rows, err := b.pool.Query(ctx, b.sql.presence.refresh, roomKey(room), leaseMs(lease), ids)
		if err != nil {
			return err
		}
		missing, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return missing, err
}

// DropPresence removes room's entries of ids, in one statement. It is
// bounded and fails like PutPresence.
func (b *Broker) DropPresence(room string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	return b.presenceExec(room, func(ctx context.Context) error {
		_, err := b.pool.Exec(ctx, b.sql.presence.drop, roomKey(room), ids)
		return err
	})
}

// presenceExec runs a statement that changes room's presence, as Publish
// runs its own: bounded by the publish timeout, and not tried while
// PostgreSQL is known unreachable.
func (b *Broker) presenceExec(room string, run func(ctx context.Context) error) error {
	b.publishing.RLock() // Close waits for statements in progress
	defer b.publishing.RUnlock()
	if b.closed.Load() {
		return fmt.Errorf("pgbroker: presence in room %q: %w", room, ErrClosed)
	}
	err := b.guard(b.ctx, func() error {
		ctx, cancel := context.WithTimeout(b.ctx, b.cfg.publishTimeout)
		defer cancel()
		return run(ctx)
	})
	if err != nil {
		return fmt.Errorf("pgbroker: presence in room %q: %w", room, err)
	}
	return nil
}

// ReadPresence returns room's entries whose lease has not run out, by
// the database's clock, in one statement. It waits for PostgreSQL for as
// long as ctx allows and the publish timeout, and fails at once with
// ErrUnavailable while PostgreSQL is known unreachable. Rows that are not
// a PresenceRecord's JSON (written by something else) are skipped and
// counted in Stats.Malformed.
func (b *Broker) ReadPresence(ctx context.Context, room string) ([]wsroom.PresenceRecord, error) {
	recs, err := b.presenceQuery(ctx, b.sql.presence.read, room)
	if err != nil {
		return nil, fmt.Errorf("pgbroker: presence of room %q: %w", room, err)
	}
	return recs, nil
}

// ClaimExpired deletes room's entries whose lease has run out and returns
// them, in one statement: of claims running at once, in any processes,
// each row is deleted, and returned, by one only. It waits and fails like
// ReadPresence. A claim whose answer is lost (a timeout, a connection cut
// after the commit) has deleted entries nobody announces.
func (b *Broker) ClaimExpired(ctx context.Context, room string) ([]wsroom.PresenceRecord, error) {
	recs, err := b.presenceQuery(ctx, b.sql.presence.claim, room)
	if err != nil {
		return nil, fmt.Errorf("pgbroker: claim in room %q: %w", room, err)
	}
	return recs, nil
}

// presenceQuery runs sql, which returns entries, for room.
func (b *Broker) presenceQuery(caller context.Context, sql, room string) (out []wsroom.PresenceRecord, err error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	err = b.guard(caller, func() error {
		ctx, cancel := context.WithTimeout(caller, b.cfg.publishTimeout)
		defer cancel()
		rows, err := b.pool.Query(ctx, sql, roomKey(room))
		if err != nil {
			return err
		}
		var entry []byte
		_, err = pgx.ForEachRow(rows, []any{&entry}, func() error {
			var x wsroom.PresenceRecord
			if json.Unmarshal(entry, &x) != nil || x.ID == "" {
				b.malformed.Add(1)
				return nil
			}
			out = append(out, x)
			return nil
		})
		return err
	})
	return out, err
}

// trimPresence deletes the rows whose keep has passed: entries nobody
// refreshed or claimed for four leases, those of rooms whose every
// process died.
func (b *Broker) trimPresence(ctx context.Context) error {
	_, err := b.pool.Exec(ctx, b.sql.presence.trim)
	return err
}

// leaseMs is a lease in milliseconds, one at least.
func leaseMs(lease time.Duration) int64 { return max(lease.Milliseconds(), 1) }
