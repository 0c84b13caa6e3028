package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/lxzan/gws"
	"github.com/wsroom/wsroom"
)

// Dial connects to the endpoint at rawURL (ws://, wss://, or http:// and
// https:// for the same) and returns the Conn. It makes one attempt,
// bounded by WithDialTimeout: an error, a refused upgrade among them
// (*UpgradeError), is Dial's. Reconnecting is for connections lost once
// up.
//
// ctx bounds the Conn's whole life, not only the dial: cancelling it
// closes the connection, stops reconnecting and ends the range over
// Messages with ctx's error.
func Dial[Send, Recv any](ctx context.Context, rawURL string, opts ...Option) (*Conn[Send, Recv], error) {
	cfg := newConfig(opts)
	if cfg.compressMin < 0 {
		return nil, fmt.Errorf("client: compression threshold %d: must not be negative", cfg.compressMin)
	}
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	c := &Conn[Send, Recv]{cfg: cfg, url: u, items: make(chan item[Recv], max(cfg.buffer, 1)),
		stopped: make(chan struct{}), last: cfg.resume, given: cfg.resume}
	if cfg.validate || len(cfg.schema) > 0 {
		if c.valid, err = newValidator[Recv](cfg.schema); err != nil {
			return nil, err
		}
	}
	c.ctx, c.cancel = context.WithCancelCause(ctx)
	l, err := c.connect()
	if err != nil {
		c.cancel(ErrClosed)
		return nil, err
	}
	c.start(l)
	go c.run(l)
	return c, nil
}

// parseURL checks rawURL and makes its scheme ws or wss.
func parseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("client: %q: the scheme must be ws, wss, http or https", rawURL)
	}
	return u, nil
}

// connect makes one attempt to connect, resuming after the last recorded
// message received. Its reader is not started.
func (c *Conn[Send, Recv]) connect() (*link, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.dialTimeout)
	defer cancel()
	c.mu.Lock()
	l := &link{from: c.last, done: make(chan struct{})}
	c.mu.Unlock()
	addr := c.address(l)
	nc, err := c.dialNet(ctx)
	if err != nil {
		return nil, err
	}
	// The handshake reads and writes nc: closing it is how ctx, and so
	// the dial timeout, stops it. gws's own timeout is only a backstop.
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	ws, resp, err := gws.NewClientFromConn(&reader[Send, Recv]{c: c, l: l}, &gws.ClientOption{
		Addr:               addr,
		RequestHeader:      c.cfg.header.Clone(),
		HandshakeTimeout:   c.cfg.dialTimeout + time.Second,
		ReadMaxPayloadSize: c.cfg.readLimit,
		CheckUtf8Enabled:   true,
		PermessageDeflate:  c.cfg.deflate(),
	}, nc)
	if !stop() {
		_ = nc.Close()
		return nil, fmt.Errorf("client: upgrade: %w", context.Cause(ctx))
	}
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, upgradeError(resp)
		}
		return nil, fmt.Errorf("client: upgrade: %w", err)
	}
	l.ws = ws
	return l, nil
}

// deflate is the permessage-deflate offer of the upgrade: none, or one
// without context takeover, so that each message is compressed alone.
func (c *config) deflate() gws.PermessageDeflate {
	if !c.compress {
		return gws.PermessageDeflate{}
	}
	return gws.PermessageDeflate{Enabled: true, Threshold: c.compressMin, Level: flate.BestSpeed}
}

// address is the URL of l's upgrade: the Conn's, with the position to
// resume after and the query token.
func (c *Conn[Send, Recv]) address(l *link) string {
	u := *c.url
	q := u.Query()
	if l.from.Epoch != "" {
		q.Set(wsroom.QuerySince, strconv.FormatUint(l.from.Offset, 10))
		q.Set(wsroom.QueryEpoch, l.from.Epoch)
	}
	if c.cfg.queryToken != "" {
		q.Set("token", c.cfg.queryToken)
	}
	l.asked = q.Has(wsroom.QuerySince)
	u.RawQuery = q.Encode()
	return u.String()
}

// dialNet opens the TCP connection, and TLS over it for wss.
func (c *Conn[Send, Recv]) dialNet(ctx context.Context) (net.Conn, error) {
	host := c.url.Host
	if c.url.Port() == "" {
		port := "80"
		if c.url.Scheme == "wss" {
			port = "443"
		}
		host = net.JoinHostPort(c.url.Hostname(), port)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("client: dial: %w", err)
	}
	if c.url.Scheme != "wss" {
		return nc, nil
	}
	cfg := &tls.Config{}
	if c.cfg.tls != nil {
		cfg = c.cfg.tls.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = c.url.Hostname()
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("client: TLS: %w", err)
	}
	return tc, nil
}

// upgradeError is the error of a refused upgrade.
func upgradeError(resp *http.Response) *UpgradeError {
	e := &UpgradeError{Status: resp.StatusCode}
	if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}
