package pgbroker

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/wsroom/wsroom"
)

// Bounds of the backoff between attempts to connect the listener again.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 250 * time.Millisecond
)

// listener is the state of the goroutine that owns the listening
// connection: it alone uses conn, and it alone reads and writes pos.
type listener struct {
	b        *Broker
	conn     *pgx.Conn       // nil while disconnected
	listened map[string]bool // keys LISTENed on conn
	// pos is, for each subscribed key, the position of the last message
	// of the room handed to its subscriptions or known to be older than
	// them. It outlives a connection: after a drop, the log is read from
	// there.
	pos map[string]*position
}

// A position is a stream's epoch and offset.
type position struct {
	epoch, off int64
	text       string // epoch, as wsroom.Position carries it
	broken     bool   // in readLog: the log does not go on from off
	// abandoned is the epoch restart left: notifications of it still
	// on their way are dropped.
	abandoned int64
}

// setEpoch moves p to the start of epoch.
func (p *position) setEpoch(epoch int64) {
	p.epoch, p.off, p.text = epoch, 0, epochText(epoch)
}

// listen runs the listener until Close. It runs in b.wg.
func (b *Broker) listen() {
	defer b.wg.Done()
	l := &listener{b: b, pos: map[string]*position{}}
	defer l.disconnect()
	backoff := time.Duration(0)
	for b.ctx.Err() == nil {
		if l.conn == nil {
			if !b.sleep(backoff) {
				return
			}
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			err := l.connect()
			// An attempt the server did not answer tells the breaker it
			// is unreachable; one it answered (a refused login), or a
			// connection, tells it the contrary.
			b.breaker.listenerFound(err)
			if err != nil {
				l.lost()
				continue
			}
			backoff = 0
		}
		if err := l.step(); err != nil && b.ctx.Err() == nil {
			l.lost()
		}
	}
}

// connect makes the listening connection, with the pool's config, and
// marks every subscribed key to be LISTENed on it.
func (l *listener) connect() error {
	b := l.b
	cfg := b.pool.Config().ConnConfig.Copy()
	// The listener interrupts its waits by cancelling them: a deadline on
	// the socket, which leaves the connection usable, not a cancel request.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "wsroom-pgbroker-" + b.origin // how an operator, or a test, finds it
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.healthCheck)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	l.conn, l.listened = conn, map[string]bool{}
	b.mu.Lock()
	for key := range b.subs {
		b.dirty[key] = struct{}{}
	}
	for key := range l.pos {
		if len(b.subs[key]) == 0 {
			delete(l.pos, key)
		}
	}
	b.mu.Unlock()
	return nil
}

// lost records that the connection, or an attempt to make it, failed:
// waiting subscriptions are released, as the Broker knows it is
// disconnected, until it has connected again and LISTENed their keys.
// The failure is counted once the Broker knows.
func (l *listener) lost() {
	b := l.b
	b.mu.Lock()
	b.down = true
	clear(b.listening)
	b.releaseWaiting(true)
	b.mu.Unlock()
	l.disconnect()
	b.connErrors.Add(1)
}

func (l *listener) disconnect() {
	if l.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = l.conn.Close(ctx)
		cancel()
		l.conn = nil
	}
}

// step applies the rooms' changes, then waits for a notification and
// handles it. An error means the connection failed.
func (l *listener) step() error {
	if err := l.apply(); err != nil {
		return err
	}
	b := l.b
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.healthCheck)
	defer cancel()
	b.mu.Lock()
	if len(b.dirty) > 0 {
		b.mu.Unlock()
		return nil
	}
	b.interrupt = cancel
	b.mu.Unlock()
	n, err := l.conn.WaitForNotification(ctx)
	b.mu.Lock()
	b.interrupt = nil
	b.mu.Unlock()
	if n != nil {
		if err := l.handle(n); err != nil {
			return err
		}
	}
	switch {
	case err == nil, b.ctx.Err() != nil:
		return nil
	case errors.Is(ctx.Err(), context.Canceled):
		return nil // interrupted: the rooms changed
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		// Silence: a connection that does not answer a ping within the
		// health-check interval is replaced.
		ctx, cancel := context.WithTimeout(b.ctx, b.cfg.healthCheck)
		defer cancel()
		return l.conn.Ping(ctx)
	}
	return err
}

