package redisbroker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsroom/wsroom"
)

// The recorded subscriptions of a room share its channel (and its one
// SUBSCRIBE) with its Publish subscriptions; envelopes tell the two kinds
// of message apart. The receive goroutine keeps, per room, a cursor: the
// position of the last recorded message it handed the room. A message
// at the cursor's offset + 1 is delivered; one at or below it is a
// duplicate; one further on, or of another epoch, means messages went by
// unseen, and the goroutine reads them from the stream first. Each
// SUBSCRIBE confirmation of the room (its first, and go-redis's after a
// reconnect) also makes it read the stream: the first sets the cursor to
// the room's last offset, later ones catch up from the cursor.

// recRoom is the recorded side of one channel.
type recRoom struct {
	// Under Broker.mu.
	subs    []*recSub     // never modified, only replaced
	synced  bool          // the cursor is set; written by the receive goroutine only
	resync  bool          // the owner is to write the channel's SUBSCRIBE again, for a confirmation
	waiting chan struct{} // ready of the subscriptions waiting for the first sync; nil if none
	timer   *time.Timer   // releases waiting after the readiness timeout

	// The cursor: the receive goroutine's alone.
	epoch  string
	offset uint64
}

type recSub struct {
	deliver   func(wsroom.Position, []byte)
	cancelled atomic.Bool
}

// SubscribeRecorded starts handing deliver the messages recorded in room,
// with their positions, until cancel is called: every one recorded after
// ready is closed, this process's included, once each, in offset order.
// It returns at once, as Subscribe does. ready is closed once Redis has
// applied the channel's SUBSCRIBE and the Broker has read the room's last
// offset after it (at once if the room is subscribed so already), or
// once the Broker knows Redis is unreachable, or after a second (or the
// health-check interval, if shorter) without an answer.
//
// After the subscription connection was lost, the Broker reads from the
// stream what it missed and delivers that before anything newer. What
// the stream no longer has (trimmed, expired, or lost with a new epoch)
// is skipped: deliver then sees an offset jump, or a new epoch starting
// at the first offset the stream still has (Stats.Gaps). See "History"
// in the package doc. After Close it does nothing and ready is closed.
func (b *Broker) SubscribeRecorded(room string, deliver func(wsroom.Position, []byte)) (cancel func(), ready <-chan struct{}) {
	ch := b.channel(room)
	s := &recSub{deliver: deliver}
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return func() {}, closedReady
	}
	b.start.Do(b.run)
	rr := b.rsubs[ch]
	if rr == nil {
		rr = &recRoom{}
		b.rsubs[ch] = rr
	}
	rr.subs = append(rr.subs[:len(rr.subs):len(rr.subs)], s)
	switch {
	case rr.synced:
		ready = closedReady
	case b.failing.Load() || b.breaker.open.Load():
		ready = closedReady // and synced once Redis is back
	default:
		ready = b.waitSync(rr)
	}
	if !rr.synced {
		rr.resync = true
		b.markDirty(ch)
	}
	b.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { b.unsubscribeRecorded(ch, rr, s) }) }, ready
}

// waitSync returns the ready of a subscription waiting for rr's first
// sync. b.mu is held.
func (b *Broker) waitSync(rr *recRoom) <-chan struct{} {
	if rr.waiting == nil {
		w := make(chan struct{})
		rr.waiting = w
		rr.timer = time.AfterFunc(b.ready.timeout, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if rr.waiting == w {
				rr.release()
			}
		})
	}
	return rr.waiting
}

// release closes the ready of the subscriptions waiting. Broker.mu is
// held.
func (rr *recRoom) release() {
	if rr.waiting != nil {
		rr.timer.Stop()
		close(rr.waiting)
		rr.waiting, rr.timer = nil, nil
	}
}

func (b *Broker) unsubscribeRecorded(ch string, rr *recRoom, s *recSub) {
	s.cancelled.Store(true)
	b.mu.Lock()
	defer b.mu.Unlock()
	next := make([]*recSub, 0, len(rr.subs))
	for _, x := range rr.subs {
		if x != s {
			next = append(next, x)
		}
	}
	rr.subs = next
	if len(next) > 0 || b.rsubs[ch] != rr {
		return
	}
	rr.release()
	delete(b.rsubs, ch) // the cursor goes with it: a later subscription syncs anew
	b.markDirty(ch)
}

// releaseWaiting lets every subscription waiting for Redis go, Publish's
// and recorded ones, as the Broker knows Redis is unreachable.
func (b *Broker) releaseWaiting() {
	b.ready.release()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, rr := range b.rsubs {
		rr.release()
	}
}

