package wsroomprom

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/wsroom/wsroom"
)

// An Option configures a collector.
type Option func(*config)

type config struct{ labels prometheus.Labels }

// WithConstLabels adds labels with fixed values to every metric of the
// collector, such as {"endpoint": "chat"} to tell endpoints apart.
func WithConstLabels(l prometheus.Labels) Option { return func(c *config) { c.labels = l } }

// metric is one series of a collector: its description, its type, and how
// to read it from a snapshot S.
type metric[S any] struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(S) int64
}

// collector reports the metrics of one snapshot per scrape.
type collector[S any] struct {
	snapshot func() S
	metrics  []metric[S]
}

// spec is a metric before its description is built.
type spec[S any] struct {
	name, help string
	kind       prometheus.ValueType
	value      func(S) int64
}

func newCollector[S any](snapshot func() S, specs []spec[S], opts []Option) *collector[S] {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	c := &collector[S]{snapshot: snapshot}
	for _, s := range specs {
		c.metrics = append(c.metrics, metric[S]{
			desc:  prometheus.NewDesc("wsroom_"+s.name, s.help, nil, cfg.labels),
			kind:  s.kind,
			value: s.value,
		})
	}
	return c
}

// Describe sends the description of every metric.
func (c *collector[S]) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

// Collect takes one snapshot and sends every metric read from it.
func (c *collector[S]) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, float64(m.value(s)))
	}
}

// StatsSource is what NewEndpointCollector reads: a *wsroom.Endpoint.
type StatsSource interface{ Stats() wsroom.Stats }

// RoomsStatsSource is what NewRoomsCollector reads: a *wsroom.Rooms.
type RoomsStatsSource interface{ Stats() wsroom.RoomsStats }

const (
	counter = prometheus.CounterValue
	gauge   = prometheus.GaugeValue
)

// NewEndpointCollector returns a collector of every counter of ep.Stats():
//
//	wsroom_connections                        gauge    connections open now
//	wsroom_connections_accepted_total         counter  upgrades completed
//	wsroom_upgrades_refused_total             counter  upgrades refused with 503
//	wsroom_messages_received_total            counter  data messages received
//	wsroom_received_bytes_total               counter  payload bytes of those messages
//	wsroom_frames_sent_total                  counter  frames written (messages, error replies, pings, pongs)
//	wsroom_sent_bytes_total                   counter  bytes written, frame headers included
//	wsroom_messages_rejected_total            counter  inbound messages rejected as invalid
//	wsroom_slow_consumer_closes_total         counter  connections closed for a full queue or a write timeout
//	wsroom_messages_dropped_total             counter  messages dropped under OverflowDrop
//	wsroom_rate_limit_closes_total            counter  connections closed past the rate limit (RateClose)
//	wsroom_messages_throttled_total           counter  inbound messages that waited for the rate limit
//	wsroom_frames_compressed_total            counter  frames sent compressed (WithCompression)
//	wsroom_compression_saved_bytes_total      counter  bytes those frames saved
func NewEndpointCollector(ep StatsSource, opts ...Option) prometheus.Collector {
	return newCollector(ep.Stats, []spec[wsroom.Stats]{
		{"connections", "WebSocket connections open now.", gauge, func(s wsroom.Stats) int64 { return s.Connections }},
		{"connections_accepted_total", "WebSocket upgrades completed.", counter, func(s wsroom.Stats) int64 { return s.Accepted }},
		{"upgrades_refused_total", "Upgrades refused with 503: shutting down, or at the connection cap.", counter, func(s wsroom.Stats) int64 { return s.Refused }},
		{"messages_received_total", "Data messages received from clients.", counter, func(s wsroom.Stats) int64 { return s.MessagesIn }},
		{"received_bytes_total", "Payload bytes of the data messages received.", counter, func(s wsroom.Stats) int64 { return s.BytesIn }},
		{"frames_sent_total", "Frames written to clients: messages, error replies, pings and pongs.", counter, func(s wsroom.Stats) int64 { return s.MessagesOut }},
		{"sent_bytes_total", "Bytes written to clients, frame headers included.", counter, func(s wsroom.Stats) int64 { return s.BytesOut }},
		{"messages_rejected_total", "Inbound messages rejected as invalid.", counter, func(s wsroom.Stats) int64 { return s.Rejected }},
		{"slow_consumer_closes_total", "Connections closed because their send queue overflowed or a write timed out.", counter, func(s wsroom.Stats) int64 { return s.SlowConsumerCloses }},
		{"messages_dropped_total", "Messages dropped on a full send queue under OverflowDrop.", counter, func(s wsroom.Stats) int64 { return s.Dropped }},
		{"rate_limit_closes_total", "Connections closed for sending past the rate limit (RateClose).", counter, func(s wsroom.Stats) int64 { return s.RateLimited }},
		{"messages_throttled_total", "Inbound messages that waited for the rate limit (RateThrottle).", counter, func(s wsroom.Stats) int64 { return s.Throttled }},
		{"frames_compressed_total", "Frames queued compressed for clients that negotiated permessage-deflate.", counter, func(s wsroom.Stats) int64 { return s.Compressed }},
		{"compression_saved_bytes_total", "Bytes the compressed frames saved against their plain form.", counter, func(s wsroom.Stats) int64 { return s.CompressionSaved }},
	}, opts)
}

