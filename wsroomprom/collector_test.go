package wsroomprom_test

import (
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
	"github.com/wsroom/wsroom/wsroomprom"
	"github.com/wsroom/wsroom/wsroomtest"
)

type msg struct {
	Text string `json:"text"`
}

// relay joins the room named by the path and publishes every message to it.
func relay(rooms *wsroom.Rooms[msg]) wsroom.Handler[msg, msg] {
	return func(c *wsroom.Conn[msg], msgs iter.Seq2[msg, error]) error {
		leave, err := rooms.Room(c.Request().PathValue("room")).Subscribe(c)
		if err != nil {
			return err
		}
		defer leave()
		for m, err := range msgs {
			if err != nil {
				return err
			}
			if err := rooms.Room(c.Request().PathValue("room")).Publish(m); err != nil {
				return err
			}
		}
		return nil
	}
}

// chat is a relay endpoint on a real server, with at most two rooms and
// its heartbeat off, so that the counters move only as the test says.
type chat struct {
	rooms *wsroom.Rooms[msg]
	ep    *wsroom.Endpoint[msg, msg]
	srv   *wsroomtest.Server
}

func startChat(t *testing.T) *chat {
	t.Helper()
	rooms := wsroom.NewRooms[msg](wsroom.WithMaxRooms(2))
	ep := wsroom.New(relay(rooms), wsroom.WithHeartbeat(0, 0),
		wsroom.WithLogger(slog.New(slog.DiscardHandler))) // the refused room is logged

	mux := http.NewServeMux()
	mux.Handle("GET /{room}", ep)
	return &chat{rooms: rooms, ep: ep, srv: wsroomtest.NewServer(t, mux, ep)}
}

// scrape serves reg over HTTP as Prometheus would scrape it, and parses
// the answer with expfmt.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the scrape does not parse: %v", err)
	}
	return families
}

