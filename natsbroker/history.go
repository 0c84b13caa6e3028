package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/wsroom/wsroom"
)

var _ wsroom.HistoryBroker = (*Broker)(nil)

// The headers of a recorded message, as the history stream keeps it and
// as SubscribeRecorded receives it: its position in the room.
const (
	EpochHeader  = "Wsroom-Epoch"
	OffsetHeader = "Wsroom-Offset"
)

// recordTimeout bounds a Record, its retries included, and each read of
// the history stream.
const recordTimeout = 2 * time.Second

// WithHistory sets how much of each room's history the JetStream stream
// keeps: the last size recorded messages of every room, each for ttl
// after it was recorded. Both must be positive (New fails otherwise); the
// defaults are wsroom.DefaultHistorySize and wsroom.DefaultHistoryTTL. A
// Broker without this option keeps histories too, with the defaults,
// once rooms with history use it; with it, New makes (or updates) the
// stream at once when nc is connected, and fails if it cannot.
//
// The NATS server must have JetStream enabled (nats-server -js, or a
// jetstream block in its configuration), with room in its store (file
// storage by default: max_file_store, and the account's limits if it has
// some) for size messages of every room recorded within ttl, and it must
// accept MaxAge ttl and MaxMsgsPerSubject size on a stream. The Broker's
// NATS user needs, besides "<prefix>.>", the JetStream API ("$JS.API.>")
// and replies to its inbox ("_INBOX.>"). The stream is named
// "<prefix>_history" (the prefix escaped as a room name is, see
// Subjects), and stores subjects "<prefix>.history.*": no other stream
// may take those. Processes sharing rooms should use the same values:
// the last New to update the stream sets them. See "History" in the
// package doc.
func WithHistory(size int, ttl time.Duration) Option {
	return func(c *config) { c.historySize, c.historyTTL, c.history = size, ttl, true }
}

// history is the JetStream side of a Broker.
type history struct {
	js   jetstream.JetStream
	size int
	ttl  time.Duration

	mu     sync.Mutex       // held while the stream is made or found
	stream jetstream.Stream // nil until made or found
	heads  heads
	epochs atomic.Uint64 // epochs started by this Broker

	recorded, recordErrors, conflicts            atomic.Int64
	receivedRecorded, caughtUp, gaps, duplicates atomic.Int64
	syncErrors                                   atomic.Int64
}

// streamName returns the name of the history stream.
func (b *Broker) streamName() string { return token(b.prefix) + "_history" }

// historySubject returns the subject room's records are stored on.
func (b *Broker) historySubject(room string) string {
	return b.prefix + ".history." + token(room)
}

// recordedSubject returns the subject the stream republishes room's
// records on once stored.
func (b *Broker) recordedSubject(room string) string {
	return b.prefix + ".recorded." + token(room)
}

// streamConfig sets, on cfg, what the Broker needs of the history
// stream, leaving the rest (replicas, placement, storage of a stream
// made by an operator) as it is.
func (b *Broker) streamConfig(cfg jetstream.StreamConfig) jetstream.StreamConfig {
	cfg.Name = b.streamName()
	if cfg.Description == "" {
		cfg.Description = "wsroom: rooms' recorded messages"
	}
	cfg.Subjects = []string{b.prefix + ".history.*"}
	cfg.Retention = jetstream.LimitsPolicy
	cfg.Discard = jetstream.DiscardOld
	cfg.MaxMsgsPerSubject = int64(b.hist.size)
	cfg.MaxAge = b.hist.ttl
	cfg.Duplicates = min(b.hist.ttl, 2*time.Minute)
	cfg.RePublish = &jetstream.RePublish{
		Source:      b.prefix + ".history.*",
		Destination: b.prefix + ".recorded.{{wildcard(1)}}",
	}
	return cfg
}

// historyStream returns the history stream, making or updating it the
// first time.
func (b *Broker) historyStream(ctx context.Context) (jetstream.Stream, error) {
	h := &b.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stream != nil {
		return h.stream, nil
	}
	s, err := h.js.Stream(ctx, b.streamName())
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s, err = h.js.CreateStream(ctx, b.streamConfig(jetstream.StreamConfig{Storage: jetstream.FileStorage}))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another process made it meanwhile
			s, err = h.js.Stream(ctx, b.streamName())
		}
	case err == nil:
		old := s.CachedInfo().Config
		if want := b.streamConfig(old); !sameLimits(old, want) {
			s, err = h.js.UpdateStream(ctx, want)
		}
	}
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("history stream %s: %w (is JetStream enabled on the server?)", b.streamName(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("history stream %s: %w", b.streamName(), err)
	}
	h.stream = s
	return s, nil
}

// sameLimits reports whether the fields streamConfig sets are equal.
func sameLimits(a, b jetstream.StreamConfig) bool {
	return len(a.Subjects) == 1 && len(b.Subjects) == 1 && a.Subjects[0] == b.Subjects[0] &&
		a.Retention == b.Retention && a.Discard == b.Discard &&
		a.MaxMsgsPerSubject == b.MaxMsgsPerSubject && a.MaxAge == b.MaxAge &&
		a.Duplicates == b.Duplicates && a.RePublish != nil && *a.RePublish == *b.RePublish
}

// forgetStream drops the stream found, after NATS said it has no such
// stream: the next use makes it again.
func (b *Broker) forgetStream() {
	b.hist.mu.Lock()
	b.hist.stream = nil
	b.hist.mu.Unlock()
}

// newEpoch returns an epoch no room has had: this Broker's id and a
// count.
func (b *Broker) newEpoch() string {
	return b.id + "-" + strconv.FormatUint(b.hist.epochs.Add(1), 36)
}

