package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wsroom/wsroom/wsroomprom"
)

// metrics returns the handler of /metrics (served with -metrics): the
// endpoint's and the rooms' counters, and the Go runtime's and the
// process's, in Prometheus' text format.
func metrics(ep wsroomprom.StatsSource, rooms wsroomprom.RoomsStatsSource) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		wsroomprom.NewEndpointCollector(ep, wsroomprom.WithConstLabels(prometheus.Labels{"endpoint": "chat"})),
		wsroomprom.NewRoomsCollector(rooms),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
