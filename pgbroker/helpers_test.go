package pgbroker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/pgtest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/pgbroker"
)

func TestMain(m *testing.M) {
	presenceChildMain() // a presence instance of the kill test, if started as one
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// pgURL returns the URL of the server the tests share.
func pgURL(t testing.TB) string { return pgtest.Shared(t) }

// ownServer starts a server for t alone, which it may stop and start.
func ownServer(t testing.TB) *pgtest.Server { return pgtest.Own(t) }

// uniquePrefix returns a table and channel prefix no other test uses, so
// tests that share a server do not hear each other.
func uniquePrefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

// newPool returns a pool of the server at url, closed at cleanup.
func newPool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// newBroker returns a Broker on a pool of its own of url (a process of its
// own), both closed at cleanup.
func newBroker(t testing.TB, url string, opts ...pgbroker.Option) *pgbroker.Broker {
	t.Helper()
	pool := newPool(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	b, err := pgbroker.New(ctx, pool, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

// pair returns brokertest's Pair: two processes on the server at url,
// with a prefix of their own.
func pair(url string, opts ...pgbroker.Option) brokertest.Pair {
	return func(t *testing.T) (a, b wsroom.Broker) {
		opts := append([]pgbroker.Option{pgbroker.WithPrefix(uniquePrefix())}, opts...)
		return newBroker(t, url, opts...), newBroker(t, url, opts...)
	}
}

// exec runs sql on the server at url as its superuser.
func exec(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// terminateListener ends b's listening connection from the server's side,
// as an operator's pg_terminate_backend or a server restart would, and
// waits for the backend to end.
func terminateListener(t testing.TB, admin *pgxpool.Pool, b *pgbroker.Broker) {
	t.Helper()
	// The listener may still be reconnecting from an earlier drop.
	wstest.WaitFor(t, "the listener to be connected", func() bool {
		var n int
		err := admin.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, b.ApplicationName()).Scan(&n)
		return err == nil && n == 1
	})
	rows, err := admin.Query(context.Background(),
		`SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = $1`,
		b.ApplicationName())
	if err != nil {
		t.Fatal(err)
	}
	ended, err := pgx.CollectRows(rows, pgx.RowTo[bool])
	if err != nil || len(ended) != 1 || !ended[0] {
		t.Fatalf("terminating the listener: %v (%v)", ended, err)
	}
}

// stats returns the Stats of a Broker the test made as a wsroom.Broker.
func stats(b wsroom.Broker) pgbroker.Stats { return b.(*pgbroker.Broker).Stats() }

// historyPair returns brokertest's HistoryPair: two processes on the
// server at url, with a prefix of their own.
func historyPair(url string, opts ...pgbroker.Option) brokertest.HistoryPair {
	return func(t *testing.T) (a, b wsroom.HistoryBroker) {
		opts := append([]pgbroker.Option{pgbroker.WithPrefix(uniquePrefix())}, opts...)
		return newBroker(t, url, opts...), newBroker(t, url, opts...)
	}
}
