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
	BytesIn            int64 // payload bytes of the data messages received, as sent (compressed, if they were)
	BytesOut           int64 // bytes written, frame headers included
	Rejected           int64 // inbound messages rejected as invalid
	SlowConsumerCloses int64 // connections closed because their send queue overflowed or a write timed out
	Dropped            int64 // messages dropped on a full queue under OverflowDrop
	RateLimited        int64 // connections closed for sending past the rate limit (RateClose)
	Throttled          int64 // inbound messages that waited for the rate limit (RateThrottle), counted as the wait starts
	Compressed         int64 // frames queued compressed (WithCompression), one per connection served; counted as a write takes them
	CompressionSaved   int64 // bytes those frames saved against their plain form
}

// counters are the live values behind Stats.
type counters struct {
	connections, accepted, refused atomic.Int64
	messagesIn, bytesIn            atomic.Int64
	// Added to together by the writers: on one cache line, mostly.
	messagesOut, bytesOut, compressed, compressionSaved atomic.Int64
	rejected, slowConsumerCloses, dropped               atomic.Int64
	rateLimited, throttled                              atomic.Int64
}

func (n *counters) snapshot() Stats {
	return Stats{
		Connections:        n.connections.Load(),
		Accepted:           n.accepted.Load(),
		Refused:            n.refused.Load(),
		MessagesIn:         n.messagesIn.Load(),
		MessagesOut:        n.messagesOut.Load(),
		BytesIn:            n.bytesIn.Load(),
		BytesOut:           n.bytesOut.Load(),
		Rejected:           n.rejected.Load(),
		SlowConsumerCloses: n.slowConsumerCloses.Load(),
		Dropped:            n.dropped.Load(),
		RateLimited:        n.rateLimited.Load(),
		Throttled:          n.throttled.Load(),
		Compressed:         n.compressed.Load(),
		CompressionSaved:   n.compressionSaved.Load(),
	}
}

// countSlowConsumer counts a connection closed as a slow consumer.
func (n *counters) countSlowConsumer() { n.slowConsumerCloses.Add(1) }

// countRateLimited counts a connection closed past the rate limit.
func (n *counters) countRateLimited() { n.rateLimited.Add(1) }

// RoomsStats is a snapshot of a registry's counters.
type RoomsStats struct {
	Rooms           int64 // rooms with subscribers now (or first ones waiting for the broker)
	BrokerErrors    int64 // publishes the broker did not take (Publish returned ErrBroker; Join's announcement)
	RemoteDelivered int64 // messages from other processes handed to local subscribers
	RemoteInvalid   int64 // messages from other processes dropped: not valid UTF-8 JSON, or not an M
	Refused         int64 // subscriptions refused with ErrTooManyRooms
	Recorded        int64 // messages recorded in the rooms' histories (WithHistory)
	HistoryBytes    int64 // bytes of the frames the histories keep now
	Recovered       int64 // members that asked to recover and were given all they missed
	NotRecovered    int64 // members that asked to recover and could not be: another epoch, or more missed than is kept
	Present         int64 // presence entries of this process now (members that joined As a key)
	PresenceLeases  int64 // rounds of the lease loop: entries refreshed at the PresenceBroker, expired ones claimed
	PresenceClaimed int64 // expired entries of other processes this one claimed, and announced gone
	PresenceErrors  int64 // calls to the PresenceBroker that failed
}

// Stats returns a snapshot of the registry's counters.
func (rs *Rooms[M]) Stats() RoomsStats {
	st := RoomsStats{
		Rooms:           rs.count.Load(),
		BrokerErrors:    rs.brokerErrors.Load(),
		RemoteDelivered: rs.remoteDelivered.Load(),
		RemoteInvalid:   rs.remoteInvalid.Load(),
		Refused:         rs.refused.Load(),
		Recorded:        rs.recorded.Load(),
		Recovered:       rs.recovered.Load(),
		NotRecovered:    rs.notRecovered.Load(),
		Present:         rs.presence.count(),
		PresenceLeases:  rs.presence.refreshes.Load(),
		PresenceClaimed: rs.presence.claimed.Load(),
		PresenceErrors:  rs.presence.errors.Load(),
	}
	if rs.history != nil {
		st.HistoryBytes = rs.history.bytes.Load()
	}
	return st
}
