package wsroom

import "sync/atomic"

// Stats is a snapshot of an endpoint's counters. Totals count from the
// endpoint's creation. A close is counted before its close frame is sent, and
// a rejection before its reply: a client that has seen the event finds it
// counted.
type Stats struct {
	Connections        int64 // open now
	Accepted           int64 // upgrades completed
	Refused            int64 // upgrades refused with 503 (shutting down, or WithMaxConnections reached)
	MessagesIn         int64 // data messages received
	MessagesOut        int64 // frames written: messages, error replies, pings and pongs
	BytesIn            int64 // payload bytes of the data messages received
	BytesOut           int64 // bytes written, frame headers included
	Rejected           int64 // inbound messages rejected as invalid
	SlowConsumerCloses int64 // connections closed because their send queue overflowed or a write timed out
	Dropped            int64 // messages dropped on a full queue under OverflowDrop
	RateLimited        int64 // connections closed for sending past the rate limit (RateClose)
	Throttled          int64 // inbound messages that waited for the rate limit (RateThrottle), counted as the wait starts
}

// counters are the live values behind Stats.
type counters struct {
	connections, accepted, refused        atomic.Int64
	messagesIn, messagesOut               atomic.Int64
	bytesIn, bytesOut                     atomic.Int64
	rejected, slowConsumerCloses, dropped atomic.Int64
	rateLimited, throttled                atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Connections:        c.connections.Load(),
		Accepted:           c.accepted.Load(),
		Refused:            c.refused.Load(),
		MessagesIn:         c.messagesIn.Load(),
		MessagesOut:        c.messagesOut.Load(),
		BytesIn:            c.bytesIn.Load(),
		BytesOut:           c.bytesOut.Load(),
		Rejected:           c.rejected.Load(),
		SlowConsumerCloses: c.slowConsumerCloses.Load(),
		Dropped:            c.dropped.Load(),
		RateLimited:        c.rateLimited.Load(),
		Throttled:          c.throttled.Load(),
	}
}

// countSlowConsumer counts a connection closed as a slow consumer.
func (c *counters) countSlowConsumer() { c.slowConsumerCloses.Add(1) }

// countRateLimited counts a connection closed past the rate limit.
func (c *counters) countRateLimited() { c.rateLimited.Add(1) }
