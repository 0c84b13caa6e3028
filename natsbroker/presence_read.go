package natsbroker

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/wsroom/wsroom"
)

// presenceEntry is an entry read from the presence stream.
type presenceEntry struct {
	rec     wsroom.PresenceRecord
	seq     uint64 // the stream sequence that stores it
	expired bool   // its lease had run out when the server answered the read
}

// readPresence returns room's entries as the presence stream holds them,
// each marked expired if its lease had run out, by the server's clock,
// when the read began. It reads through an ephemeral consumer of its own,
// in memory and without acknowledgements, which it deletes afterwards
// (and which the server deletes after a minute should that fail); the
// consumer's creation tells the server's time.
func (b *Broker) readPresence(ctx context.Context, room string) ([]presenceEntry, error) {
	if err := b.usable(); err != nil {
		return nil, err
	}
	ctx, cancel := b.presenceContext(ctx)
	defer cancel()
	s, err := b.presenceStream(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     b.presenceRoomSubject(room) + ".*",
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: time.Minute,
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		b.forgetPresenceStream() // deleted, or lost with the server's store: nothing is present
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), presenceTimeout)
		defer cancel()
		_ = s.DeleteConsumer(ctx, c.CachedInfo().Name) // else the server does, once inactive
	}()
	now := c.CachedInfo().TimeStamp
	bySubject := map[string]presenceEntry{}
	for {
		batch, err := c.FetchNoWait(readBatch)
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			e, ok := parseEntry(m, now)
			// A refresh during the read can deliver an entry twice: the
			// later sequence is the entry.
			if old, seen := bySubject[m.Subject()]; ok && (!seen || old.seq < e.seq) {
				bySubject[m.Subject()] = e
			}
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
		if n < readBatch {
			break
		}
	}
	out := make([]presenceEntry, 0, len(bySubject))
	for _, e := range bySubject {
		out = append(out, e)
	}
	return out, nil
}

// parseEntry reads an entry from m, as of the server's time now, and
// reports whether m is one: a lease in its LeaseHeader, a
// PresenceRecord's JSON whose ID is what its subject's last token
// stands for.
func parseEntry(m jetstream.Msg, now time.Time) (presenceEntry, bool) {
	md, err := m.Metadata()
	if err != nil {
		return presenceEntry{}, false
	}
	ms, err := strconv.ParseInt(m.Headers().Get(LeaseHeader), 10, 64)
	if err != nil || ms <= 0 {
		return presenceEntry{}, false
	}
	var rec wsroom.PresenceRecord
	subject := m.Subject()
	if json.Unmarshal(m.Data(), &rec) != nil || rec.ID == "" || !strings.HasSuffix(subject, "."+token(rec.ID)) {
		return presenceEntry{}, false
	}
	expires := md.Timestamp.Add(time.Duration(ms) * time.Millisecond)
	return presenceEntry{rec: rec, seq: md.Sequence.Stream, expired: !now.Before(expires)}, true
}
