package natsbroker

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/wsroom/wsroom"
)

// readBatch is how many messages one fetch of a read asks for.
const readBatch = 512

// stored is a message read back from the history stream.
type stored struct {
	record
	payload []byte
}

// readSubject returns the messages stored on subject from stream
// sequence from on (from 0: all of them), up to sequence to, oldest
// first. It reads them through an ephemeral consumer of its own, in
// memory and without acknowledgements, which it deletes afterwards (and
// which the server deletes after a minute should that fail).
func (b *Broker) readSubject(ctx context.Context, subject string, from, to uint64) ([]stored, error) {
	s, err := b.historyStream(ctx)
	if err != nil {
		return nil, err
	}
	cfg := jetstream.ConsumerConfig{
		FilterSubject:     subject,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: time.Minute,
	}
	if from > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	c, err := s.CreateConsumer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		_ = s.DeleteConsumer(ctx, c.CachedInfo().Name) // else the server does, once inactive
	}()
	var out []stored
	var last uint64 // the sequence of the last message fetched
	for {
		batch, err := c.FetchNoWait(readBatch)
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			last = max(last, md.Sequence.Stream)
			if md.Sequence.Stream > to {
				continue
			}
			pos, _ := position(m.Headers())
			out = append(out, stored{record: record{seq: md.Sequence.Stream, pos: pos}, payload: m.Data()})
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
		if n < readBatch || last >= to {
			return out, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// History returns the messages recorded in room after since, oldest
// first, at most limit of them, with the room's current epoch: that of
// its last record, or a new one if the stream has none of the room (it
// is not kept: the next Record draws its own). complete is false when
// since is of another epoch, or ahead of the room's last offset, or
// older than what the stream keeps (msgs is then empty), or when more
// than limit are newer. It reads the room's last record, then, if there
// is something to return, the room's messages in the stream: all of
// them (at most the history's size), as JetStream cannot start a read
// at an offset, only at a stream sequence. It waits for NATS for as long
// as ctx allows, at most 2 seconds, and fails at once while the
// connection is not connected.
func (b *Broker) History(ctx context.Context, room string, since wsroom.Position, limit int) (msgs []wsroom.Recorded, epoch string, complete bool, err error) {
	msgs, epoch, complete, err = b.history(ctx, room, since, max(limit, 0))
	if err != nil {
		err = fmt.Errorf("natsbroker: history of room %q: %w", room, err)
	}
	return msgs, epoch, complete, err
}

func (b *Broker) history(ctx context.Context, room string, since wsroom.Position, limit int) ([]wsroom.Recorded, string, bool, error) {
	if err := b.usable(); err != nil {
		return nil, "", false, err
	}
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	subject := b.historySubject(room)
	last, err := b.lastRecord(ctx, subject)
	switch {
	case err != nil:
		return nil, "", false, err
	case last.pos.Epoch == "":
		return nil, b.newEpoch(), false, nil
	case since.Epoch != last.pos.Epoch || since.Offset > last.pos.Offset:
		return nil, last.pos.Epoch, false, nil
	case since.Offset == last.pos.Offset:
		return nil, last.pos.Epoch, true, nil
	}
	epoch := last.pos.Epoch
	newer := last.pos.Offset - since.Offset
	if limit == 0 {
		return nil, epoch, false, nil
	}
	all, err := b.readSubject(ctx, subject, 0, last.seq)
	if err != nil {
		return nil, "", false, err
	}
	msgs := make([]wsroom.Recorded, 0, min(newer, uint64(limit)))
	for _, m := range all {
		if m.pos.Epoch != epoch || m.pos.Offset <= since.Offset {
			continue
		}
		if m.pos.Offset != since.Offset+1+uint64(len(msgs)) {
			return nil, epoch, false, nil // trimmed past since (or not contiguous: never from wsroom)
		}
		msgs = append(msgs, wsroom.Recorded{Position: m.pos, Payload: m.payload})
		if len(msgs) == limit {
			break
		}
	}
	if uint64(len(msgs)) != min(newer, uint64(limit)) {
		return nil, epoch, false, nil // the stream lost some: expired meanwhile
	}
	return msgs, epoch, newer <= uint64(limit), nil
}
