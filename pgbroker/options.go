package pgbroker

import "time"

// Defaults of the options.
const (
	DefaultPrefix         = "wsroom"
	DefaultPublishTimeout = time.Second
	DefaultHealthCheck    = 5 * time.Second
	// DefaultLogLen is how many of a room's latest messages the log
	// keeps, of its publishes and of its records each: at least
	// wsroom.DefaultHistorySize.
	DefaultLogLen = 1000
	// DefaultLogAge is how long the log keeps a message: at least
	// wsroom.DefaultHistoryTTL.
	DefaultLogAge = 10 * time.Minute
)

// An Option configures a Broker.
type Option func(*config)

type config struct {
	prefix         string
	setup          bool
	publishTimeout time.Duration
	healthCheck    time.Duration
	logLen         int64
	logAge         time.Duration
}

func defaults() config {
	return config{
		prefix:         DefaultPrefix,
		setup:          true,
		publishTimeout: DefaultPublishTimeout,
		healthCheck:    DefaultHealthCheck,
		logLen:         DefaultLogLen,
		logAge:         DefaultLogAge,
	}
}

// WithPrefix sets the prefix of the Broker's tables ("<prefix>_rooms",
// "<prefix>_log", "<prefix>_presence") and channels ("<prefix>_<room
// key>"). Processes share rooms when they use the same prefix on the same
// database. A prefix is a lowercase ASCII letter followed by at most 29
// lowercase letters, digits or '_'; New refuses any other. The default is DefaultPrefix.
func WithPrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// WithoutSchemaSetup makes New check that the tables exist instead of
// creating them: for a database whose schema is managed by migrations
// (run SchemaSQL's text, or schema.sql for the default prefix), or whose
// application role may not create tables.
func WithoutSchemaSetup() Option { return func(c *config) { c.setup = false } }

// WithPublishTimeout bounds how long Publish waits for PostgreSQL (default
// one second; values of zero or less keep the default).
func WithPublishTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.publishTimeout = d
		}
	}
}

// WithHealthCheck sets how long the listening connection may stay silent
// before it is probed, and how long the probe, or an attempt to connect,
// may take before the connection is replaced (default five seconds;
// values of zero or less keep the default).
func WithHealthCheck(interval time.Duration) Option {
	return func(c *config) {
		if interval > 0 {
			c.healthCheck = interval
		}
	}
}

// WithRetention sets how much of the log every Broker keeps: each room's
// latest maxLen publishes and maxLen records, none older than maxAge
// (defaults DefaultLogLen and DefaultLogAge; values of zero or less keep
// the default). It is also the rooms' history (History): give it at least
// what wsroom.WithHistory asks for. A listener that was away longer than
// that, or missed more, loses the publishes trimmed meanwhile
// (Stats.Missed), and gives a room whose records it lost a new epoch
// (Stats.Restarts). Each Broker trims the log every
// maxAge/10 (at least every minute, at most every second).
func WithRetention(maxLen int, maxAge time.Duration) Option {
	return func(c *config) {
		if maxLen > 0 {
			c.logLen = int64(maxLen)
		}
		if maxAge > 0 {
			c.logAge = maxAge
		}
	}
}
