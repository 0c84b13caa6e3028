package client

import (
	"crypto/tls"
	"net/http"
	"time"

	"github.com/wsroom/wsroom"
)

// The defaults of a Conn's options.
const (
	DefaultReadLimit    = 1 << 20          // a larger message ends the Conn (1009)
	DefaultDialTimeout  = 10 * time.Second // TCP, TLS and the upgrade, per attempt
	DefaultWriteTimeout = 10 * time.Second // per Send
	DefaultPingInterval = 25 * time.Second // as the server's heartbeat
	DefaultIdleTimeout  = 60 * time.Second // silence after which the connection is dropped and redialled
	DefaultBackoffMin   = 500 * time.Millisecond
	DefaultBackoffMax   = 30 * time.Second
	DefaultBuffer       = 1024 // received messages held for the range before reading stops
)

// An Option changes how Dial connects and how the Conn behaves.
type Option func(*config)

type config struct {
	header       http.Header
	queryToken   string
	tls          *tls.Config
	readLimit    int
	dialTimeout  time.Duration
	writeTimeout time.Duration
	pingInterval time.Duration
	idleTimeout  time.Duration
	backoffMin   time.Duration
	backoffMax   time.Duration
	maxAttempts  int
	buffer       int
	status       func(Status)
	resume       wsroom.Position
	validate     bool   // reflect Recv's schema
	schema       []byte // or validate against this one
	compress     bool   // offer permessage-deflate
	compressMin  int    // the smallest message compressed
}

func newConfig(opts []Option) *config {
	c := &config{
		header: http.Header{}, readLimit: DefaultReadLimit,
		dialTimeout: DefaultDialTimeout, writeTimeout: DefaultWriteTimeout,
		pingInterval: DefaultPingInterval, idleTimeout: DefaultIdleTimeout,
		backoffMin: DefaultBackoffMin, backoffMax: DefaultBackoffMax, buffer: DefaultBuffer,
	}
	for _, o := range opts {
		o(c)
	}
	if c.compress && c.compressMin == 0 {
		c.compressMin = wsroom.DefaultCompressionThreshold
	}
	return c
}

// WithToken sends "Authorization: Bearer token" with every upgrade, as
// wsroom.RequireToken reads it.
func WithToken(token string) Option { return WithHeader("Authorization", "Bearer "+token) }

// WithQueryToken puts the token in the upgrade URL's token parameter
// instead, as browsers must; wsroom.RequireToken reads it there too. The
// header is the better place: URLs reach proxies' logs.
func WithQueryToken(token string) Option { return func(c *config) { c.queryToken = token } }

// WithOrigin sends the Origin header, for a server that checks it
// (wsroom.WithOriginPatterns). Without it the client sends none, which a
// wsroom endpoint allows, as it allows every client that is not a browser.
func WithOrigin(origin string) Option { return WithHeader("Origin", origin) }

// WithHeader adds a header to every upgrade request.
func WithHeader(key, value string) Option { return func(c *config) { c.header.Add(key, value) } }

// WithTLSConfig sets the TLS configuration of wss:// URLs.
func WithTLSConfig(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// WithReadLimit sets the largest message the client reads, in bytes; a
// larger one ends the Conn with 1009, since the server would replay it on
// every reconnect. Default DefaultReadLimit (1 MiB), as the server's.
func WithReadLimit(bytes int) Option { return func(c *config) { c.readLimit = bytes } }

// WithDialTimeout bounds each attempt to connect: TCP, TLS and the
// upgrade. Default DefaultDialTimeout.
func WithDialTimeout(d time.Duration) Option { return func(c *config) { c.dialTimeout = d } }

// WithWriteTimeout bounds each Send's write. Default DefaultWriteTimeout.
func WithWriteTimeout(d time.Duration) Option { return func(c *config) { c.writeTimeout = d } }

// WithHeartbeat makes the client ping the server every interval and drop
// (then redial) a connection from which nothing at all, pongs included,
// arrived for timeout. Defaults DefaultPingInterval and DefaultIdleTimeout,
// the server's: a half-open connection is found within a minute.
func WithHeartbeat(interval, timeout time.Duration) Option {
	return func(c *config) { c.pingInterval, c.idleTimeout = interval, timeout }
}

// WithBackoff sets the reconnection delays: the nth in a row is drawn
// uniformly from 0 to min(max, min·2ⁿ⁻¹) (full jitter, so that the
// clients of a restarted server do not come back at once). The count
// starts again only once a connection has stayed up for max: a server
// that closes connections as soon as they open is retried ever more
// slowly, not hammered. Defaults DefaultBackoffMin and DefaultBackoffMax.
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) { c.backoffMin, c.backoffMax = min, max }
}

// WithMaxAttempts ends the Conn with a *GaveUpError after n attempts in a
// row fail; a connection that is up starts the count again. Default 0:
// attempts go on until the context is cancelled or Close is called.
func WithMaxAttempts(n int) Option { return func(c *config) { c.maxAttempts = n } }

// WithStatus sets the callback told of each Status: reconnecting,
// reconnected, recovered, not recovered. It is called from the goroutine
// that ranges over Messages, between two messages, in stream order; a
// Status waits for a range, as messages do.
func WithStatus(f func(Status)) Option { return func(c *config) { c.status = f } }

// WithPosition makes the first connection ask to resume after pos, a
// position a previous Conn's Position returned: a process that restarts
// picks up where it was.
func WithPosition(pos wsroom.Position) Option { return func(c *config) { c.resume = pos } }

// WithBuffer sets how many received messages the Conn holds for the range
// before it stops reading the socket (the server then sees a slow
// consumer). Default DefaultBuffer.
func WithBuffer(messages int) Option { return func(c *config) { c.buffer = messages } }

// WithValidation validates each received message against the JSON Schema
// of Recv, reflected as a wsroom endpoint reflects Out by default (unknown
// fields refused, fields without omitempty required, formats checked). A
// message that breaks it is yielded as an *InvalidMessageError. The
// position fields of recorded messages are not part of what is validated.
func WithValidation() Option { return func(c *config) { c.validate = true } }

// WithSchema validates each received message against schema instead,
// typically the endpoint's own Out schema (wsroom's Endpoint.Schemas, or
// its AsyncAPI document's).
func WithSchema(schema []byte) Option { return func(c *config) { c.schema = schema } }

// WithCompression offers permessage-deflate (RFC 7692) with every upgrade,
// without context takeover on either side, as a wsroom endpoint with
// wsroom.WithCompression answers. Once the server accepts, the client
// compresses each message it sends of at least threshold bytes (0 means
// wsroom.DefaultCompressionThreshold; 1 compresses every message; a
// negative threshold is Dial's error) and inflates the compressed messages
// it receives, with the read limit (WithReadLimit) applied to the inflated
// size: a message that inflates past it ends the Conn with 1009, and one
// that does not inflate with 1007. A server that does not enable
// compression declines the offer, and the Conn works as without it. Each
// message is compressed on its own, so no window is kept between messages,
// but a connection that negotiated compression holds a compressor and a
// decompressor for its life. Off by default. Do not compress a message
// that holds both a secret and text an attacker chooses: its compressed
// size tells whether the two share bytes (see SECURITY.md).
func WithCompression(threshold int) Option {
	return func(c *config) { c.compress, c.compressMin = true, threshold }
}
