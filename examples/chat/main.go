// Command chat is wsroom's reference application: chat rooms in the
// browser, a Go port of the JustScale WebSocket chat.
//
//	go run ./examples/chat                 # http://localhost:3000
//	go run ./examples/chat -token secret   # upgrades need ?token=secret
//	go run ./examples/chat -metrics        # Prometheus metrics at /metrics
//
// Several instances form one chat through a broker:
//
//	go run ./examples/chat -addr :3000 -redis redis://localhost:6379
//	go run ./examples/chat -addr :3001 -redis redis://localhost:6379
//	(or -postgres postgres://user@localhost:5432/db, or -nats nats://localhost:4222)
//
// Rooms keep a history, the last 1,000 events of each for 5 minutes, so
// that a member who reconnects recovers what it missed: in-process without
// a broker, in Redis with -redis, in PostgreSQL with -postgres, in a
// JetStream stream with -nats (the server runs with JetStream: nats-server -js).
//
// The WebSocket contract, also served as an AsyncAPI 3.0 document at
// /asyncapi.json: GET /chat/room/{roomId}?username=NAME upgrades, and
// ?username=NAME&since=SEQ&epoch=EPOCH reconnects after the last event
// seen; clients send {"type":"message"|"typing","content"?:string}; every
// member receives {"seq":N,"epoch":E,"type":"message"|"joined"|"left",
// "username":...,"content"?:...,"timestamp":...} (seq and epoch on the
// recorded events, when rooms keep a history; "left" has no timestamp) and
// {"type":"typing",...} (never recorded). Right after its own "joined" a
// member alone receives {"type":"presence","users":[{"username":NAME,
// "connections":N},...]}, who is in the room on every instance, sorted by
// username; GET /chat/room/{roomId}/presence answers {"users":[...]} (and
// "partial":true, with this instance's members, while the broker cannot
// be read). A reconnection first receives
// {"type":"recovery","recovered":true|false,"epoch":E,"missed":N}, then,
// if recovered, the N events it missed. The sender alone receives
// {"type":"error","error":"<reason>"} for a message that was invalid, or
// that did not reach every member while the broker was down.
package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/wsroom/wsroom"
)

// origins collects the repeatable -origin flag.
type origins []string

func (o *origins) String() string     { return "" }
func (o *origins) Set(v string) error { *o = append(*o, v); return nil }

func main() {
	addr := flag.String("addr", ":3000", "listen address, HOST:PORT")
	token := flag.String("token", "", "require this token (Authorization: Bearer, or ?token=) to connect")
	var allowed origins
	flag.Var(&allowed, "origin", "also allow WebSocket upgrades from pages on this host pattern (repeatable), such as *.example.com")
	natsURL := flag.String("nats", "", "join rooms with other instances through this NATS server, nats://HOST:PORT, with JetStream enabled; rooms keep their history in a JetStream stream")
	redisURL := flag.String("redis", "", "join rooms with other instances through this Redis server, redis://HOST:PORT; rooms keep their history there")
	postgresURL := flag.String("postgres", "", "join rooms with other instances through this PostgreSQL database, postgres://USER@HOST:PORT/DB?sslmode=disable; rooms keep their history there")
	var bc brokerConfig
	flag.DurationVar(&bc.wait, "broker-wait", 5*time.Second, "how long start-up waits for the broker to answer")
	flag.BoolVar(&bc.required, "broker-required", false, "exit if the broker does not answer within -broker-wait (default: start anyway, rooms local until it answers)")
	withMetrics := flag.Bool("metrics", false, "serve Prometheus metrics at /metrics")
	lease := flag.Duration("presence-lease", wsroom.DefaultPresenceLease, "how long the broker keeps a member of an instance that stopped renewing it; a killed instance's members are announced gone 0.75 to 1.25 leases after its death (every instance should use the same)")
	flag.Parse()
	bc.natsURL, bc.redisURL, bc.postgresURL = *natsURL, *redisURL, *postgresURL

	if err := run(*addr, *token, allowed, bc, *withMetrics, *lease); err != nil {
		slog.Error("chat", "error", err)
		os.Exit(1)
	}
}

func run(addr, token string, allowed []string, bc brokerConfig, withMetrics bool, lease time.Duration) error {
	opts := []wsroom.Option{wsroom.WithOriginPatterns(allowed...), wsroom.WithCompression(0)}
	var guard wsroom.Guard
	if token != "" {
		guard = wsroom.RequireToken(sameToken(token))
		opts = append(opts, wsroom.WithGuard(guard))
	}
	broker, closeBroker, err := connectBroker(bc)
	if err != nil {
		return err
	}
	defer closeBroker()
	rooms := newRooms(broker, wsroom.WithPresenceLease(lease))
	ep := wsroom.New(chat(rooms), opts...)

	doc, err := contract(ep, token != "")
	if err != nil {
		return err
	}
	var metricsHandler http.Handler
	if withMetrics {
		metricsHandler = metrics(ep, rooms)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: routes(ep, presenceHandler(rooms, guard), doc, metricsHandler), ReadHeaderTimeout: 10 * time.Second}

	// Catch signals before announcing the address: a signal sent as soon as
	// a supervisor sees the announcement must still shut down cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	slog.Info("chat listening", "url", browserURL(ln.Addr()))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}

	// Close every WebSocket with 1001 and stop serving HTTP, within 5 s.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Shutdown(shutdownCtx) }()
	wsErr := ep.Shutdown(shutdownCtx)
	if err := <-httpDone; err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if wsErr != nil {
		slog.Warn("chat: connections still closing at exit", "error", wsErr)
	}
	slog.Info("chat stopped")
	return nil
}

// browserURL is the URL a person can open for the listening address: an
// address on all interfaces ("[::]:3000") is reached at localhost.
func browserURL(a net.Addr) string {
	host, port := a.String(), ""
	if ta, ok := a.(*net.TCPAddr); ok {
		host, port = ta.IP.String(), strconv.Itoa(ta.Port)
		if ta.IP.IsUnspecified() {
			host = "localhost"
		}
		host = net.JoinHostPort(host, port)
	}
	return "http://" + host
}

// sameToken verifies a token against the expected one in constant time.
func sameToken(want string) func(context.Context, string) (context.Context, error) {
	return func(ctx context.Context, got string) (context.Context, error) {
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return nil, wsroom.ErrUnauthorized
		}
		return ctx, nil
	}
}
