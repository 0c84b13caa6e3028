package wsroom

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/invopop/jsonschema"
)

// Defaults of an endpoint built without options. They are safe for a public
// server: every limit is on, cross-origin upgrades are refused.
const (
	DefaultReadLimit        = 1 << 20          // largest inbound message, in bytes
	DefaultSendQueueFrames  = 16384            // frames a connection may have queued
	DefaultSendQueueBytes   = 1 << 20          // bytes a connection may have queued
	DefaultWriteTimeout     = 10 * time.Second // longest a single socket write may block
	DefaultPingInterval     = 25 * time.Second // how often the server pings
	DefaultIdleTimeout      = 60 * time.Second // how long a silent peer is kept
	DefaultHandshakeTimeout = 5 * time.Second  // deadline for writing the upgrade response
	DefaultRateLimit        = 1000             // inbound messages per second a connection is served
	DefaultRateBurst        = 1000             // inbound messages a connection may send at once without waiting
)

// An Option configures an Endpoint.
type Option func(*config)

// config holds an endpoint's settings; it does not depend on In or Out.
type config struct {
	guard            Guard
	originPatterns   []string
	readLimit        int
	queueFrames      int
	queueBytes       int
	overflow         OverflowPolicy
	invalid          InvalidPolicy
	errorReply       func(*InvalidMessageError) any
	writeTimeout     time.Duration
	pingInterval     time.Duration
	idleTimeout      time.Duration
	handshakeTimeout time.Duration
	maxConnections   int
	rate             float64 // messages per second; 0: no limit
	burst            int
	ratePolicy       RatePolicy
	logger           *slog.Logger
	reflector        *jsonschema.Reflector
	compress         bool // WithCompression
	compressMin      int  // the smallest payload compressed
}

