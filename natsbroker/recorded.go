package natsbroker

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/wsroom/wsroom"
)

// A recorded subscription is a core NATS subscription to the subject the
// history stream republishes the room's records on, once stored, in the
// order it stored them, and a cursor: the position and stream sequence
// of the last record it delivered. A record at the cursor's offset + 1 is
// delivered; one at or below it is a duplicate; one further on, or of
// another epoch, means records went by unseen (a republish lost, the
// connection lost), and the stream is read after the cursor first. The
// stream is read after each (re)subscription too: the first sets the
// cursor to the room's last record, later ones catch up from the cursor.

// recSub is one recorded subscription.
type recSub struct {
	b       *Broker
	room    string
	deliver func(wsroom.Position, []byte)
	head    *roomHead // the room's last record, for Record
	sub     *nats.Subscription
	done    atomic.Bool // cancelled: deliver no more

	ready     chan struct{}
	readyOnce sync.Once
	timer     *time.Timer  // releases ready after the subscribe timeout
	kicks     atomic.Int64 // syncs asked for and not yet run

	mu  sync.Mutex // held while delivering: one delivery at a time, in order
	cur cursor
}

// cursor is where a recorded subscription is in its room.
type cursor struct {
	synced bool // set by the first sync or the first record received
	epoch  string
	offset uint64
	seq    uint64 // of the record at offset
}

// isDup reports whether pos was delivered already.
func (c *cursor) isDup(pos wsroom.Position) bool {
	return c.synced && pos.Epoch == c.epoch && pos.Offset <= c.offset
}

// follows reports whether pos comes right after the cursor.
func (c *cursor) follows(pos wsroom.Position) bool {
	return !c.synced || pos.Epoch == c.epoch && pos.Offset == c.offset+1 || c.epoch == "" && pos.Offset == 1
}

// SubscribeRecorded starts handing deliver the messages recorded in room,
// with their positions, until cancel is called: every one recorded after
// ready is closed, this process's included, once each, in offset order.
// Neither SubscribeRecorded nor cancel waits for the network. ready is
// closed once the server has the subscription and the Broker has read
// the room's last record after it, or after the subscribe timeout
// (WithSubscribeTimeout) without an answer, or at once while the
// connection is not connected: the Broker syncs when it is back.
//
// After the connection was lost, or when a record arrives past the one
// expected, the Broker reads what it missed from the stream and delivers
// that before anything newer. What the stream no longer has (trimmed,
// expired, or lost with a new epoch) is skipped: deliver then sees an
// offset jump, or a new epoch (Stats.Gaps). A lost republish is noticed
// at the room's next record or at the next reconnection, not before. See
// "History" in the package doc. After Close it does nothing and ready is
// closed.
func (b *Broker) SubscribeRecorded(room string, deliver func(wsroom.Position, []byte)) (cancel func(), ready <-chan struct{}) {
	s := &recSub{b: b, room: room, deliver: deliver, ready: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return func() {}, closedChan
	}
	sub, err := b.nc.Subscribe(b.recordedSubject(room), s.receive)
	if err != nil {
		b.subscribeErrors.Add(1)
		return func() {}, closedChan
	}
	s.sub = sub
	s.head = b.hist.heads.acquire(room)
	b.rsubs[s] = struct{}{}
	// Read after nc.Subscribe, as confirmer.add does.
	if b.nc.Status() == nats.CONNECTED {
		s.timer = time.AfterFunc(b.confirm.timeout, func() {
			if s.release() {
				b.confirm.unconfirmed.Add(1)
			}
		})
		s.kick()
	} else {
		b.confirm.unconfirmed.Add(1)
		s.release() // synced once the connection is back
	}
	var once sync.Once
	return func() { once.Do(func() { b.cancelRecorded(s) }) }, s.ready
}

func (b *Broker) cancelRecorded(s *recSub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.rsubs[s]; ok {
		delete(b.rsubs, s)
		b.stopRecorded(s)
	}
}

// stopRecorded ends s; b.mu is held. It does not wait for a delivery or a
// sync in progress.
func (b *Broker) stopRecorded(s *recSub) {
	s.done.Store(true)
	b.retire(s.sub)
	s.release()
	b.hist.heads.release(s.head)
}