// recRoomOf returns ch's recorded side and its live subscriptions, or
// nil if it has none.
func (b *Broker) recRoomOf(ch string) (*recRoom, []*recSub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rr := b.rsubs[ch]
	if rr == nil {
		return nil, nil
	}
	return rr, rr.subs
}

// dispatchRecorded hands one received recorded message to its room's
// recorded subscriptions, after what the cursor says they missed. It
// runs on the receive goroutine.
func (b *Broker) dispatchRecorded(ch, epoch string, offset uint64, payload string) {
	rr, subs := b.recRoomOf(ch)
	if rr == nil || !anyLive(subs) {
		b.unrouted.Add(1)
		return
	}
	if !b.isSynced(rr) { // before the first sync: the cursor starts here
		b.advance(rr, epoch, offset)
		b.deliverTo(subs, wsroom.Position{Offset: offset, Epoch: epoch}, []byte(payload))
		return
	}
	if epoch != rr.epoch || offset > rr.offset+1 {
		if b.catchUp(ch, rr) && epoch != rr.epoch {
			b.duplicates.Add(1) // of an epoch the stream no longer has
			return
		}
		if epoch != rr.epoch || offset > rr.offset+1 {
			b.gaps.Add(1) // the stream could not be read: on from here
		}
	}
	if epoch == rr.epoch && offset <= rr.offset {
		b.duplicates.Add(1)
		return
	}
	b.advance(rr, epoch, offset)
	_, subs = b.recRoomOf(ch)
	b.deliverTo(subs, wsroom.Position{Offset: offset, Epoch: epoch}, []byte(payload))
}

// confirmed handles a SUBSCRIBE confirmation of ch: the first sync of its
// recorded side sets the cursor to the room's last offset; later ones
// catch up from the cursor. Either way the subscriptions waiting are let
// go. It runs on the receive goroutine.
func (b *Broker) confirmed(ch string) {
	rr, _ := b.recRoomOf(ch)
	if rr == nil {
		return
	}
	if b.isSynced(rr) {
		b.catchUp(ch, rr)
	} else {
		ctx, cancel := context.WithTimeout(b.ctx, b.publishTimeout)
		st, err := b.read(ctx, ch[len(b.prefix)+1:], "", 0, 0)
		cancel()
		if err != nil {
			b.syncErrors.Add(1) // the next confirmation or message tries again
		} else {
			b.advance(rr, st.epoch, st.top)
		}
	}
	b.mu.Lock()
	rr.release()
	b.mu.Unlock()
}

// catchUp delivers what the stream has after rr's cursor, and reports
// whether it could read it. A new epoch is caught up from its start. It
// runs on the receive goroutine.
func (b *Broker) catchUp(ch string, rr *recRoom) bool {
	room := ch[len(b.prefix)+1:]
	ctx, cancel := context.WithTimeout(b.ctx, b.publishTimeout)
	defer cancel()
	st, err := b.read(ctx, room, rr.epoch, rr.offset+1, -1)
	if err == nil && st.epoch != rr.epoch {
		st, err = b.read(ctx, room, st.epoch, 1, -1)
	}
	if err != nil {
		b.syncErrors.Add(1)
		return false
	}
	if st.epoch != rr.epoch {
		rr.epoch, rr.offset = st.epoch, 0
		b.gaps.Add(1)
	}
	for _, m := range st.msgs {
		if m.Position.Offset <= rr.offset {
			continue
		}
		if m.Position.Offset != rr.offset+1 {
			b.gaps.Add(1)
		}
		rr.offset = m.Position.Offset
		_, subs := b.recRoomOf(ch)
		b.caughtUp.Add(1)
		b.deliverTo(subs, m.Position, m.Payload)
	}
	if st.top > rr.offset { // the stream lost its tail, the meta hash kept it
		b.gaps.Add(1)
		rr.offset = st.top
	}
	return true
}

// isSynced reports whether rr's cursor is set.
func (b *Broker) isSynced(rr *recRoom) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return rr.synced
}

// advance moves rr's cursor to epoch and offset.
func (b *Broker) advance(rr *recRoom, epoch string, offset uint64) {
	rr.epoch, rr.offset = epoch, offset
	b.mu.Lock()
	rr.synced = true
	b.mu.Unlock()
}

func anyLive(subs []*recSub) bool {
	for _, s := range subs {
		if !s.cancelled.Load() {
			return true
		}
	}
	return false
}

// deliverTo hands one recorded message to the subscriptions not
// cancelled.
func (b *Broker) deliverTo(subs []*recSub, pos wsroom.Position, payload []byte) {
	b.receivedRecorded.Add(1)
	for _, s := range subs {
		if !s.cancelled.Load() {
			s.deliver(pos, payload)
		}
	}
}
