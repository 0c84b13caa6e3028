package main

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/wsroom/wsroom/internal/wstest"
)

// TestMetricsAreScrapedOverHTTP: with two members in a room, a scrape of
// /metrics parses and counts them, labelled with the endpoint's name.
func TestMetricsAreScrapedOverHTTP(t *testing.T) {
	wstest.CheckGoroutines(t)
	s := startChat(t)
	ann := s.join(t, "m", "ann")
	s.join(t, "m", "bob")
	expect(t, ann, "joined", "bob", nil)
	sendMessage(t, ann, "counted")
	expect(t, ann, "message", "ann", str("counted"))

	resp, err := s.srv.Client().Get(s.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the scrape does not parse: %v", err)
	}
	for _, tc := range []struct {
		name  string
		kind  dto.MetricType
		label string
		want  float64
	}{
		{"wsroom_connections", dto.MetricType_GAUGE, "chat", 2},
		{"wsroom_connections_accepted_total", dto.MetricType_COUNTER, "chat", 2},
		{"wsroom_messages_received_total", dto.MetricType_COUNTER, "chat", 1},
		{"wsroom_rooms", dto.MetricType_GAUGE, "", 1},
	} {
		f, ok := families[tc.name]
		if !ok || f.GetType() != tc.kind || len(f.Metric) != 1 {
			t.Fatalf("%s: %v, want one %v", tc.name, f, tc.kind)
		}
		m := f.Metric[0]
		v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
		var endpoint string
		for _, l := range m.Label {
			if l.GetName() == "endpoint" {
				endpoint = l.GetValue()
			}
		}
		if v != tc.want || endpoint != tc.label {
			t.Errorf("%s{endpoint=%q} = %v, want {endpoint=%q} %v", tc.name, endpoint, v, tc.label, tc.want)
		}
	}
	if _, ok := families["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
}
