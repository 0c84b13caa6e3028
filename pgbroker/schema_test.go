package pgbroker_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/pgbroker"
)

func TestSchemaSQLFileIsTheMigrationOfTheDefaultPrefix(t *testing.T) {
	file, err := os.ReadFile("schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	sql, err := pgbroker.SchemaSQL(pgbroker.DefaultPrefix)
	if err != nil || sql != string(file) {
		t.Fatalf("SchemaSQL(%q) differs from schema.sql (%v)", pgbroker.DefaultPrefix, err)
	}
	other, _ := pgbroker.SchemaSQL("chat_rooms2")
	if strings.Contains(other, "wsroom_") || !strings.Contains(other, "chat_rooms2_log") {
		t.Fatalf("SchemaSQL(\"chat_rooms2\") still names the default prefix's tables:\n%s", other)
	}
}

// Prefixes become identifiers, so anything but a plain lowercase name is
// refused, before any SQL is sent.
func TestHostilePrefixesAreRefused(t *testing.T) {
	pool := newPool(t, pgURL(t))
	for _, p := range []string{"", "A", "1a", "a-b", "a b", `a"`, "a'", "a;drop table x", "wsroom_rooms;--", "ä", "a\x00", strings.Repeat("a", 31)} {
		if _, err := pgbroker.SchemaSQL(p); err == nil {
			t.Errorf("SchemaSQL(%q) accepted", p)
		}
		if b, err := pgbroker.New(context.Background(), pool, pgbroker.WithPrefix(p)); err == nil {
			b.Close()
			t.Errorf("New accepted prefix %q", p)
		}
	}
	if _, err := pgbroker.SchemaSQL(strings.Repeat("a", 30)); err != nil {
		t.Errorf("a prefix of 30 letters refused: %v", err)
	}
}

// Brokers starting together each create the schema, which is made once;
// starting again finds it.
func TestSchemaSetupIsIdempotentAndSafeConcurrently(t *testing.T) {
	wstest.CheckGoroutines(t)
	url, prefix := pgURL(t), pgbroker.WithPrefix(uniquePrefix())
	var wg sync.WaitGroup
	brokers := make([]*pgbroker.Broker, 8)
	errs := make([]error, 8)
	for i := range brokers {
		pool := newPool(t, url)
		wg.Add(1)
		go func() {
			defer wg.Done()
			brokers[i], errs[i] = pgbroker.New(context.Background(), pool, prefix)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("broker %d: %v", i, err)
		}
		defer brokers[i].Close()
	}
	a, b := newBroker(t, url, prefix), newBroker(t, url, prefix)
	in := brokertest.NewInbox(64)
	defer brokertest.Subscribe(t, b, "r", in.Deliver)()
	brokertest.Await(t, a, "r", in)
}

// With WithoutSchemaSetup, New refuses a database without the tables,
// and works once the migration has run.
func TestWithoutSchemaSetupNeedsTheMigration(t *testing.T) {
	wstest.CheckGoroutines(t)
	url, name := pgURL(t), uniquePrefix()
	pool := newPool(t, url)
	prefix := pgbroker.WithPrefix(name)
	_, err := pgbroker.New(context.Background(), pool, prefix, pgbroker.WithoutSchemaSetup())
	if err == nil || !strings.Contains(err.Error(), "run the migration") {
		t.Fatalf("New without the tables returned %v, want an error saying to run the migration", err)
	}
	sql, _ := pgbroker.SchemaSQL(name)
	exec(t, pool, sql)
	exec(t, pool, sql) // idempotent
	a := newBroker(t, url, prefix, pgbroker.WithoutSchemaSetup())
	b := newBroker(t, url, prefix, pgbroker.WithoutSchemaSetup())
	in := brokertest.NewInbox(64)
	defer brokertest.Subscribe(t, b, "r", in.Deliver)()
	brokertest.Await(t, a, "r", in)
}

func TestNewRefusesANilPoolAndAnUnreachableServer(t *testing.T) {
	if _, err := pgbroker.New(context.Background(), nil); err == nil {
		t.Fatal("New(nil) succeeded")
	}
	pool := newPool(t, "postgres://nobody@127.0.0.1:1/x?sslmode=disable&connect_timeout=1")
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	if _, err := pgbroker.New(ctx, pool); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("New on a closed port returned %v, want the connection's error", err)
	}
}
