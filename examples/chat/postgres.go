package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/pgbroker"
)

// pgRetryEvery is how often a chat whose PostgreSQL did not answer at
// start-up tries again.
const pgRetryEvery = time.Second

// connectPostgres is the broker of -postgres: a pgbroker.Broker on a
// pgxpool.Pool, whose tables it creates if they are missing. pgbroker.New
// needs the database, so until PostgreSQL first answers the rooms use a
// lateBroker in its place, which a background loop fills in.
func connectPostgres(url string) (*connected, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg) // connects lazily
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	l := &lateBroker{pool: pool, waiting: map[*lateSub]struct{}{}}
	l.ctx, l.stop = context.WithCancel(context.Background())
	c := &connected{b: l, kind: "postgres", url: url, prefix: pgbroker.DefaultPrefix,
		close: func() { l.close(); pool.Close() }}
	c.reached = func(ctx context.Context) error {
		b, err := l.dial(ctx, 100*time.Millisecond)
		if err != nil {
			l.retry()
			return err
		}
		c.b = b // reached at once: the rooms use the Broker itself
		return nil
	}
	return c, nil
}

// errNotReached is the error of a lateBroker's publishes while
// PostgreSQL has not answered yet.
var errNotReached = errors.New("postgres: not reached since start-up")

// A lateBroker is a wsroom.HistoryBroker (and PresenceBroker, see
// postgres_presence.go) that has no pgbroker.Broker yet:
// until it has one, publishes and records fail (so members are told, as
// in an outage) and subscriptions are in effect at once, locally, and are
// made on the Broker once it exists.
type lateBroker struct {
	pool *pgxpool.Pool
	ctx  context.Context // cancelled by close
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu      sync.Mutex
	b       *pgbroker.Broker
	waiting map[*lateSub]struct{} // subscriptions made before b
}

// A lateSub is a subscription made before the Broker existed.
type lateSub struct {
	subscribe func(b *pgbroker.Broker) (cancel func(), ready <-chan struct{})
	cancel    func() // on the Broker, once made there
}

var _ wsroom.HistoryBroker = (*lateBroker)(nil)

// dial makes the Broker, trying every pause until ctx ends.
func (l *lateBroker) dial(ctx context.Context, pause time.Duration) (*pgbroker.Broker, error) {
	for {
		b, err := pgbroker.New(ctx, l.pool)
		if err == nil {
			awaitReady(l.install(b))
			return b, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(pause):
		}
	}
}

// retry dials in the background until PostgreSQL answers or close.
func (l *lateBroker) retry() {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if _, err := l.dial(l.ctx, pgRetryEvery); err == nil {
			slog.Info("broker reached: rooms join the other instances from now on", "broker", "postgres")
		}
	}()
}

// install makes b the Broker, moves the waiting subscriptions to it, and
// returns their ready channels.
func (l *lateBroker) install(b *pgbroker.Broker) []<-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = b
	var readies []<-chan struct{}
	for s := range l.waiting {
		var ready <-chan struct{}
		s.cancel, ready = s.subscribe(b)
		readies = append(readies, ready)
	}
	clear(l.waiting)
	return readies
}

// awaitReady waits until every ready is closed, for at most
// wsroom.BrokerReadyTimeout, as a room waits for its first subscription:
// then what other instances publish reaches the rooms that subscribed
// before PostgreSQL answered.
func awaitReady(readies []<-chan struct{}) {
	timeout := time.NewTimer(wsroom.BrokerReadyTimeout)
	defer timeout.Stop()
	for _, ready := range readies {
		if ready == nil {
			continue
		}
		select {
		case <-ready:
		case <-timeout.C:
			return
		}
	}
}

func (l *lateBroker) broker() *pgbroker.Broker {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b
}

// Publish publishes through the Broker, or fails until there is one.
func (l *lateBroker) Publish(room string, payload []byte) error {
	if b := l.broker(); b != nil {
		return b.Publish(room, payload)
	}
	return errNotReached
}

// Record records through the Broker, or fails until there is one.
func (l *lateBroker) Record(room string, payload []byte) (wsroom.Position, error) {
	if b := l.broker(); b != nil {
		return b.Record(room, payload)
	}
	return wsroom.Position{}, errNotReached
}

// History reads the Broker's history, or fails until there is one.
func (l *lateBroker) History(ctx context.Context, room string, since wsroom.Position, limit int) ([]wsroom.Recorded, string, bool, error) {
	if b := l.broker(); b != nil {
		return b.History(ctx, room, since, limit)
	}
	return nil, "", false, errNotReached
}

// Subscribe subscribes on the Broker, now or once there is one.
func (l *lateBroker) Subscribe(room string, deliver func([]byte)) (func(), <-chan struct{}) {
	return l.subscribe(func(b *pgbroker.Broker) (func(), <-chan struct{}) { return b.Subscribe(room, deliver) })
}

// SubscribeRecorded subscribes on the Broker, now or once there is one.
func (l *lateBroker) SubscribeRecorded(room string, deliver func(wsroom.Position, []byte)) (func(), <-chan struct{}) {
	return l.subscribe(func(b *pgbroker.Broker) (func(), <-chan struct{}) { return b.SubscribeRecorded(room, deliver) })
}

func (l *lateBroker) subscribe(on func(*pgbroker.Broker) (func(), <-chan struct{})) (func(), <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b != nil {
		return on(l.b)
	}
	s := &lateSub{subscribe: on}
	l.waiting[s] = struct{}{}
	return func() { l.unsubscribe(s) }, nil // nil: in effect at once
}

// unsubscribe ends s, wherever it is. Called again it does nothing more:
// the Broker's cancel may be called more than once.
func (l *lateBroker) unsubscribe(s *lateSub) {
	l.mu.Lock()
	delete(l.waiting, s)
	cancel := s.cancel
	l.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// close stops the retries and closes the Broker, if there is one.
func (l *lateBroker) close() {
	l.stop()
	l.wg.Wait()
	if b := l.broker(); b != nil {
		_ = b.Close()
	}
}
