package pgbroker

import (
	"context"
	"fmt"
	"time"
)

// Trim deletes from the log what the retention no longer keeps (see
// WithHistory): each room's messages beyond its latest maxLen, and
// messages older than maxAge; then the rows of rooms that have had no
// message for maxAge, whose offsets restart in a new epoch when they are
// published to again; and the presence rows nobody claimed for four
// leases (see "Presence" in the package doc). Every Broker calls it in
// the background; it is safe to call at the same time from any number of
// processes.
func (b *Broker) Trim(ctx context.Context) error {
	age := b.cfg.logAge.Seconds()
	for _, st := range []struct {
		sql string
		arg any
	}{{b.sql.trimLen, b.cfg.logLen}, {b.sql.trimAge, age}, {b.sql.trimRooms, age}} {
		if _, err := b.pool.Exec(ctx, st.sql, st.arg); err != nil {
			return fmt.Errorf("pgbroker: trim: %w", err)
		}
	}
	if err := b.trimPresence(ctx); err != nil {
		return fmt.Errorf("pgbroker: trim: %w", err)
	}
	return nil
}

// trimInterval is how often a Broker trims the log: a tenth of the
// longest age, between a second and a minute.
func trimInterval(age time.Duration) time.Duration {
	return min(max(age/10, time.Second), time.Minute)
}

// trimEvery trims the log every interval until Close. A failure (the
// database is down) waits for the next round. It runs in b.wg.
func (b *Broker) trimEvery(interval time.Duration) {
	defer b.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-b.ctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(b.ctx, interval)
		_ = b.Trim(ctx)
		cancel()
	}
}