// apply makes the LISTENs and UNLISTENs the rooms' changes call for, then
// learns the positions of the keys new to the connection: from the log
// for those it has a position for (what was published while it was away
// is delivered now), from the rooms' rows for the others.
func (l *listener) apply() error {
	b := l.b
	b.mu.Lock()
	var add, remove []string
	for key := range b.dirty {
		switch want := len(b.subs[key]) > 0; {
		case want && !l.listened[key]:
			add = append(add, key)
		case !want && l.listened[key]:
			remove = append(remove, key)
			delete(b.listening, key) // from now on a new subscription waits for a new LISTEN
		}
	}
	clear(b.dirty)
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.healthCheck)
	defer cancel()
	if len(remove) > 0 {
		if err := l.exec(ctx, "UNLISTEN", remove); err != nil {
			return err
		}
		for _, key := range remove {
			delete(l.listened, key)
			delete(l.pos, key)
		}
	}
	if len(add) > 0 {
		if err := l.exec(ctx, "LISTEN", add); err != nil {
			return err
		}
		var known, fresh []string
		for _, key := range add {
			l.listened[key] = true
			if l.pos[key] != nil {
				known = append(known, key)
			} else {
				fresh = append(fresh, key)
			}
		}
		if err := l.positions(ctx, fresh); err != nil {
			return err
		}
		if err := l.catchUp(ctx, known); err != nil {
			return err
		}
	}
	b.mu.Lock()
	b.down = false
	for _, key := range add {
		b.listening[key] = true
	}
	b.releaseWaiting(false)
	b.mu.Unlock()
	return nil
}

// exec sends one LISTEN or UNLISTEN per key, in one round trip.
func (l *listener) exec(ctx context.Context, verb string, keys []string) error {
	var sql strings.Builder
	for _, key := range keys {
		sql.WriteString(verb + " " + pgx.Identifier{l.b.channel(key)}.Sanitize() + ";")
	}
	_, err := l.conn.Exec(ctx, sql.String())
	return err
}

// positions sets the position of keys just LISTENed to their rooms'
// latest offsets: a notification of anything later is on its way.
func (l *listener) positions(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	for _, key := range keys {
		l.pos[key] = &position{} // a room not yet published to
	}
	rows, err := l.conn.Query(ctx, l.b.sql.positions, keys)
	if err != nil {
		return err
	}
	var key string
	var p position
	_, err = pgx.ForEachRow(rows, []any{&key, &p.epoch, &p.off}, func() error {
		l.pos[key].setEpoch(p.epoch)
		l.pos[key].off = p.off
		return nil
	})
	return err
}

// catchUp delivers what the log holds for keys after their positions, in
// order. A recorded stream whose log no longer goes on from its position
// starts a new epoch (restart), from which it is caught up in turn.
func (l *listener) catchUp(ctx context.Context, keys []string) error {
	broken, err := l.readLog(ctx, keys)
	if err != nil || len(broken) == 0 {
		return err
	}
	return l.restart(ctx, broken)
}

// readLog delivers what the log holds for keys after their positions, in
// order, and returns the recorded streams whose log does not go on from
// their positions: nothing of theirs after the gap is delivered.
func (l *listener) readLog(ctx context.Context, keys []string) (broken []string, err error) {
	if len(keys) == 0 {
		return nil, nil
	}
	epochs, offs := make([]int64, len(keys)), make([]int64, len(keys))
	for i, key := range keys {
		epochs[i], offs[i] = l.pos[key].epoch, l.pos[key].off
	}
	rows, err := l.conn.Query(ctx, l.b.sql.catchUp, keys, epochs, offs)
	if err != nil {
		return nil, err
	}
	var key, origin string
	var epoch, off int64
	var payload []byte
	_, err = pgx.ForEachRow(rows, []any{&key, &epoch, &off, &origin, &payload}, func() error {
		p := l.pos[key]
		if p.broken {
			return nil
		}
		if epoch != p.epoch {
			p.setEpoch(epoch)
		}
		if off > p.off+1 && isRecorded(key) { // trimmed before it could be read
			p.broken = true
			broken = append(broken, key)
			return nil
		}
		l.b.missed.Add(off - p.off - 1) // trimmed before it could be read
		p.off = off
		if origin == l.b.origin && !isRecorded(key) {
			l.b.echoes.Add(1)
			return nil
		}
		l.b.dispatch(key, p, payload, true)
		return nil
	})
	return broken, err
}

