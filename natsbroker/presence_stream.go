package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// LeaseHeader is the NATS header of a presence entry, as the presence
// stream keeps it: its lease in milliseconds, counted from the time the
// server stored it.
const LeaseHeader = "Wsroom-Lease"

// presenceTimeout bounds PutPresence, RefreshPresence and DropPresence,
// and each read of the presence stream.
const presenceTimeout = 2 * time.Second

// presenceParallel bounds the requests to JetStream one presence call
// has in flight at once.
const presenceParallel = 32

// presence is the JetStream side of a Broker's presence: the stream, and
// what this Broker put there, since a refresh puts an entry again.
type presence struct {
	on bool // WithPresence

	mu     sync.Mutex        // guards what follows
	stream jetstream.Stream  // nil until made or found
	leased map[string]leases // room → ID → this Broker's entries
}

// leases are one room's entries that this Broker put.
type leases map[string]*leased

// leased is an entry this Broker put: its JSON and the stream sequence
// that stores it, which its refresh expects to be the last of its
// subject (a claim, a drop or a lost store makes it not).
type leased struct {
	data []byte
	seq  uint64
}

// WithPresence makes the Broker keep rooms' presence in JetStream, so
// that wsroom uses it as a wsroom.PresenceBroker (see KeepsPresence and
// "Presence" in the package doc). New then makes (or updates) the
// presence stream at once when nc is connected, and fails if it cannot:
// the server must have JetStream (nats-server 2.11 or later, for
// per-message TTLs), and the Broker's NATS user needs, besides
// "<prefix>.>", the JetStream API ("$JS.API.>") and replies to its inbox
// ("_INBOX.>"). The stream is named "<prefix>_presence" (the prefix
// escaped as a room name is) and stores subjects "<prefix>.presence.*.*":
// no other stream may take those. Every process of a service must use it
// or none: presence is across the processes that do.
func WithPresence() Option { return func(c *config) { c.presence = true } }

// KeepsPresence reports whether the Broker was made WithPresence. A
// wsroom registry uses a Broker as a PresenceBroker only if it does;
// otherwise a room's presence is its own process's. The PresenceBroker
// methods work either way, for whoever calls them.
func (b *Broker) KeepsPresence() bool { return b.pres.on }

// makePresence makes the presence stream, for New, if the Broker keeps
// presence and nc is connected; ctx is New's.
func (b *Broker) makePresence(ctx context.Context) error {
	if !b.pres.on || !b.nc.IsConnected() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, presenceTimeout)
	defer cancel()
	_, err := b.presenceStream(ctx)
	return err
}

// presenceStreamName returns the name of the presence stream.
func (b *Broker) presenceStreamName() string { return token(b.prefix) + "_presence" }

// presenceSubject returns the subject of room's entry id.
func (b *Broker) presenceSubject(room, id string) string {
	return b.presenceRoomSubject(room) + "." + token(id)
}

// presenceRoomSubject returns the subject prefix of room's entries.
func (b *Broker) presenceRoomSubject(room string) string {
	return b.prefix + ".presence." + token(room)
}

// presenceConfig sets, on cfg, what the Broker needs of the presence
// stream, leaving the rest (replicas, placement, storage of a stream
// made by an operator) as it is.
func (b *Broker) presenceConfig(cfg jetstream.StreamConfig) jetstream.StreamConfig {
	cfg.Name = b.presenceStreamName()
	if cfg.Description == "" {
		cfg.Description = "wsroom: rooms' presence entries"
	}
	cfg.Subjects = []string{b.prefix + ".presence.*.*"}
	cfg.Retention = jetstream.LimitsPolicy
	cfg.Discard = jetstream.DiscardOld
	cfg.MaxMsgsPerSubject = 1
	cfg.AllowMsgTTL = true
	return cfg
}

// presenceStream returns the presence stream, making or updating it the
// first time.
func (b *Broker) presenceStream(ctx context.Context) (jetstream.Stream, error) {
	p := &b.pres
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stream != nil {
		return p.stream, nil
	}
	js := b.hist.js
	s, err := js.Stream(ctx, b.presenceStreamName())
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s, err = js.CreateStream(ctx, b.presenceConfig(jetstream.StreamConfig{Storage: jetstream.FileStorage}))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another process made it meanwhile
			s, err = js.Stream(ctx, b.presenceStreamName())
		}
	case err == nil:
		old := s.CachedInfo().Config
		if want := b.presenceConfig(old); !samePresenceLimits(old, want) {
			s, err = js.UpdateStream(ctx, want)
		}
	}
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("presence stream %s: %w (is JetStream enabled on the server?)", b.presenceStreamName(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("presence stream %s: %w", b.presenceStreamName(), err)
	}
	p.stream = s
	return s, nil
}

// samePresenceLimits reports whether the fields presenceConfig sets are
// equal.
func samePresenceLimits(a, b jetstream.StreamConfig) bool {
	return len(a.Subjects) == 1 && len(b.Subjects) == 1 && a.Subjects[0] == b.Subjects[0] &&
		a.Retention == b.Retention && a.Discard == b.Discard &&
		a.MaxMsgsPerSubject == b.MaxMsgsPerSubject && a.AllowMsgTTL == b.AllowMsgTTL
}

// forgetPresenceStream drops the stream found, after NATS said it has no
// such stream: the next use makes it again.
func (b *Broker) forgetPresenceStream() {
	b.pres.mu.Lock()
	b.pres.stream = nil
	b.pres.mu.Unlock()
}

// lease returns what this Broker put as room's entry id, if it did.
func (p *presence) lease(room, id string) (leased, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	x := p.leased[room][id]
	if x == nil {
		return leased{}, false
	}
	return *x, true
}

// hold notes that this Broker put data as room's entry id, stored at seq.
func (p *presence) hold(room, id string, data []byte, seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leased == nil {
		p.leased = map[string]leases{}
	}
	r := p.leased[room]
	if r == nil {
		r = leases{}
		p.leased[room] = r
	}
	r[id] = &leased{data: data, seq: seq}
}

// release forgets room's entry id.
func (p *presence) release(room, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.leased[room]
	delete(r, id)
	if len(r) == 0 {
		delete(p.leased, room)
	}
}

// parallel runs f(i) for i in [0, n), at most presenceParallel at once,
// and returns when all have; a single call runs on the caller's
// goroutine (a join puts one entry).
func parallel(n int, f func(i int)) {
	if n == 1 {
		f(0)
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, presenceParallel)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}