// usable returns why the Broker cannot reach JetStream now, or nil.
func (b *Broker) usable() error {
	if b.closed.Load() {
		return ErrClosed
	}
	switch st := b.watch.current(); st {
	case nats.RECONNECTING, nats.DISCONNECTED, nats.CONNECTING, nats.CLOSED:
		return fmt.Errorf("%w (connection %s)", ErrNotConnected, st)
	}
	return nil
}

// Record appends payload to room's history at the room's next offset and
// returns its position once JetStream has stored it; the stream then
// republishes it to every process's SubscribeRecorded of the room, this
// one's included. See "History" in the package doc for how offsets stay
// contiguous: a record that loses a race with another process's reads
// the room's last record and tries again (Stats.Conflicts), all within
// 2 seconds; one that has not won by then fails. The race is not fair (a
// winner's next record goes at once, a loser reads first), so such
// failures do happen under sustained contention from several processes
// in one room. Like Publish, Record fails at once with an error wrapping
// ErrNotConnected while the connection is not connected, and with
// ErrClosed after Close, which also ends the Records in progress; every
// error names the room.
//
// An error means the message was not recorded, with one exception: an
// acknowledgement lost after JetStream stored the message (a timeout, a
// connection lost meanwhile) leaves it recorded and delivered. Record
// never sends a message twice, so it is never recorded twice.
func (b *Broker) Record(room string, payload []byte) (wsroom.Position, error) {
	pos, err := b.record(room, payload)
	if err != nil {
		b.hist.recordErrors.Add(1)
		if errors.Is(err, ErrClosed) {
			return wsroom.Position{}, err
		}
		return wsroom.Position{}, fmt.Errorf("natsbroker: record in room %q: %w", room, err)
	}
	b.hist.recorded.Add(1)
	return pos, nil
}

func (b *Broker) record(room string, payload []byte) (wsroom.Position, error) {
	if err := b.usable(); err != nil {
		return wsroom.Position{}, err
	}
	ctx, cancel := context.WithTimeout(b.ctx, recordTimeout) // Close ends it
	defer cancel()
	rh := b.hist.heads.acquire(room)
	defer b.hist.heads.release(rh)
	if err := rh.lock(ctx); err != nil { // one record of a room at a time in a process
		return wsroom.Position{}, err
	}
	defer rh.unlock()
	subject := b.historySubject(room)
	for {
		last, ok := rh.get()
		if !ok {
			var err error
			if last, err = b.lastRecord(ctx, subject); err != nil {
				return wsroom.Position{}, err
			}
			rh.seen(last)
		}
		pos := wsroom.Position{Offset: last.pos.Offset + 1, Epoch: last.pos.Epoch}
		if pos.Epoch == "" { // nothing recorded, or not by wsroom: a new epoch
			pos = wsroom.Position{Offset: 1, Epoch: b.newEpoch()}
		}
		ack, err := b.hist.js.PublishMsg(ctx, &nats.Msg{
			Subject: subject,
			Header:  nats.Header{EpochHeader: {pos.Epoch}, OffsetHeader: {strconv.FormatUint(pos.Offset, 10)}},
			Data:    payload,
		}, jetstream.WithExpectStream(b.streamName()), jetstream.WithExpectLastSequencePerSubject(last.seq),
			jetstream.WithRetryAttempts(0))
		switch {
		case err == nil:
			rh.seen(record{seq: ack.Sequence, pos: pos})
			return pos, nil
		case isWrongLastSequence(err):
			b.hist.conflicts.Add(1) // another process recorded first
			rh.forget()
		case errors.Is(err, jetstream.ErrNoStreamResponse):
			// No stream takes the subject: deleted, or lost by a server
			// that kept it in memory. Make it again.
			b.forgetStream()
			if _, err := b.historyStream(ctx); err != nil {
				return wsroom.Position{}, err
			}
			rh.forget()
		default:
			return wsroom.Position{}, err
		}
	}
}

// isWrongLastSequence reports whether err is JetStream refusing a
// publish whose expected last sequence of its subject is not the last.
func isWrongLastSequence(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// record is a message of the history stream: its stream sequence and
// its position (zero if it has none, not being from wsroom).
type record struct {
	seq uint64
	pos wsroom.Position
}

// lastRecord returns the last message stored on subject, the zero record
// if there is none.
func (b *Broker) lastRecord(ctx context.Context, subject string) (record, error) {
	s, err := b.historyStream(ctx)
	if err != nil {
		return record{}, err
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return record{}, nil
	case errors.Is(err, jetstream.ErrStreamNotFound):
		b.forgetStream()
		return record{}, nil
	case err != nil:
		return record{}, err
	}
	pos, _ := position(m.Header)
	return record{seq: m.Sequence, pos: pos}, nil
}

// position reads a recorded message's position from its headers.
func position(h nats.Header) (wsroom.Position, bool) {
	epoch := h.Get(EpochHeader)
	offset, err := strconv.ParseUint(h.Get(OffsetHeader), 10, 64)
	if err != nil || offset == 0 || !validEpoch(epoch) {
		return wsroom.Position{}, false
	}
	return wsroom.Position{Offset: offset, Epoch: epoch}, true
}

// validEpoch reports whether e is an epoch as wsroom has them: 1 to 64
// ASCII letters, digits, '-' or '_'.
func validEpoch(e string) bool {
	if e == "" || len(e) > 64 {
		return false
	}
	for i := 0; i < len(e); i++ {
		if !plain(e[i]) {
			return false
		}
	}
	return true
}