// NewRoomsCollector returns a collector of every counter of rooms.Stats():
//
//	wsroom_rooms                              gauge    rooms with subscribers now
//	wsroom_broker_publish_errors_total        counter  publishes the broker did not take
//	wsroom_remote_messages_delivered_total    counter  messages from other processes handed to local subscribers
//	wsroom_remote_messages_invalid_total      counter  messages from other processes dropped as invalid
//	wsroom_room_subscriptions_refused_total   counter  subscriptions refused with ErrTooManyRooms
//	wsroom_messages_recorded_total            counter  messages recorded in the rooms' histories
//	wsroom_history_bytes                      gauge    bytes of the frames the histories keep now
//	wsroom_recoveries_total                   counter  members given all they missed on reconnecting
//	wsroom_recoveries_failed_total            counter  members that could not be recovered
//	wsroom_presence_entries                   gauge    presence entries of this process now
//	wsroom_presence_lease_rounds_total        counter  rounds of the presence lease loop
//	wsroom_presence_claimed_total             counter  expired entries of other processes claimed and announced gone
//	wsroom_presence_errors_total              counter  calls to the PresenceBroker that failed
func NewRoomsCollector(rooms RoomsStatsSource, opts ...Option) prometheus.Collector {
	return newCollector(rooms.Stats, []spec[wsroom.RoomsStats]{
		{"rooms", "Rooms with subscribers now (or first ones waiting for the broker).", gauge, func(s wsroom.RoomsStats) int64 { return s.Rooms }},
		{"broker_publish_errors_total", "Publishes the broker did not take (Publish returned ErrBroker, or a Join's announcement).", counter, func(s wsroom.RoomsStats) int64 { return s.BrokerErrors }},
		{"remote_messages_delivered_total", "Messages from other processes handed to local subscribers.", counter, func(s wsroom.RoomsStats) int64 { return s.RemoteDelivered }},
		{"remote_messages_invalid_total", "Messages from other processes dropped: not valid UTF-8 JSON, or not of the rooms' type.", counter, func(s wsroom.RoomsStats) int64 { return s.RemoteInvalid }},
		{"room_subscriptions_refused_total", "Subscriptions refused with ErrTooManyRooms (WithMaxRooms).", counter, func(s wsroom.RoomsStats) int64 { return s.Refused }},
		{"messages_recorded_total", "Messages recorded in the rooms' histories (WithHistory).", counter, func(s wsroom.RoomsStats) int64 { return s.Recorded }},
		{"history_bytes", "Bytes of the frames the rooms' histories keep now.", gauge, func(s wsroom.RoomsStats) int64 { return s.HistoryBytes }},
		{"recoveries_total", "Members that asked to recover on reconnecting and were given all they missed.", counter, func(s wsroom.RoomsStats) int64 { return s.Recovered }},
		{"recoveries_failed_total", "Members that asked to recover and could not be: another epoch, or more missed than the history keeps.", counter, func(s wsroom.RoomsStats) int64 { return s.NotRecovered }},
		{"presence_entries", "Presence entries of this process now: members that joined As a key.", gauge, func(s wsroom.RoomsStats) int64 { return s.Present }},
		{"presence_lease_rounds_total", "Rounds of the presence lease loop: entries renewed at the PresenceBroker, expired ones claimed.", counter, func(s wsroom.RoomsStats) int64 { return s.PresenceLeases }},
		{"presence_claimed_total", "Expired presence entries of other processes this one claimed and announced gone.", counter, func(s wsroom.RoomsStats) int64 { return s.PresenceClaimed }},
		{"presence_errors_total", "Calls to the PresenceBroker that failed.", counter, func(s wsroom.RoomsStats) int64 { return s.PresenceErrors }},
	}, opts)
}
