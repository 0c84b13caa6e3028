package wsroom_test

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// The upgrade (upgrade.go) and admission (server.go): what is refused
// before a connection exists, and the connection cap.

func TestNonUpgradeRequestGets426(t *testing.T) {
	_, srv := serve(t, echo)
	resp, err := http.Get(srv.URL + "/ws/lobby")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("status %d, Upgrade %q; want 426 and Upgrade: websocket", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
}

func TestMaxConnectionsRefusesWith503AndRetryAfter(t *testing.T) {
	wstest.CheckGoroutines(t)
	ep, srv := serve(t, echo, wsroom.WithMaxConnections(2))
	wstest.Dial(t, srv.URL+"/ws/lobby")
	wstest.Dial(t, srv.URL+"/ws/lobby")
	req, _ := http.NewRequest("GET", srv.URL+"/ws/lobby", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third upgrade: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if got := ep.Stats().Refused; got != 1 {
		t.Fatalf("Stats.Refused = %d, want 1", got)
	}
}

// TestLimitMaxConnectionsUnderConcurrentDialsAndHostileHolders: the cap
// holds exactly under bursts of concurrent upgrades, while the places are
// taken by hostile clients that hold them silently, until the idle timeout
// takes the places back; every refusal is a 503 with Retry-After, counted
// in Stats.Refused.
func TestLimitMaxConnectionsUnderConcurrentDialsAndHostileHolders(t *testing.T) {
	skipIfShort(t, "arena")
	wstest.CheckGoroutines(t)
	const limit, burst = 10, 60
	const interval, idle = 100 * time.Millisecond, 1500 * time.Millisecond
	a := newArena(t, arenaOptions{}, chatToOut, wsroom.WithMaxConnections(limit), wsroom.WithHeartbeat(interval, idle))
	lobby := func(int) string { return a.url }
	check := func(round string, in []*wstest.Raw, refused []*wstest.Refusal, wantRefused int64) {
		t.Helper()
		if len(in) != limit-1 {
			t.Fatalf("%s: %d of %d concurrent upgrades got in beside the witness, want %d", round, len(in), burst, limit-1)
		}
		for _, r := range refused {
			if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
				t.Fatalf("%s: refused with %d, Retry-After %q; want 503 with Retry-After", round, r.Status, r.Header.Get("Retry-After"))
			}
		}
		if got := a.stats().Refused; got != wantRefused {
			t.Fatalf("%s: Stats.Refused = %d, want %d", round, got, wantRefused)
		}
	}

	// Silent holders take every place left; they answer nothing.
	all, refused := dialMany(t, lobby, burst)
	holders := admitted(all)
	check("holders", holders, refused, burst-limit+1)
	// While they hold, every upgrade is refused.
	more, refused2 := dialMany(t, lobby, burst)
	if n := len(admitted(more)); n != 0 {
		t.Fatalf("%d upgrades got in while the endpoint was full", n)
	}
	check("full", holders, refused2, 2*burst-limit+1)
	// The idle timeout takes the places back: each holder finds its
	// socket closed by the server.
	start := time.Now()
	var wg sync.WaitGroup
	for _, r := range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if e := r.ReadToEnd(wstest.Timeout, 1<<20); e.Err != nil || !e.AfterEOF {
				t.Errorf("a silent holder was not cut off: %v", e.Err)
			}
			r.Close()
		}()
	}
	wg.Wait()
	wstest.WaitFor(t, "the silent holders reclaimed", func() bool { return a.stats().Connections == 1 })
	reclaimed := time.Since(start)
	// Well-behaved clients get exactly the places freed.
	all, refused3 := dialMany(t, lobby, burst)
	good := admitted(all)
	check("after reclaim", good, refused3, 3*burst-2*(limit-1))
	for _, r := range good {
		closeRaw(t, r)
	}
	a.finish()
	t.Logf("limits: cap %d held under 3 bursts of %d concurrent upgrades: %d refused with 503 + Retry-After (Stats.Refused %d); %d silent holders reclaimed after %v",
		limit, burst, 3*burst-2*(limit-1), a.stats().Refused, len(holders), reclaimed.Round(10*time.Millisecond))
}

// dialMany dials n raw clients to url(i) at once and returns those that
// got in (by i, nil for the others), and the refusals.
func dialMany(t *testing.T, url func(i int) string, n int) (byIndex []*wstest.Raw, refused []*wstest.Refusal) {
	t.Helper()
	byIndex = make([]*wstest.Raw, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _, err := wstest.RawDial(url(i), nil)
			var ref *wstest.Refusal
			switch {
			case err == nil:
				byIndex[i] = r
			case errors.As(err, &ref):
				mu.Lock()
				refused = append(refused, ref)
				mu.Unlock()
			default:
				t.Errorf("dial %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return byIndex, refused
}

// admitted returns the clients that got in.
func admitted(byIndex []*wstest.Raw) []*wstest.Raw {
	var in []*wstest.Raw
	for _, r := range byIndex {
		if r != nil {
			in = append(in, r)
		}
	}
	return in
}