func newConfig(opts []Option) *config {
	cfg := &config{
		readLimit:        DefaultReadLimit,
		queueFrames:      DefaultSendQueueFrames,
		queueBytes:       DefaultSendQueueBytes,
		writeTimeout:     DefaultWriteTimeout,
		pingInterval:     DefaultPingInterval,
		idleTimeout:      DefaultIdleTimeout,
		handshakeTimeout: DefaultHandshakeTimeout,
		rate:             DefaultRateLimit,
		burst:            DefaultRateBurst,
		errorReply:       defaultErrorReply,
	}
	for _, o := range opts {
		o(cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if cfg.compress && cfg.compressMin == 0 {
		cfg.compressMin = DefaultCompressionThreshold
	}
	if cfg.reflector == nil {
		cfg.reflector = new(jsonschema.Reflector)
	}
	return cfg
}

// validate reports a setting that cannot work.
func (cfg *config) validate() error {
	switch {
	case cfg.readLimit <= 0:
		return fmt.Errorf("wsroom: read limit %d: must be positive", cfg.readLimit)
	case cfg.queueFrames <= 0 || cfg.queueBytes <= 0:
		return fmt.Errorf("wsroom: send queue of %d frames, %d bytes: both must be positive", cfg.queueFrames, cfg.queueBytes)
	case cfg.writeTimeout <= 0:
		return fmt.Errorf("wsroom: write timeout %v: must be positive", cfg.writeTimeout)
	case cfg.handshakeTimeout <= 0:
		return fmt.Errorf("wsroom: handshake timeout %v: must be positive", cfg.handshakeTimeout)
	case cfg.pingInterval > 0 && cfg.idleTimeout <= cfg.pingInterval:
		return fmt.Errorf("wsroom: idle timeout %v must exceed the ping interval %v", cfg.idleTimeout, cfg.pingInterval)
	case cfg.rate < 0 || (cfg.rate > 0 && cfg.burst < 1):
		return fmt.Errorf("wsroom: rate limit %v/s with burst %d: want a positive rate and burst, or rate 0", cfg.rate, cfg.burst)
	case cfg.maxConnections < 0:
		return fmt.Errorf("wsroom: max connections %d: must not be negative", cfg.maxConnections)
	case cfg.compressMin < 0:
		return fmt.Errorf("wsroom: compression threshold %d: must not be negative", cfg.compressMin)
	case cfg.errorReply == nil:
		return fmt.Errorf("wsroom: WithErrorReply(nil)")
	}
	return validatePatterns(cfg.originPatterns)
}

// OverflowPolicy says what happens when a message meets a full send queue.
type OverflowPolicy int

const (
	// OverflowClose closes the connection with StatusPolicyViolation and
	// reason "slow consumer". It is the default: a client that cannot keep
	// up learns it, and no message is lost without a trace.
	OverflowClose OverflowPolicy = iota
	// OverflowDrop drops the message for that connection only and counts it
	// in Stats.Dropped; the connection stays open.
	OverflowDrop
)

// InvalidPolicy says what happens to an inbound message that is not valid
// JSON, does not match the schema of In, or arrives in a binary frame.
type InvalidPolicy int

const (
	// InvalidReply sends the sender alone an error frame (see
	// WithErrorReply), keeps the connection open and never shows the message
	// to the handler. It is the default.
	InvalidReply InvalidPolicy = iota
	// InvalidClose closes the connection with StatusInvalidPayload.
	InvalidClose
	// InvalidYield hands the handler a *InvalidMessageError in the stream;
	// the connection stays open.
	InvalidYield
)

// RatePolicy says what happens to a connection that sends faster than
// its rate limit (WithRateLimit).
type RatePolicy int

const (
	// RateThrottle stops reading the connection until the limit allows its
	// next message, then handles that message: nothing is dropped or
	// reordered and the connection stays open, while the client's further
	// sends wait in its TCP buffers. The server does the work of at most
	// the limit's messages for that client. Each message that waits is
	// counted in Stats.Throttled. While the reader waits, it does not read
	// the client's pings and pongs either: the idle timeout does not run
	// during a wait, and counts from its end. It is the default.
	RateThrottle RatePolicy = iota
	// RateClose closes the connection with StatusPolicyViolation and reason
	// "rate limit exceeded", and counts it in Stats.RateLimited, at the
	// first message past the limit; that message and those after it are
	// not handled.
	RateClose
)

// WithGuard runs g before every upgrade; see Guard.
func WithGuard(g Guard) Option { return func(cfg *config) { cfg.guard = g } }

// WithOriginPatterns allows cross-origin upgrades from hosts matching any of
// the patterns (path.Match syntax against the Origin's host, such as
// "example.com" or "*.example.com"; "*" allows every origin). Without it only
// same-host origins and requests with no Origin header are accepted.
func WithOriginPatterns(patterns ...string) Option {
	return func(cfg *config) {
		for _, p := range patterns {
			cfg.originPatterns = append(cfg.originPatterns, strings.ToLower(p)) // hosts match without case
		}
	}
}

// WithReadLimit sets the largest inbound message in bytes; a larger one
// closes the connection with StatusMessageTooBig. Default DefaultReadLimit.
func WithReadLimit(n int) Option { return func(cfg *config) { cfg.readLimit = n } }

// WithSendQueue bounds each connection's queue of outbound frames by count
// and by bytes (frames being written count until written). A single frame
// larger than the byte bound is accepted only into an empty queue.
// Defaults DefaultSendQueueFrames and DefaultSendQueueBytes.
func WithSendQueue(frames, bytes int) Option {
	return func(cfg *config) { cfg.queueFrames, cfg.queueBytes = frames, bytes }
}

// WithOverflow sets what a full send queue does. Default OverflowClose.
func WithOverflow(p OverflowPolicy) Option { return func(cfg *config) { cfg.overflow = p } }

// WithInvalid sets what an invalid inbound message does. Default InvalidReply.
func WithInvalid(p InvalidPolicy) Option { return func(cfg *config) { cfg.invalid = p } }

// WithErrorReply sets the value sent (encoded as JSON) to a client whose
// message was rejected under InvalidReply. The default reply is
// {"type":"error","error":"<reason>"}.
func WithErrorReply(reply func(*InvalidMessageError) any) Option {
	return func(cfg *config) { cfg.errorReply = reply }
}

// WithWriteTimeout bounds each write to the socket; a client that accepts no
// bytes for that long is disconnected. Default DefaultWriteTimeout.
func WithWriteTimeout(d time.Duration) Option { return func(cfg *config) { cfg.writeTimeout = d } }

// WithHeartbeat makes the server ping every interval and close, with
// StatusGoingAway and reason "idle timeout", a connection from which nothing
// (message, ping or pong) arrived for idle. A zero interval turns both off.
// Defaults DefaultPingInterval and DefaultIdleTimeout. One timer per
// endpoint serves every connection, in eighths of the interval: a
// connection's first ping comes within one interval of its upgrade, and a
// silent peer is closed within one interval past idle.
func WithHeartbeat(interval, idle time.Duration) Option {
	return func(cfg *config) { cfg.pingInterval, cfg.idleTimeout = interval, idle }
}

// WithHandshakeTimeout bounds the writing of the upgrade response.
// Default DefaultHandshakeTimeout.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(cfg *config) { cfg.handshakeTimeout = d }
}

// WithMaxConnections caps the connections open at once on the endpoint;
// upgrades above it are refused with 503 Service Unavailable and a
// Retry-After header. Zero, the default, means no cap.
func WithMaxConnections(n int) Option { return func(cfg *config) { cfg.maxConnections = n } }

// WithRateLimit limits the data messages each connection may send:
// perSecond on average, burst at once (a token bucket). Past it the
// RatePolicy applies: by default the connection is slowed down to the
// limit, not closed (see RateThrottle). Pings and pongs do not count. A
// zero rate turns the limit off. Defaults DefaultRateLimit and
// DefaultRateBurst: generous for people and games, a ceiling on what one
// client can make the server do.
func WithRateLimit(perSecond float64, burst int) Option {
	return func(cfg *config) { cfg.rate, cfg.burst = perSecond, burst }
}

// WithRatePolicy sets what a connection past its rate limit meets.
// Default RateThrottle.
func WithRatePolicy(p RatePolicy) Option { return func(cfg *config) { cfg.ratePolicy = p } }

// WithCompression negotiates permessage-deflate (RFC 7692) with every
// client that offers it, as browsers do, and compresses the messages sent
// to them whose JSON is at least threshold bytes long (0 takes
// DefaultCompressionThreshold; 1 compresses every message), when that makes
// them smaller. A room's publish is compressed once, for all its members
// that negotiated it; the others get the plain frame. The client's
// compressed messages are inflated under the read limit (WithReadLimit),
// which then bounds the inflated size: past it the connection closes with
// StatusMessageTooBig, and with StatusInvalidPayload for data that does not
// inflate. Both sides reset the compression context for each message
// (server_no_context_takeover and client_no_context_takeover), so no
// connection holds compression state between messages. Off by default: it
// trades server CPU for bytes on the wire; see the README.
func WithCompression(threshold int) Option {
	return func(cfg *config) { cfg.compress, cfg.compressMin = true, threshold }
}

// WithLogger sets where the endpoint logs handler panics and errors.
// Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(cfg *config) { cfg.logger = l } }

// WithReflector sets the reflector that derives the JSON Schemas of In and
// Out, to change how struct tags map to the schema (for example
// AllowAdditionalProperties). Default: a zero jsonschema.Reflector, under
// which unknown fields are rejected and fields without omitempty are
// required.
func WithReflector(r *jsonschema.Reflector) Option { return func(cfg *config) { cfg.reflector = r } }

// A RoomsOption configures a Rooms registry.
type RoomsOption func(*roomsConfig)

type roomsConfig struct {
	broker   Broker
	maxRooms int
	// History: on when history is set; zeros take the defaults.
	history      bool
	historySize  int
	historyTTL   time.Duration
	historyBytes int64
	// Presence; zeros take the defaults.
	presenceLease   time.Duration
	presenceEntries int
	presenceBytes   int
}

// WithMaxRooms caps the rooms that may have subscribers at once; a
// subscription that would create one more fails with ErrTooManyRooms.
// Zero, the default, means no cap.
func WithMaxRooms(n int) RoomsOption { return func(cfg *roomsConfig) { cfg.maxRooms = n } }

// WithBroker joins the registry's rooms with the rooms of the same names in
// every process using the same broker.
func WithBroker(b Broker) RoomsOption { return func(cfg *roomsConfig) { cfg.broker = b } }

// WithHistory makes the registry's rooms record what they publish: each
// room keeps its last size recorded messages, each for ttl, and a
// reconnecting client recovers what it missed (see Join and the README's
// recovery protocol). A room's history outlives its last member by ttl.
// Zero size or ttl take DefaultHistorySize and DefaultHistoryTTL. The
// frames kept by all the registry's rooms are bounded by
// DefaultHistoryBytes (see WithHistoryBytes): past it the oldest messages
// of the registry, whatever their room, are dropped first.
//
// NewRooms panics if M has a field that always encodes as "seq" or
// "epoch" (the position takes those names; omitempty fields left zero are
// fine), or if the registry also has a broker that is no HistoryBroker:
// each process would number a room's messages its own way. With a
// HistoryBroker (natsbroker through JetStream, redisbroker, pgbroker) the
// broker keeps the history and gives positions, the same in every process.
func WithHistory(size int, ttl time.Duration) RoomsOption {
	return func(cfg *roomsConfig) {
		cfg.history, cfg.historySize, cfg.historyTTL = true, size, ttl
	}
}

// WithHistoryBytes bounds the frames, in bytes, that all the rooms of a
// registry with history keep; past it the registry's oldest messages are
// dropped first. Default DefaultHistoryBytes. The bound is soft by the
// messages that arrive while the oldest are being dropped. Without
// WithHistory it does nothing.
func WithHistoryBytes(n int64) RoomsOption {
	return func(cfg *roomsConfig) { cfg.historyBytes = n }
}

// WithPresenceLease sets how long a PresenceBroker keeps the registry's
// presence entries without a refresh; the registry refreshes them every
// quarter of it, and claims others' expired entries as often. Default
// DefaultPresenceLease. Every process sharing rooms should use the same
// lease: a shorter one announces a dead process's members sooner, and
// loses the entries of a process cut off from the broker sooner too.
func WithPresenceLease(d time.Duration) RoomsOption {
	return func(cfg *roomsConfig) { cfg.presenceLease = d }
}

// WithPresenceLimits bounds each room's presence in this process: at most
// entries keys present (the connections of a present key are not
// counted), each entry at most entryBytes of key, metadata JSON and leave
// message JSON together. A Join past them fails with ErrPresenceFull or
// ErrPresenceEntryTooLarge, and nobody else notices. Zeros take
// DefaultPresenceEntries and DefaultPresenceEntryBytes.
func WithPresenceLimits(entries, entryBytes int) RoomsOption {
	return func(cfg *roomsConfig) { cfg.presenceEntries, cfg.presenceBytes = entries, entryBytes }
}