// restart gives the recorded streams keys, whose logs lost messages the
// listener had not delivered, a new epoch, and delivers them from its
// first message: every process's subscriptions follow it, so a room's
// positions stay the same everywhere, and none has a gap within an epoch.
// A stream given a new epoch meanwhile, by another process, keeps it.
func (l *listener) restart(ctx context.Context, keys []string) error {
	for _, key := range keys {
		p := l.pos[key]
		var epoch int64
		err := pgx.BeginFunc(ctx, l.conn, func(tx pgx.Tx) error {
			err := tx.QueryRow(ctx, l.b.sql.rotate, key, p.epoch).Scan(&epoch)
			if errors.Is(err, pgx.ErrNoRows) { // rotated by another, or made again
				err = tx.QueryRow(ctx, l.b.sql.head, key).Scan(&epoch, new(int64))
				if errors.Is(err, pgx.ErrNoRows) {
					epoch, err = 0, nil // its next record makes it again
				}
				return err
			}
			if err == nil {
				_, err = tx.Exec(ctx, l.b.sql.rotateLog, key)
			}
			return err
		})
		if err != nil {
			return err
		}
		l.b.gaps.Add(1)
		p.abandoned = p.epoch
		p.setEpoch(epoch)
		p.broken = false
	}
	broken, err := l.readLog(ctx, keys)
	for _, key := range broken { // trimmed again at once: the next notification tries again
		l.pos[key].broken = false
	}
	return err
}

// handle handles one notification. A message that follows the room's
// position and came with its notification is delivered; one that leaves a
// gap (the connection dropped and came back, or the message is after a
// trimmed one) or was too long for a notification is read from the log,
// with whatever else is there; one already delivered from the log is
// dropped.
func (l *listener) handle(n *pgconn.Notification) error {
	b := l.b
	key, ok := b.streamOf(n.Channel)
	p := l.pos[key]
	if !ok || p == nil {
		return nil // UNLISTENed since it was sent
	}
	nt, ok := parseNotice(n.Payload)
	if !ok {
		b.malformed.Add(1)
		return nil
	}
	if nt.epoch == p.abandoned {
		b.duplicates.Add(1)
		return nil
	}
	if nt.epoch != p.epoch {
		p.setEpoch(nt.epoch) // the room's offsets restarted
	}
	switch {
	case nt.off <= p.off:
		b.duplicates.Add(1)
		return nil
	case nt.off > p.off+1 || !nt.inline:
		ctx, cancel := context.WithTimeout(b.ctx, b.cfg.healthCheck)
		defer cancel()
		broken, err := l.readLog(ctx, []string{key})
		if err != nil {
			return err
		}
		if p.off < nt.off && isRecorded(key) && len(broken) == 0 { // the log no longer has it
			broken = []string{key}
		}
		if len(broken) > 0 {
			return l.restart(ctx, broken)
		}
		if p.off < nt.off { // the log no longer has it
			b.missed.Add(nt.off - p.off)
			p.off = nt.off
		}
		return nil
	}
	p.off = nt.off
	if nt.origin == b.origin && !isRecorded(key) {
		b.echoes.Add(1)
		return nil
	}
	b.dispatch(key, p, []byte(nt.payload), false)
	return nil
}

// dispatch hands payload, the message at p, to the live subscriptions of
// stream key; fromLog says it was read from the log.
func (b *Broker) dispatch(key string, p *position, payload []byte, fromLog bool) {
	b.mu.Lock()
	subs := b.subs[key]
	b.mu.Unlock()
	live := func(s *subscription) bool { return !s.cancelled.Load() }
	if !slices.ContainsFunc(subs, live) {
		return
	}
	b.count(isRecorded(key), fromLog) // before anyone can see the message
	for _, s := range subs {
		switch {
		case !live(s):
		case s.deliverRecorded != nil:
			s.deliverRecorded(wsroom.Position{Offset: uint64(p.off), Epoch: p.text}, payload)
		default:
			s.deliver(payload)
		}
	}
}

// count counts a message handed to local subscriptions: a record or a
// publish, read from the log or from its notification.
func (b *Broker) count(recorded, fromLog bool) {
	switch {
	case recorded:
		b.receivedRecorded.Add(1)
	default:
		b.received.Add(1)
	}
	if fromLog {
		b.fromLog.Add(1)
		if recorded {
			b.caughtUp.Add(1)
		}
	}
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
