package redisbroker

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// run starts the goroutines that own the subscription connection. b.mu is
// held.
func (b *Broker) run() {
	b.ps = b.client.Subscribe(b.ctx) // no channels: connects on first use
	b.wg.Add(2)
	go func() {
		defer b.wg.Done()
		b.own()
	}()
	go func() {
		defer b.wg.Done()
		b.receive()
	}()
}

// owner is the state of the goroutine that writes to the subscription
// connection.
type owner struct {
	told    map[string]bool // channels the PubSub holds
	pending map[string]bool // channels whose SUBSCRIBE is still to be written
	backoff time.Duration   // before writing pending again
}

// own applies the changes of the rooms to the subscription connection, in
// order. A SUBSCRIBE that could not be written is written again after a backoff
// (it is idempotent), as the PubSub may have reconnected without it.
func (b *Broker) own() {
	o := &owner{told: map[string]bool{}, pending: map[string]bool{}, backoff: minBackoff}
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-b.wake:
		case <-retry.C:
		case <-b.ctx.Done():
			return
		}
		if !b.apply(o) && b.ctx.Err() == nil {
			retry.Reset(o.backoff)
			o.backoff = min(2*o.backoff, maxBackoff)
		}
	}
}

// apply makes one round of changes: it compares each dirty channel's
// wanted state with what it last told go-redis's PubSub (which keeps that
// set and subscribes a new connection to all of it when it reconnects),
// writes the UNSUBSCRIBEs then the SUBSCRIBEs, then the PING that confirms
// them and the subscriptions waiting when the round began. It reports
// false if a SUBSCRIBE is to be written again.
func (b *Broker) apply(o *owner) bool {
	b.mu.Lock()
	var remove []string
	for ch := range b.dirty {
		rr := b.rsubs[ch]
		switch want := len(b.subs[ch]) > 0 || rr != nil; {
		case want && (!o.told[ch] || rr != nil && rr.resync):
			// A channel subscribed already is subscribed again for a
			// recorded subscription's first sync: its confirmation is
			// the moment the sync reads the room's last offset.
			o.told[ch], o.pending[ch] = true, true
			if rr != nil {
				rr.resync = false
			}
		case !want && o.told[ch]:
			delete(o.told, ch)
			delete(o.pending, ch)
			b.ready.forget(ch) // from now on a new subscription waits for a new SUBSCRIBE
			remove = append(remove, ch)
		}
	}
	clear(b.dirty)
	bt := b.ready.take()
	b.mu.Unlock()
	// Unsubscribing first means that once a later room's subscription is
	// confirmed, every earlier change has been applied. The PubSub forgets
	// the channels even on error.
	if len(remove) > 0 {
		b.write(func(ctx context.Context) error { return b.ps.Unsubscribe(ctx, remove...) })
	}
	if bt == nil && len(o.pending) == 0 {
		return true
	}
	chans := make([]string, 0, len(o.pending))
	for ch := range o.pending {
		chans = append(chans, ch)
	}
	if len(chans) > 0 && !b.write(func(ctx context.Context) error { return b.ps.Subscribe(ctx, chans...) }) {
		// The PubSub remembers them even on error, but may have
		// reconnected without them: they are written again. write has
		// released the subscriptions waiting, as Redis is unreachable.
		return false
	}
	clear(o.pending)
	o.backoff = minBackoff
	payload := b.ready.sent(chans, bt)
	b.write(func(ctx context.Context) error { return b.ps.Ping(ctx, payload) })
	return true
}

// write runs one command on the subscription connection, bounded by the
// health-check interval. A command that fails means go-redis dropped the
// connection: the Broker counts itself disconnected until it receives
// again. write reports whether the command was written.
func (b *Broker) write(cmd func(context.Context) error) bool {
	ctx, cancel := context.WithTimeout(b.ctx, b.healthCheck)
	err := cmd(ctx)
	cancel()
	if err != nil {
		b.connLost()
	}
	return err == nil
}

// connLost records that the subscription connection failed.
func (b *Broker) connLost() {
	b.failing.Store(true)
	b.ready.lost()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, rr := range b.rsubs {
		rr.release()
	}
}

// receive reads the subscription connection and hands each message to its
// room's subscriptions, until Close.
func (b *Broker) receive() {
	backoff := time.Duration(0)
	probing := false // a PING went out and nothing has arrived since
	for {
		msg, err := b.next(probing)
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			if !probing && isSilence(err) {
				ctx, cancel := context.WithTimeout(b.ctx, b.healthCheck)
				if b.ps.Ping(ctx) != nil {
					// The write failed and go-redis reconnects: rooms are
					// confirmed again only on the new connection.
					b.connErrors.Add(1)
					b.connLost()
				}
				cancel()
				probing = true
				continue
			}
			probing = false
			b.connErrors.Add(1)
			b.connLost()
			if !b.sleep(backoff) {
				return
			}
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			continue
		}
		if backoff > 0 { // Redis is back
			b.breaker.reset()
		}
		if b.failing.Load() {
			b.failing.Store(false)
		}
		probing, backoff = false, 0
		switch m := msg.(type) {
		case *redis.Message:
			b.dispatch(m.Channel, m.Payload)
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				b.confirmed(m.Channel)
			}
		case *redis.Pong:
			b.ready.pong(m.Payload)
		}
	}
}

// next reads the next message from the subscription connection.
func (b *Broker) next(probing bool) (any, error) {
	if !probing {
		// A timeout here only means silence: go-redis keeps the
		// connection.
		return b.ps.ReceiveTimeout(b.ctx, b.healthCheck)
	}
	// A timeout here is a connection that did not answer: a read with a
	// context deadline that expires makes go-redis close the connection,
	// then dial again and resubscribe.
	ctx, cancel := context.WithTimeout(b.ctx, b.healthCheck)
	defer cancel()
	return b.ps.Receive(ctx)
}

// sleep waits for d or Close, and reports whether the Broker is open.
func (b *Broker) sleep(d time.Duration) bool {
	if d <= 0 {
		return b.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.ctx.Done():
		return false
	}
}

// dispatch hands one received message to the subscriptions of its
// channel.
func (b *Broker) dispatch(ch, msg string) {
	if strings.HasPrefix(msg, recordedMagic) {
		epoch, offset, payload, ok := openRecorded(msg)
		if !ok {
			b.malformed.Add(1)
			return
		}
		b.dispatchRecorded(ch, epoch, offset, payload)
		return
	}
	origin, payload, ok := openEnvelope(msg)
	switch {
	case !ok:
		b.malformed.Add(1)
		return
	case origin == b.origin:
		b.echoes.Add(1)
		return
	}
	b.mu.Lock()
	subs := b.subs[ch]
	b.mu.Unlock()
	live := func(s *subscription) bool { return !s.cancelled.Load() }
	if !slices.ContainsFunc(subs, live) {
		b.unrouted.Add(1)
		return
	}
	b.received.Add(1) // counted before anyone can see the message
	for _, s := range subs {
		if live(s) {
			s.deliver([]byte(payload))
		}
	}
}

// isSilence reports whether err is a read that timed out, not a failure
// to dial.
func isSilence(err error) bool {
	var ne net.Error
	var op *net.OpError
	return errors.As(err, &ne) && ne.Timeout() && !(errors.As(err, &op) && op.Op == "dial")
}
