package natsbroker_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/brokertest"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/natsbroker"
)

// natsServer is a real nats-server running in the test process on
// 127.0.0.1, which can be stopped and started again on the same port.
type natsServer struct {
	tb       testing.TB
	srv      *server.Server
	port     int
	storeDir string // JetStream's, kept across restarts; "" without JetStream
}

// newServer starts a server on a free port; it is shut down at cleanup.
func newServer(tb testing.TB) *natsServer {
	tb.Helper()
	ns := &natsServer{tb: tb, port: server.RANDOM_PORT}
	ns.start()
	ns.port = ns.srv.Addr().(*net.TCPAddr).Port
	tb.Cleanup(ns.stop)
	return ns
}

// newJetStreamServer starts a server with JetStream enabled, storing in
// a directory of the test's that outlives restarts.
func newJetStreamServer(tb testing.TB) *natsServer {
	tb.Helper()
	ns := &natsServer{tb: tb, port: server.RANDOM_PORT, storeDir: tb.TempDir()}
	ns.start()
	ns.port = ns.srv.Addr().(*net.TCPAddr).Port
	tb.Cleanup(ns.stop)
	return ns
}

// start runs a new server on ns's port.
func (ns *natsServer) start() {
	ns.tb.Helper()
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      ns.port,
		NoLog:     true,
		NoSigs:    true,
		JetStream: ns.storeDir != "",
		StoreDir:  ns.storeDir,
	})
	if err != nil {
		ns.tb.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(wstest.Timeout) {
		srv.Shutdown()
		ns.tb.Fatal("nats-server not ready within", wstest.Timeout)
	}
	ns.srv = srv
}

// stop shuts the server down and waits until it has.
func (ns *natsServer) stop() {
	if ns.srv == nil {
		return
	}
	ns.srv.Shutdown()
	ns.srv.WaitForShutdown()
	ns.srv = nil
}

func (ns *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", ns.port) }

// connect opens a client connection that reconnects fast and for ever;
// it is closed at cleanup.
func connect(tb testing.TB, url string) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(url,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(10*time.Millisecond),
		nats.ReconnectJitter(0, 0),
	)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// newBroker returns a Broker on nc, closed at cleanup.
func newBroker(tb testing.TB, nc *nats.Conn, opts ...natsbroker.Option) *natsbroker.Broker {
	tb.Helper()
	b, err := natsbroker.New(context.Background(), nc, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := b.Close(); err != nil {
			tb.Error(err)
		}
	})
	return b
}

// pairOn returns brokers standing for two processes: each has its own
// connection to ns.
func pairOn(ns *natsServer) brokertest.Pair {
	return func(t *testing.T) (wsroom.Broker, wsroom.Broker) {
		a, b := natsPair(t, ns)
		return a, b
	}
}

func natsPair(tb testing.TB, ns *natsServer) (a, b *natsbroker.Broker) {
	return newBroker(tb, connect(tb, ns.url())), newBroker(tb, connect(tb, ns.url()))
}
