package natsbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/wsroom/wsroom"
)

var _ wsroom.PresenceBroker = (*Broker)(nil)

// PutPresence stores entries in room, each as its JSON in a message of
// the presence stream on a subject of its own, leased until lease after
// the server stored it: see "Presence" in the package doc. Like Record,
// it waits for JetStream's acknowledgements, at most 2 seconds, fails at
// once with an error wrapping ErrNotConnected while the connection is not
// connected, and with ErrClosed after Close.
func (b *Broker) PutPresence(room string, entries []wsroom.PresenceRecord, lease time.Duration) error {
	if len(entries) == 0 {
		return nil
	}
	if err := b.putPresence(room, entries, lease); err != nil {
		return fmt.Errorf("natsbroker: presence in room %q: %w", room, err)
	}
	return nil
}

func (b *Broker) putPresence(room string, entries []wsroom.PresenceRecord, lease time.Duration) error {
	if err := b.usable(); err != nil {
		return err
	}
	datas := make([][]byte, len(entries))
	for i, x := range entries {
		data, err := json.Marshal(x)
		if err != nil {
			return err
		}
		datas[i] = data
	}
	ctx, cancel := b.presenceContext(context.Background())
	defer cancel()
	if _, err := b.presenceStream(ctx); err != nil {
		return err
	}
	errs := make([]error, len(entries))
	parallel(len(entries), func(i int) {
		seq, err := b.putEntry(ctx, room, entries[i].ID, datas[i], lease, nil)
		if err != nil {
			errs[i] = err
			return
		}
		b.pres.hold(room, entries[i].ID, datas[i], seq)
	})
	err := errors.Join(errs...)
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		b.forgetPresenceStream() // the next call makes it again
	}
	return err
}

// RefreshPresence leases room's entries of ids until lease from now, by
// the server's clock, by putting each again as this Broker last put it,
// on the condition that it is still the last message of its subject: an
// entry another process claimed, that was dropped, or that the server
// lost is not revived but returned as missing, for the caller to put
// again. JetStream has no way to extend a message's life but storing it
// again, so a refresh sends the whole entry (see "Presence" in the
// package doc for the traffic). It is bounded and fails like PutPresence.
func (b *Broker) RefreshPresence(room string, ids []string, lease time.Duration) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	missing, err := b.refreshPresence(room, ids, lease)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: presence in room %q: %w", room, err)
	}
	return missing, nil
}

