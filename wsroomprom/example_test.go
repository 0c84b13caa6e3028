package wsroomprom_test

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/wsroomprom"
)

// An endpoint's and its rooms' counters, scraped at /metrics beside the
// Go runtime's.
func ExampleNewEndpointCollector() {
	rooms := wsroom.NewRooms[msg]()
	chat := wsroom.New(relay(rooms))

	mux := http.NewServeMux()
	mux.Handle("GET /chat/{room}", chat)

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		wsroomprom.NewEndpointCollector(chat, wsroomprom.WithConstLabels(prometheus.Labels{"endpoint": "chat"})),
		wsroomprom.NewRoomsCollector(rooms),
		collectors.NewGoCollector(),
	)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}
