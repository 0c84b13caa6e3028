package redisbroker

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// readyPing prefixes the payload of the PINGs that confirm subscriptions;
// the health check's PINGs carry none, so their PONGs never match it.
const readyPing = "wsroom-ready:"

// closedReady is the ready of a subscription that is in effect at once, or
// that cannot be for now.
var closedReady = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// readiness knows which subscriptions Redis has applied, and closes the
// ready of those waiting for it. Redis answers a connection's commands in
// order, so the PONG of a PING written after a SUBSCRIBE proves the
// SUBSCRIBE applied. The owner numbers its PINGs (seq, from 1): a
// subscription waits for the PONG of the first PING written after its
// SUBSCRIBE, never for one written before, so the late confirmation of an
// earlier SUBSCRIBE of the same channel (subscribed, cancelled, subscribed
// again) releases nobody. It is safe for concurrent use; Broker.mu may be
// held when calling it, never the other way round.
type readiness struct {
	timeout time.Duration // the longest a subscription waits: a second, or the health-check interval if shorter

	mu sync.Mutex
	// confirmed maps each channel whose SUBSCRIBE was written, and that
	// the owner has not decided to UNSUBSCRIBE since, to the seq of the
	// first PING written after it.
	confirmed map[string]uint64
	next      uint64 // seq of the next PING
	ponged    uint64 // highest seq whose PONG has arrived
	// since is the first seq written after the connection was last known
	// lost: go-redis subscribes a new connection to every channel it holds
	// before the owner's next PING, so only a PONG from since on confirms.
	since uint64

	unsent   *batch   // subscriptions the owner has yet to take; nil if none
	inflight []*batch // taken, by seq (0 until the PING is numbered)
}

// A batch is the ready of subscriptions waiting for one PONG.
type batch struct {
	ready    chan struct{}
	seq      uint64
	timer    *time.Timer // releases the batch after the timeout
	released bool
}

func newReadiness(timeout time.Duration) *readiness {
	return &readiness{timeout: timeout, confirmed: map[string]uint64{}, next: 1}
}

// isConfirmed reports whether ch's subscription is in effect at Redis.
func (r *readiness) isConfirmed(ch string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq, ok := r.confirmed[ch]
	return ok && r.ponged >= seq && r.ponged >= r.since
}

// wait returns the ready of a subscription that the owner's next PING is
// to confirm.
func (r *readiness) wait() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unsent == nil {
		bt := &batch{ready: make(chan struct{})}
		bt.timer = time.AfterFunc(r.timeout, func() { r.expire(bt) })
		r.unsent = bt
	}
	return r.unsent.ready
}

// take hands the owner the subscriptions waiting so far, before it writes
// the SUBSCRIBEs they need; nil if none.
func (r *readiness) take() *batch {
	r.mu.Lock()
	defer r.mu.Unlock()
	bt := r.unsent
	r.unsent = nil
	if bt != nil {
		r.inflight = append(r.inflight, bt)
	}
	return bt
}

// sent numbers the PING the owner is about to write after SUBSCRIBEing
// chans: its PONG confirms them and releases bt (which may be nil). It
// returns the PING's payload.
func (r *readiness) sent(chans []string, bt *batch) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq := r.next
	r.next++
	for _, ch := range chans {
		r.confirmed[ch] = seq
	}
	if bt != nil {
		bt.seq = seq
	}
	return readyPing + strconv.FormatUint(seq, 10)
}

// pong records the PONG of a PING with payload, and releases the batches
// up to it. The health check's PONGs are ignored.
func (r *readiness) pong(payload string) {
	s, ok := strings.CutPrefix(payload, readyPing)
	if !ok {
		return
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ponged = max(r.ponged, seq)
	i := 0
	for ; i < len(r.inflight) && r.inflight[i].seq != 0 && r.inflight[i].seq <= seq; i++ {
		r.inflight[i].release()
	}
	r.inflight = r.inflight[i:]
}

// lost records that the subscription connection failed: no confirmation
// holds until a PING written from now on is answered, and every waiting
// subscription is released, as the Broker now knows it is disconnected.
func (r *readiness) lost() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.since = r.next
	r.releaseAll()
}

// release lets every waiting subscription go.
func (r *readiness) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.releaseAll()
}

func (r *readiness) releaseAll() {
	for _, bt := range r.inflight {
		bt.release()
	}
	r.inflight = nil
	if r.unsent != nil {
		r.unsent.release()
		r.unsent = nil
	}
}

// expire releases bt, whose PONG is overdue.
func (r *readiness) expire(bt *batch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	bt.release()
	if r.unsent == bt {
		r.unsent = nil
	}
	// A batch taken stays in inflight until a PONG or a loss prunes it.
}

// forget records that the owner is to UNSUBSCRIBE ch.
func (r *readiness) forget(ch string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.confirmed, ch)
}

// release closes bt's ready, once. r.mu is held.
func (bt *batch) release() {
	if !bt.released {
		bt.released = true
		bt.timer.Stop()
		close(bt.ready)
	}
}