// resyncRecorded makes every recorded subscription catch up, the
// connection being back. It runs on the status watcher.
func (b *Broker) resyncRecorded() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.rsubs {
		s.kick()
	}
}

// release closes ready, and reports whether this call did.
func (s *recSub) release() bool {
	done := false
	s.readyOnce.Do(func() {
		if s.timer != nil {
			s.timer.Stop()
		}
		close(s.ready)
		done = true
	})
	return done
}

// kick asks for a sync: one goroutine runs them while there are some.
// Broker.mu is held, so Close's wait follows every kick.
func (s *recSub) kick() {
	if s.kicks.Add(1) == 1 {
		s.b.syncs.Add(1)
		go s.syncLoop()
	}
}

func (s *recSub) syncLoop() {
	defer s.b.syncs.Done()
	for {
		n := s.kicks.Load()
		s.sync()
		if s.kicks.Add(-n) == 0 {
			return
		}
	}
}

// sync confirms that the server has the subscription, then reads the
// room's last record (the first time) or catches up from the cursor, and
// releases ready.
func (s *recSub) sync() {
	defer s.release()
	b := s.b
	if s.done.Load() || b.usable() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, recordTimeout)
	defer cancel()
	if err := b.nc.FlushWithContext(ctx); err != nil {
		b.hist.syncErrors.Add(1) // the next reconnection tries again
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.done.Load():
	case s.cur.synced:
		s.catchUp(ctx)
	default:
		last, err := b.lastRecord(ctx, b.historySubject(s.room))
		if err != nil {
			b.hist.syncErrors.Add(1)
			return
		}
		s.head.seen(last)
		s.cur = cursor{synced: true, epoch: last.pos.Epoch, offset: last.pos.Offset, seq: last.seq}
	}
}

// receive handles one republished record from NATS.
func (s *recSub) receive(m *nats.Msg) {
	pos, ok := position(m.Header)
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if !ok || err != nil {
		s.b.malformed.Add(1)
		return
	}
	r := record{seq: seq, pos: pos}
	s.head.seen(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done.Load() {
		return
	}
	c := &s.cur
	if c.isDup(pos) {
		s.b.hist.duplicates.Add(1)
		return
	}
	if !c.follows(pos) {
		ctx, cancel := context.WithTimeout(s.b.ctx, recordTimeout)
		s.catchUp(ctx)
		cancel()
		if c.isDup(pos) {
			s.b.hist.duplicates.Add(1)
			return
		}
		if !c.follows(pos) {
			s.b.hist.gaps.Add(1) // the stream could not be read, or no longer has them
		}
	}
	s.hand(r, m.Data)
}

// catchUp delivers what the stream has of the room after the cursor. A
// new epoch is read from its start. s.mu is held.
func (s *recSub) catchUp(ctx context.Context) {
	b, c := s.b, &s.cur
	subject := b.historySubject(s.room)
	last, err := b.lastRecord(ctx, subject)
	if err != nil {
		b.hist.syncErrors.Add(1)
		return
	}
	if last.pos.Epoch == "" || last.pos.Epoch == c.epoch && last.pos.Offset <= c.offset {
		return
	}
	var from uint64
	if last.pos.Epoch == c.epoch {
		from = c.seq + 1
	}
	msgs, err := b.readSubject(ctx, subject, from, last.seq)
	if err != nil {
		b.hist.syncErrors.Add(1)
		return
	}
	for _, m := range msgs {
		if m.pos.Epoch != last.pos.Epoch || c.isDup(m.pos) {
			continue
		}
		if !c.follows(m.pos) {
			b.hist.gaps.Add(1)
		}
		b.hist.caughtUp.Add(1)
		s.hand(m.record, m.payload)
	}
}

// hand delivers one record and moves the cursor to it, unless s was
// cancelled meanwhile. s.mu is held.
func (s *recSub) hand(r record, payload []byte) {
	s.cur = cursor{synced: true, epoch: r.pos.Epoch, offset: r.pos.Offset, seq: r.seq}
	if s.done.Load() {
		return
	}
	s.b.hist.receivedRecorded.Add(1)
	s.deliver(r.pos, payload)
}
