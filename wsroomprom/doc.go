// Package wsroomprom exposes wsroom's counters to Prometheus: a collector
// over an endpoint's Stats and one over a room registry's RoomsStats.
//
// Both read the counters when Prometheus scrapes, through Stats, which
// loads a few atomics: nothing is added to wsroom's hot paths. Totals are
// counters (the _total names), values that go up and down are gauges;
// bytes are in bytes. No metric has a per-room or per-connection label,
// so the series are as many as the collectors; WithConstLabels tells
// several endpoints apart:
//
//	reg.MustRegister(
//		wsroomprom.NewEndpointCollector(chat, wsroomprom.WithConstLabels(prometheus.Labels{"endpoint": "chat"})),
//		wsroomprom.NewRoomsCollector(rooms),
//	)
//
// The package is a module of its own (github.com/wsroom/wsroom/wsroomprom),
// so the core's go.mod holds no Prometheus client.
package wsroomprom
