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
	natsURL, redisURL, postgresURL string
	wait                           time.Duration // how long start-up waits for the broker to answer
	required                       bool          // exit when it does not
}

// connected is a broker the chat has a client for, not necessarily
// reached yet.
type connected struct {
	b       wsroom.Broker
	close   func()
	reached func(context.Context) error // waits until the broker answers
	kind    string
	url     string
	prefix  string
}

// connectBroker connects to the broker the flags name, if any, and returns
// it with the func that disconnects it. It logs which broker and prefix the
// rooms use, whether they keep a history, and says plainly when the broker
// does not answer at start-up: then it fails if the broker is required,
// and otherwise starts anyway, the client retrying for ever (rooms are
// local until the broker answers).
func connectBroker(bc brokerConfig) (wsroom.Broker, func(), error) {
	given := 0
	for _, u := range []string{bc.natsURL, bc.redisURL, bc.postgresURL} {
		if u != "" {
			given++
		}
	}
	var (
		c   *connected
		err error
	)
	switch {
	case given > 1:
		return nil, nil, errors.New("give one of -nats, -redis and -postgres, not several")
	case bc.natsURL != "":
		c, err = connectNATS(bc.natsURL)
	case bc.redisURL != "":
		c, err = connectRedis(bc.redisURL)
	case bc.postgresURL != "":
		c, err = connectPostgres(bc.postgresURL)
	default:
		slog.Info("no broker: rooms are local to this instance, with history (-nats, -redis or -postgres joins instances)")
		return nil, func() {}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	_, history := c.b.(wsroom.HistoryBroker)
	_, presence := c.b.(wsroom.PresenceBroker)
	slog.Info("broker", "broker", c.kind, "url", c.url, "prefix", c.prefix, "history", history, "presence", presence)
	ctx, cancel := context.WithTimeout(context.Background(), bc.wait)
	defer cancel()
	if err := c.reached(ctx); err != nil {
		if ctx.Err() != nil {
			err = whyUnreachable(c.url, err)
		}
		slog.Error("broker unreachable at start-up", "broker", c.kind, "url", c.url, "waited", bc.wait, "error", err)
		if bc.required {
			c.close()
			return nil, nil, fmt.Errorf("%s broker at %s unreachable (-broker-required)", c.kind, c.url)
		}
		slog.Warn("starting anyway: rooms stay local to this instance until the broker answers; retrying in the background", "broker", c.kind)
	}
	return c.b, c.close, nil
}

// connectNATS is the client of -nats: it reconnects for ever.
func connectNATS(url string) (*connected, error) {
	const kind = "nats"
	up := make(chan struct{}, 1)
	// Reconnect for ever: a broker outage must not leave rooms local.
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(true),
		nats.ConnectHandler(func(*nats.Conn) {
			select {
			case up <- struct{}{}:
			default:
			}
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			slog.Warn("broker disconnected: messages stay on this instance until it is back", "broker", kind, "url", url, "error", err)
		}),
		nats.ReconnectHandler(func(*nats.Conn) { slog.Info("broker reconnected", "broker", kind, "url", url) }))
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	nb, err := natsbroker.New(context.Background(), nc, natsbroker.WithPresence())
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: %w", err)
	}
	reached := func(ctx context.Context) error {
		if nc.IsConnected() {
			return nil
		}
		select {
		case <-up:
			return nil
		case <-ctx.Done():
			if err := nc.LastError(); err != nil {
				return err
			}
			return ctx.Err()
		}
	}
	return &connected{b: nb, close: func() { _ = nb.Close(); nc.Close() }, reached: reached,
		kind: kind, url: url, prefix: natsbroker.DefaultPrefix}, nil
}

// connectRedis is the client of -redis, whose rooms keep their history in
// Redis with wsroom's defaults.
func connectRedis(url string) (*connected, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	opt.ContextTimeoutEnabled = true // publishes honour the broker's timeout
	client := redis.NewClient(opt)
	rb, err := redisbroker.New(context.Background(), client, redisbroker.WithHistory(wsroom.DefaultHistorySize, wsroom.DefaultHistoryTTL))
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	return &connected{b: rb, close: func() { _ = rb.Close(); _ = client.Close() },
		reached: func(ctx context.Context) error { return client.Ping(ctx).Err() },
		kind:    "redis", url: url, prefix: redisbroker.DefaultPrefix}, nil
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