func (b *Broker) refreshPresence(room string, ids []string, lease time.Duration) ([]string, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	ctx, cancel := b.presenceContext(context.Background())
	defer cancel()
	if _, err := b.presenceStream(ctx); err != nil {
		return nil, err
	}
	lost := make([]bool, len(ids))
	errs := make([]error, len(ids))
	var noStream atomic.Bool
	parallel(len(ids), func(i int) {
		x, ok := b.pres.lease(room, ids[i])
		if !ok {
			lost[i] = true
			return
		}
		seq, err := b.putEntry(ctx, room, ids[i], x.data, lease, &x.seq)
		switch {
		case err == nil:
			b.pres.hold(room, ids[i], x.data, seq)
		case isWrongLastSequence(err):
			b.pres.release(room, ids[i])
			lost[i] = true
		case errors.Is(err, jetstream.ErrNoStreamResponse):
			noStream.Store(true)
			b.pres.release(room, ids[i])
			lost[i] = true
		default:
			errs[i] = err
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if noStream.Load() {
		b.forgetPresenceStream() // deleted, or lost by a server that kept nothing: made again by the puts to come
	}
	var missing []string
	for i, id := range ids {
		if lost[i] {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// DropPresence removes room's entries of ids, purging each one's
// subject. It is bounded and fails like PutPresence.
func (b *Broker) DropPresence(room string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := b.dropPresence(room, ids); err != nil {
		return fmt.Errorf("natsbroker: presence in room %q: %w", room, err)
	}
	return nil
}

func (b *Broker) dropPresence(room string, ids []string) error {
	if err := b.usable(); err != nil {
		return err
	}
	ctx, cancel := b.presenceContext(context.Background())
	defer cancel()
	s, err := b.presenceStream(ctx)
	if err != nil {
		return err
	}
	errs := make([]error, len(ids))
	parallel(len(ids), func(i int) {
		b.pres.release(room, ids[i])
		err := s.Purge(ctx, jetstream.WithPurgeSubject(b.presenceSubject(room, ids[i])))
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) { // no stream: nothing to drop
			errs[i] = err
		}
	})
	return errors.Join(errs...)
}

// ReadPresence returns room's entries whose lease has not run out by
// the server's clock, reading the room's subjects of the presence stream
// through an ephemeral consumer. It waits for NATS for as long as ctx
// allows, at most 2 seconds, and fails at once while the connection is
// not connected. Messages on those subjects that are not a wsroom entry
// (no valid LeaseHeader, not a PresenceRecord's JSON, another ID than
// their subject's) are skipped.
func (b *Broker) ReadPresence(ctx context.Context, room string) ([]wsroom.PresenceRecord, error) {
	entries, err := b.readPresence(ctx, room)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: presence of room %q: %w", room, err)
	}
	out := make([]wsroom.PresenceRecord, 0, len(entries))
	for _, e := range entries {
		if !e.expired {
			out = append(out, e.rec)
		}
	}
	return out, nil
}

// ClaimExpired removes room's entries whose lease has run out and
// returns them. It reads the room's entries as ReadPresence does, then
// deletes each expired one by its stream sequence: JetStream deletes a
// sequence once, so of the processes claiming an entry at once one
// alone succeeds, and an entry refreshed meanwhile has a new sequence
// and is not deleted. It waits and fails like ReadPresence; an error
// after some deletes returns what they claimed with it.
func (b *Broker) ClaimExpired(ctx context.Context, room string) ([]wsroom.PresenceRecord, error) {
	entries, err := b.readPresence(ctx, room)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: claim in room %q: %w", room, err)
	}
	var expired []presenceEntry
	for _, e := range entries {
		if e.expired {
			expired = append(expired, e)
		}
	}
	if len(expired) == 0 {
		return nil, nil
	}
	ctx, cancel := b.presenceContext(ctx)
	defer cancel()
	s, err := b.presenceStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: claim in room %q: %w", room, err)
	}
	won := make([]bool, len(expired))
	errs := make([]error, len(expired))
	parallel(len(expired), func(i int) {
		err := s.DeleteMsg(ctx, expired[i].seq)
		switch {
		case err == nil:
			won[i] = true
		case !errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful): // unsuccessful: gone already, claimed or refreshed
			errs[i] = err
		}
	})
	var out []wsroom.PresenceRecord
	for i, e := range expired {
		if won[i] {
			out = append(out, e.rec)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return out, fmt.Errorf("natsbroker: claim in room %q: %w", room, err)
	}
	return out, nil
}

// putEntry stores data as room's entry id with lease, expecting seq to
// be its subject's last sequence if seq is not nil, and returns the
// sequence JetStream stored it at. The message lives on the server
// keepFor(lease), after which nobody can claim it any more.
func (b *Broker) putEntry(ctx context.Context, room, id string, data []byte, lease time.Duration, seq *uint64) (uint64, error) {
	opts := []jetstream.PublishOpt{jetstream.WithExpectStream(b.presenceStreamName()),
		jetstream.WithMsgTTL(keepFor(lease)), jetstream.WithRetryAttempts(0)}
	if seq != nil {
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(*seq))
	}
	ack, err := b.hist.js.PublishMsg(ctx, &nats.Msg{
		Subject: b.presenceSubject(room, id),
		Header:  nats.Header{LeaseHeader: {strconv.FormatInt(max(lease.Milliseconds(), 1), 10)}},
		Data:    data,
	}, opts...)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// keepFor returns how long the server keeps an entry with lease that
// is not refreshed: four leases, a minute at least, in whole seconds (the
// unit of a message's TTL). A room whose every process died leaves
// nothing behind after that.
func keepFor(lease time.Duration) time.Duration {
	return (max(4*lease, time.Minute) + time.Second - 1).Truncate(time.Second)
}

// presenceContext bounds a presence call by the presence timeout, by
// parent, and by the Broker's life.
func (b *Broker) presenceContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, presenceTimeout)
	stop := context.AfterFunc(b.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}
