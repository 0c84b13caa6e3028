package client

import (
	"encoding/json"
	"testing"
)

// FuzzProtocol reads arbitrary server frames as the client does: the
// position of a recorded message and the recovery notice are only ever
// read from frames that say so, with the values encoding/json reads.
func FuzzProtocol(f *testing.F) {
	for _, s := range []string{
		`{"seq":42,"epoch":"9f86d081884c7d65","type":"message"}`, `{"seq":1,"epoch":"e"}`,
		`{"seq":,"epoch":"e"}`, `{"seq":18446744073709551616,"epoch":"e"}`, `{"seq":1,"epoch":"a\"b"}`,
		`{"type":"recovery","recovered":true,"epoch":"9f86d081884c7d65","missed":3}`,
		`{"type":"recovery","recovered":false,"epoch":"e","missed":0,"x":1}`, `{"type":"recovery"}`,
		`{"type":"recovery","recovered":true,"epoch":"e","missed":null}`, `{"type":"recovery","reCovered":true,"epoch":"e","missed":0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if pos, ok := recordedPosition(data); ok {
			if pos.Epoch == "" || len(pos.Epoch) > 64 || !validEpoch([]byte(pos.Epoch)) {
				t.Fatalf("%q: epoch %q", data, pos.Epoch)
			}
			var v struct {
				Seq   uint64 `json:"seq"`
				Epoch string `json:"epoch"`
			}
			if json.Valid(data) && (json.Unmarshal(data, &v) != nil || v.Seq != pos.Offset || v.Epoch != pos.Epoch) {
				t.Fatalf("%q: read %+v, encoding/json reads %+v", data, pos, v)
			}
		}
		if n, ok := parseNotice(data); ok {
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil || len(m) != 4 || m["type"] != "recovery" ||
				m["recovered"] != n.Recovered || m["epoch"] != n.Epoch || m["missed"] != float64(n.Missed) {
				t.Fatalf("%q: read %+v, encoding/json reads %v (%v)", data, n, m, err)
			}
		}
	})
}
