package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	neturl "net/url"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/natsbroker"
	"github.com/wsroom/wsroom/redisbroker"
)

// brokerConfig is what the flags say about the broker.
type brokerConfig struct {
	natsURL, redisURL string
	wait              time.Duration // how long start-up waits for the broker to answer
	required          bool          // exit when it does not
}

// connectBroker connects to the broker the flags name, if any, and returns
// it with the func that disconnects it. It logs which broker and prefix the
// rooms use, and says plainly when the broker does not answer at start-up:
// then it fails if the broker is required, and otherwise starts anyway, the
// client retrying for ever (rooms are local until the broker answers).
func connectBroker(bc brokerConfig) (wsroom.Broker, func(), error) {
	var (
		b       wsroom.Broker
		closeB  func()
		reached func(context.Context) error
		kind    string
		url     string
		prefix  string
	)
	switch {
	case bc.natsURL != "" && bc.redisURL != "":
		return nil, nil, errors.New("give -nats or -redis, not both")
	case bc.natsURL != "":
		kind, url, prefix = "nats", bc.natsURL, natsbroker.DefaultPrefix
		connected := make(chan struct{}, 1)
		// Reconnect for ever: a broker outage must not leave rooms local.
		nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
			nats.RetryOnFailedConnect(true),
			nats.ConnectHandler(func(*nats.Conn) {
				select {
				case connected <- struct{}{}:
				default:
				}
			}),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				slog.Warn("broker disconnected: messages stay on this instance until it is back", "broker", kind, "url", url, "error", err)
			}),
			nats.ReconnectHandler(func(*nats.Conn) { slog.Info("broker reconnected", "broker", kind, "url", url) }))
		if err != nil {
			return nil, nil, fmt.Errorf("nats: %w", err)
		}
		nb, err := natsbroker.New(nc)
		if err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("nats: %w", err)
		}
		b, closeB = nb, func() { _ = nb.Close(); nc.Close() }
		reached = func(ctx context.Context) error {
			if nc.IsConnected() {
				return nil
			}
			select {
			case <-connected:
				return nil
			case <-ctx.Done():
				if err := nc.LastError(); err != nil {
					return err
				}
				return ctx.Err()
			}
		}
	case bc.redisURL != "":
		kind, url, prefix = "redis", bc.redisURL, redisbroker.DefaultPrefix
		opt, err := redis.ParseURL(url)
		if err != nil {
			return nil, nil, fmt.Errorf("redis: %w", err)
		}
		opt.ContextTimeoutEnabled = true // publishes honour the broker's timeout
		client := redis.NewClient(opt)
		rb := redisbroker.New(client)
		b, closeB = rb, func() { _ = rb.Close(); _ = client.Close() }
		reached = func(ctx context.Context) error { return client.Ping(ctx).Err() }
	default:
		slog.Info("no broker: rooms are local to this instance (-nats or -redis joins instances)")
		return nil, func() {}, nil
	}

	slog.Info("broker", "broker", kind, "url", url, "prefix", prefix)
	ctx, cancel := context.WithTimeout(context.Background(), bc.wait)
	defer cancel()
	if err := reached(ctx); err != nil {
		if ctx.Err() != nil {
			err = whyUnreachable(url, err)
		}
		slog.Error("broker unreachable at start-up", "broker", kind, "url", url, "waited", bc.wait, "error", err)
		if bc.required {
			closeB()
			return nil, nil, fmt.Errorf("%s broker at %s unreachable (-broker-required)", kind, url)
		}
		slog.Warn("starting anyway: rooms stay local to this instance until the broker answers; retrying in the background", "broker", kind)
	}
	return b, closeB, nil
}

// whyUnreachable says why a broker that did not answer in time did not: a
// client library that retries only reports its deadline, while a person
// needs "connection refused" or "no such host".
func whyUnreachable(url string, timedOut error) error {
	u, err := neturl.Parse(url)
	if err != nil || u.Host == "" {
		return timedOut
	}
	conn, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		return err
	}
	_ = conn.Close()
	return fmt.Errorf("%s accepts connections but did not answer as a broker: %w", u.Host, timedOut)
}
