package pgbroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/wsroom/wsroom"
)

// Record appends payload to room's history, at the room's next offset, and
// notifies the room's recorded channel, in one transaction, as Publish
// does with its messages; it waits for the commit, for at most the
// publish timeout, and returns the message's position. Every process's
// SubscribeRecorded of the room receives it, this one's included; no
// Subscribe does, and History has it until the log trims it. Like
// Publish, it fails at once with ErrUnavailable while the Broker knows
// PostgreSQL is unreachable. An error,
// which names the room, means it was not recorded (the transaction did not
// commit, or may not have: a timeout), and nobody receives it.
func (b *Broker) Record(room string, payload []byte) (wsroom.Position, error) {
	b.publishing.RLock() // Close waits for records in progress
	defer b.publishing.RUnlock()
	if b.closed.Load() {
		b.recordErrors.Add(1)
		return wsroom.Position{}, ErrClosed
	}
	stream := recordedStream(roomKey(room))
	var text any // NULL: the listeners read the message from the log
	if inline(payload, b.utf8DB) {
		text = string(payload)
	}
	var epoch, off int64
	err := b.guard(b.ctx, func() error {
		ctx, cancel := context.WithTimeout(b.ctx, b.cfg.publishTimeout)
		defer cancel()
		return b.pool.QueryRow(ctx, b.sql.record, stream, b.origin, payload, b.channel(stream), text).Scan(&epoch, &off, nil)
	})
	if err != nil {
		b.recordErrors.Add(1)
		return wsroom.Position{}, fmt.Errorf("pgbroker: record in room %q: %w", room, err)
	}
	b.recorded.Add(1)
	return wsroom.Position{Offset: uint64(off), Epoch: epochText(epoch)}, nil
}

// SubscribeRecorded starts handing deliver, with their positions, the
// messages recorded in room by every process, this one included, until
// cancel is called: in offset order, each once, with no gap within an
// epoch. ready, cancel and the LISTEN are as Subscribe's (room's records
// have a channel of their own). After a drop of the listening connection,
// what was recorded meanwhile is read from the log and delivered before
// anything newer; if the log no longer holds some of it, the room's
// history starts a new epoch (see the package doc), from whose first
// message delivery goes on.
func (b *Broker) SubscribeRecorded(room string, deliver func(pos wsroom.Position, payload []byte)) (cancel func(), ready <-chan struct{}) {
	return b.subscribe(recordedStream(roomKey(room)), &subscription{deliverRecorded: deliver})
}

// History returns the messages recorded in room after since, oldest
// first, at most limit of them, and the room's current epoch: the one
// the room's next record gets (a room never recorded in is given its
// epoch, and its first record takes offset 1 of it). complete is false
// when since is of another epoch, or ahead of the room's latest offset,
// or older than what the log keeps (msgs is then empty), or when more
// than limit messages are newer. Messages recorded while History runs
// may be left out (complete stays true): a SubscribeRecorded made before
// the call delivers them. History waits for PostgreSQL for as long as ctx
// allows, and fails at once with ErrUnavailable while the Broker knows
// PostgreSQL is unreachable.
func (b *Broker) History(ctx context.Context, room string, since wsroom.Position, limit int) (msgs []wsroom.Recorded, epoch string, complete bool, err error) {
	if b.closed.Load() {
		return nil, "", false, ErrClosed
	}
	err = b.guard(ctx, func() error {
		msgs, epoch, complete, err = b.history(ctx, recordedStream(roomKey(room)), since, limit)
		return err
	})
	if err != nil {
		return nil, "", false, fmt.Errorf("pgbroker: history of room %q: %w", room, err)
	}
	return msgs, epoch, complete, nil
}

// history is History on stream, its errors PostgreSQL's.
func (b *Broker) history(ctx context.Context, stream string, since wsroom.Position, limit int) (msgs []wsroom.Recorded, epoch string, complete bool, err error) {
	ep, top, err := b.head(ctx, stream)
	if err != nil {
		return nil, "", false, err
	}
	epoch = epochText(ep)
	if since.Epoch != epoch || since.Offset > uint64(top) {
		return nil, epoch, false, nil
	}
	after := top - int64(since.Offset) // all newer than since, unless trimmed
	if after == 0 || limit <= 0 {
		return nil, epoch, after == 0, nil
	}
	want := min(after, int64(limit))
	rows, err := b.pool.Query(ctx, b.sql.history, stream, ep, int64(since.Offset), top, want)
	if err != nil {
		return nil, "", false, err
	}
	next := int64(since.Offset) + 1
	var off int64
	var payload []byte
	_, err = pgx.ForEachRow(rows, []any{&off, &payload}, func() error {
		if off != next {
			return errTrimmed
		}
		next++
		msgs = append(msgs, wsroom.Recorded{Position: wsroom.Position{Offset: uint64(off), Epoch: epoch}, Payload: payload})
		return nil
	})
	switch {
	case errors.Is(err, errTrimmed) || (err == nil && int64(len(msgs)) < want):
		return nil, epoch, false, nil // the log no longer starts right after since
	case err != nil:
		return nil, "", false, err
	}
	return msgs, epoch, after <= int64(limit), nil
}

// errTrimmed stops reading a history that does not go on from the
// position asked for.
var errTrimmed = errors.New("pgbroker: trimmed")

// head returns the epoch and latest offset of stream, making its row if
// it has none, so that the epoch History reports is the next record's.
func (b *Broker) head(ctx context.Context, stream string) (epoch, top int64, err error) {
	err = b.pool.QueryRow(ctx, b.sql.head, stream).Scan(&epoch, &top)
	if errors.Is(err, pgx.ErrNoRows) {
		err = b.pool.QueryRow(ctx, b.sql.makeHead, stream).Scan(&epoch, &top)
	}
	return epoch, top, err
}

// epochText is an epoch as positions carry it: its decimal digits (1 to
// 16 of them: epochs are drawn from 1 to 2^53).
func epochText(epoch int64) string { return strconv.FormatInt(epoch, 10) }