// value is the one value of a family, after checking its type and labels.
func value(t *testing.T, families map[string]*dto.MetricFamily, name string, want dto.MetricType, labels map[string]string) float64 {
	t.Helper()
	f, ok := families[name]
	if !ok {
		t.Fatalf("no family %s in the scrape", name)
	}
	if f.GetType() != want {
		t.Fatalf("%s is a %v, want a %v", name, f.GetType(), want)
	}
	if len(f.Metric) != 1 {
		t.Fatalf("%s has %d series, want 1", name, len(f.Metric))
	}
	m := f.Metric[0]
	got := map[string]string{}
	for _, l := range m.Label {
		got[l.GetName()] = l.GetValue()
	}
	if !reflect.DeepEqual(got, labels) {
		t.Fatalf("%s has labels %v, want %v", name, got, labels)
	}
	if want == dto.MetricType_COUNTER {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

func TestScrapeReportsTheEndpointsAndTheRoomsCountersOverRealConnections(t *testing.T) {
	wstest.CheckGoroutines(t)
	c := startChat(t)
	reg := prometheus.NewPedanticRegistry()
	labels := prometheus.Labels{"endpoint": "chat"}
	reg.MustRegister(
		wsroomprom.NewEndpointCollector(c.ep, wsroomprom.WithConstLabels(labels)),
		wsroomprom.NewRoomsCollector(c.rooms, wsroomprom.WithConstLabels(labels)),
	)

	ann := wsroomtest.Dial[msg, msg](t, c.srv, "/lobby")
	bob := wsroomtest.Dial[msg, msg](t, c.srv, "/lobby")
	wstest.WaitFor(t, "both in the room", func() bool { return c.rooms.Room("lobby").Len() == 2 })
	ann.Send(msg{Text: "hi"})
	ann.Expect(msg{Text: "hi"})
	bob.Expect(msg{Text: "hi"})
	ann.SendText(`{"text":1}`) // rejected: an error reply to ann alone
	ann.ReceiveText()
	cat := wsroomtest.Dial[msg, msg](t, c.srv, "/kitchen")
	wstest.WaitFor(t, "kitchen open", func() bool { return c.rooms.Len() == 2 })
	dan := wsroomtest.Dial[msg, msg](t, c.srv, "/garden") // a third room, past WithMaxRooms(2)
	dan.ExpectClosed(wsroom.StatusInternalError)
	cat.Close()
	wstest.WaitFor(t, "cat's and dan's connections gone", func() bool { return c.ep.Stats().Connections == 2 })
	wstest.WaitFor(t, "kitchen gone", func() bool { return c.rooms.Len() == 1 })

	f := scrape(t, reg)
	l := map[string]string{"endpoint": "chat"}
	C, G := dto.MetricType_COUNTER, dto.MetricType_GAUGE
	for _, tc := range []struct {
		name string
		kind dto.MetricType
		want float64
	}{
		{"wsroom_connections", G, 2},
		{"wsroom_connections_accepted_total", C, 4},
		{"wsroom_messages_received_total", C, 2},
		{"wsroom_received_bytes_total", C, float64(len(`{"text":"hi"}`) + len(`{"text":1}`))},
		{"wsroom_messages_rejected_total", C, 1},
		{"wsroom_upgrades_refused_total", C, 0},
		{"wsroom_rooms", G, 1},
		{"wsroom_room_subscriptions_refused_total", C, 1},
		{"wsroom_broker_publish_errors_total", C, 0},
	} {
		if got := value(t, f, tc.name, tc.kind, l); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Frames and bytes out: at least the two deliveries of "hi" and the
	// error reply; exactly what Stats says.
	s := c.ep.Stats()
	if got := value(t, f, "wsroom_frames_sent_total", C, l); got != float64(s.MessagesOut) || got < 3 {
		t.Errorf("wsroom_frames_sent_total = %v, Stats().MessagesOut %d", got, s.MessagesOut)
	}
	if got := value(t, f, "wsroom_sent_bytes_total", C, l); got != float64(s.BytesOut) || got == 0 {
		t.Errorf("wsroom_sent_bytes_total = %v, Stats().BytesOut %d", got, s.BytesOut)
	}
}

func TestMetricNamesFollowThePrometheusConventions(t *testing.T) {
	c := wsroom.New(relay(wsroom.NewRooms[msg]()))
	for _, coll := range []prometheus.Collector{
		wsroomprom.NewEndpointCollector(c),
		wsroomprom.NewRoomsCollector(wsroom.NewRooms[msg]()),
	} {
		problems, err := testutil.CollectAndLint(coll)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

// fixed reports stats whose every field has a value of its own.
type fixed struct{}

func (fixed) Stats() wsroom.Stats {
	var s wsroom.Stats
	distinct(&s, 100)
	return s
}

type fixedRooms struct{}

func (fixedRooms) Stats() wsroom.RoomsStats {
	var s wsroom.RoomsStats
	distinct(&s, 200)
	return s
}

// distinct sets the i-th int64 field of *p to base+i.
func distinct(p any, base int64) {
	v := reflect.ValueOf(p).Elem()
	for i := range v.NumField() {
		v.Field(i).SetInt(base + int64(i))
	}
}

// Every field of Stats and RoomsStats is exported once, as a counter when
// its name ends in _total and a gauge otherwise: a field added to the
// core without a metric here fails this test.
func TestEveryStatsFieldIsExportedOnceWithTheRightType(t *testing.T) {
	for _, tc := range []struct {
		coll   prometheus.Collector
		fields int
		base   int64
	}{
		{wsroomprom.NewEndpointCollector(fixed{}), reflect.TypeFor[wsroom.Stats]().NumField(), 100},
		{wsroomprom.NewRoomsCollector(fixedRooms{}), reflect.TypeFor[wsroom.RoomsStats]().NumField(), 200},
	} {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(tc.coll)
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var seen []int64
		for _, f := range families {
			m := f.Metric[0]
			isCounter := strings.HasSuffix(f.GetName(), "_total")
			switch {
			case isCounter && f.GetType() == dto.MetricType_COUNTER:
				seen = append(seen, int64(m.GetCounter().GetValue()))
			case !isCounter && f.GetType() == dto.MetricType_GAUGE:
				seen = append(seen, int64(m.GetGauge().GetValue()))
			default:
				t.Errorf("%s is a %v", f.GetName(), f.GetType())
			}
		}
		slices.Sort(seen)
		var want []int64
		for i := range tc.fields {
			want = append(want, tc.base+int64(i))
		}
		if !slices.Equal(seen, want) {
			t.Errorf("metric values %v, want one per field %v", seen, want)
		}
	}
}

func TestCollectorsCompareWithTestutil(t *testing.T) {
	expected := fmt.Sprintf(`
# HELP wsroom_connections WebSocket connections open now.
# TYPE wsroom_connections gauge
wsroom_connections{endpoint="feed"} %d
# HELP wsroom_messages_rejected_total Inbound messages rejected as invalid.
# TYPE wsroom_messages_rejected_total counter
wsroom_messages_rejected_total{endpoint="feed"} %d
`, fixed{}.Stats().Connections, fixed{}.Stats().Rejected)
	coll := wsroomprom.NewEndpointCollector(fixed{}, wsroomprom.WithConstLabels(prometheus.Labels{"endpoint": "feed"}))
	if err := testutil.CollectAndCompare(coll, strings.NewReader(expected), "wsroom_connections", "wsroom_messages_rejected_total"); err != nil {
		t.Fatal(err)
	}
}
