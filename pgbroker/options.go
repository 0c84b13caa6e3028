package pgbroker

import (
	"fmt"
	"time"
)

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

// WithPublishTimeout bounds how long Publish, Record and the presence
// calls wait for PostgreSQL; three calls in a row that time out, while
// nothing else is answered, open the breaker (see "Failing fast" in the
// package doc). It must be positive (New fails otherwise); the default is
// DefaultPublishTimeout.
func WithPublishTimeout(d time.Duration) Option {
	return func(c *config) { c.publishTimeout = d }
}

// WithHealthCheck sets how long the listening connection may stay silent
// before it is probed, and how long the probe, or an attempt to connect,
// may take before the connection is replaced. It must be positive (New
// fails otherwise); the default is DefaultHealthCheck.
func WithHealthCheck(interval time.Duration) Option {
	return func(c *config) { c.healthCheck = interval }
}

// WithHistory sets how much of the log every Broker keeps: each room's
// latest size records, and as many publishes, none older than ttl. Both
// must be positive (New fails otherwise); the defaults are DefaultLogLen
// and DefaultLogAge. The records are the rooms' history (History): give
// it at least what wsroom.WithHistory asks for. The publishes are what a
// listener that was away catches up on: one away longer than ttl, or
// that missed more than size, loses the publishes trimmed meanwhile
// (Stats.Missed), and gives a room whose records it lost a new epoch
// (Stats.Gaps). Each Broker trims the log every ttl/10 (at least every
// minute, at most every second).
func WithHistory(size int, ttl time.Duration) Option {
	return func(c *config) { c.logLen, c.logAge = int64(size), ttl }
}

// check returns why c is not a valid configuration, or nil.
func (c *config) check() error {
	if err := checkPrefix(c.prefix); err != nil {
		return err
	}
	switch {
	case c.publishTimeout <= 0:
		return fmt.Errorf("pgbroker: publish timeout %v is not positive", c.publishTimeout)
	case c.healthCheck <= 0:
		return fmt.Errorf("pgbroker: health-check interval %v is not positive", c.healthCheck)
	case c.logLen <= 0 || c.logAge <= 0:
		return fmt.Errorf("pgbroker: history of %d messages for %v: both must be positive", c.logLen, c.logAge)
	}
	return nil
}
