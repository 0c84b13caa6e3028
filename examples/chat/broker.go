package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/natsbroker"
	"github.com/wsroom/wsroom/redisbroker"
)

// connectBroker connects to the broker the flags name, if any, and returns
// it with the func that disconnects it.
func connectBroker(natsURL, redisURL string) (wsroom.Broker, func(), error) {
	switch {
	case natsURL != "" && redisURL != "":
		return nil, nil, errors.New("give -nats or -redis, not both")
	case natsURL != "":
		// Reconnect for ever: a broker outage must not leave rooms local.
		nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
			nats.RetryOnFailedConnect(true))
		if err != nil {
			return nil, nil, fmt.Errorf("nats: %w", err)
		}
		b, err := natsbroker.New(nc)
		if err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("nats: %w", err)
		}
		return b, func() { _ = b.Close(); nc.Close() }, nil
	case redisURL != "":
		opt, err := redis.ParseURL(redisURL)
		if err != nil {
			return nil, nil, fmt.Errorf("redis: %w", err)
		}
		opt.ContextTimeoutEnabled = true // publishes honour the broker's timeout
		client := redis.NewClient(opt)
		b := redisbroker.New(client)
		return b, func() { _ = b.Close(); _ = client.Close() }, nil
	}
	return nil, func() {}, nil
}
