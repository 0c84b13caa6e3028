package pgbroker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wsroom/wsroom/pgbroker"
)

// An option that cannot work is New's error, before New tries the
// server: the pool here points at a closed port.
func TestNewRefusesInvalidOptions(t *testing.T) {
	pool := newPool(t, "postgres://nobody@127.0.0.1:1/x?sslmode=disable&connect_timeout=1")
	for name, o := range map[string]pgbroker.Option{
		"publish timeout 0":   pgbroker.WithPublishTimeout(0),
		"publish timeout -1s": pgbroker.WithPublishTimeout(-time.Second),
		"health check 0":      pgbroker.WithHealthCheck(0),
		"health check -1s":    pgbroker.WithHealthCheck(-time.Second),
		"history size 0":      pgbroker.WithHistory(0, time.Minute),
		"history size -1":     pgbroker.WithHistory(-1, time.Minute),
		"history ttl 0":       pgbroker.WithHistory(10, 0),
		"history ttl -1s":     pgbroker.WithHistory(10, -time.Second),
		"prefix empty":        pgbroker.WithPrefix(""),
	} {
		_, err := pgbroker.New(context.Background(), pool, o)
		if err == nil || !strings.Contains(err.Error(), "pgbroker: ") || strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("%s: New returned %v, want the option refused before any connection", name, err)
		}
	}
}
