package wsroom_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsroom/wsroom"
	"github.com/wsroom/wsroom/internal/wstest"
)

// richIn is an inbound type with everything a schema usually holds: an
// enum, bounded strings and numbers, integers, arrays of objects, and a
// recursive object (so nesting depth is not fixed by the type).
type richIn struct {
	Type    string     `json:"type" jsonschema:"enum=message,enum=chat"`
	Content string     `json:"content,omitempty" jsonschema:"maxLength=280"`
	Seq     int        `json:"seq,omitempty"`
	Score   float64    `json:"score,omitempty" jsonschema:"minimum=-1000,maximum=1000"`
	Nums    []int      `json:"nums,omitempty"`
	Items   []richItem `json:"items,omitempty"`
	Pos     *richPos   `json:"pos,omitempty"`
}

type richItem struct {
	Name string `json:"name" jsonschema:"maxLength=32"`
	Qty  int    `json:"qty" jsonschema:"minimum=0,maximum=1000000"`
}

type richPos struct {
	X     float64  `json:"x"`
	Y     float64  `json:"y"`
	Child *richPos `json:"child,omitempty"`
}

func richToOut(m richIn) chatOut { return chatOut{Type: m.Type, Content: m.Content} }

// jsonShape builds a message of about n bytes.
type jsonShape struct {
	name  string
	build func(n int) string
	sizes []int // the sizes to measure; the cost per byte must not grow with them
}

func repeatTo(prefix, unit, suffix string, n int) string {
	k := max(1, (n-len(prefix)-len(suffix))/len(unit))
	return prefix + strings.Repeat(unit, k) + suffix
}

// nested returns a chain of pos objects about n bytes long; bad makes the
// innermost one invalid.
func nested(n int, bad bool) string {
	const open = `{"x":1,"y":1,"child":`
	depth := max(1, (n-40)/(len(open)+1))
	leaf := `{"x":1,"y":1}`
	if bad {
		leaf = `{"x":"one","y":1}`
	}
	return `{"type":"chat","pos":` + strings.Repeat(open, depth) + leaf + strings.Repeat("}", depth) + `}`
}

const (
	smallJSON = 8 << 10
	largeJSON = 128 << 10
	// Number literals turn quadratic only past a hundred KiB or so.
	literalJSON = 64 << 10
	hugeJSON    = wsroom.DefaultReadLimit - 64
)

var jsonShapes = []jsonShape{
	{"long string over maxLength", func(n int) string { return repeatTo(`{"type":"chat","content":"`, "a", `"}`, n) }, []int{smallJSON, largeJSON}},
	{"many integers", func(n int) string { return repeatTo(`{"type":"chat","nums":[`, "12345,", `0]}`, n) }, []int{smallJSON, largeJSON}},
	{"many invalid items", func(n int) string {
		return repeatTo(`{"type":"chat","items":[`, `{"name":"x","qty":-1},`, `{"name":"x","qty":-1}]}`, n)
	}, []int{smallJSON, largeJSON}},
	{"many unknown keys", func(n int) string {
		var b strings.Builder
		b.WriteString(`{"type":"chat"`)
		for i := 0; b.Len() < n-1; i++ {
			fmt.Fprintf(&b, `,"k%d":1`, i)
		}
		return b.String() + "}"
	}, []int{smallJSON, largeJSON}},
	{"deep nesting, valid", func(n int) string { return nested(n, false) }, []int{smallJSON, largeJSON}},
	{"deep nesting, invalid at the bottom", func(n int) string { return nested(n, true) }, []int{smallJSON, largeJSON}},
	{"nesting deeper than encoding/json allows", func(n int) string { return `{"type":"chat","nums":` + strings.Repeat("[", n) + "}" }, []int{smallJSON, largeJSON}},
	{"integer literal of n digits", func(n int) string { return repeatTo(`{"type":"chat","seq":`, "9", `}`, n) }, []int{literalJSON, hugeJSON}},
	{"bounded number of n digits", func(n int) string { return repeatTo(`{"type":"chat","score":0.`, "1", `}`, n) }, []int{literalJSON, hugeJSON}},
	// Here n is how many numbers: a huge exponent costs big-number
	// arithmetic out of all proportion to its few bytes.
	{"integers with huge exponents", func(n int) string {
		return `{"type":"chat","nums":[` + strings.TrimSuffix(strings.Repeat("1e999999,", n), ",") + `]}`
	}, []int{1, 4}},
}

// decodeCostFactor bounds the cost per byte of any inbound message, valid
// or not, as a multiple of the cost per byte of a realistic valid message
// (an array of small objects).
const decodeCostFactor = 30

// decodeOverhead is the allowance every message has on top, whatever its
// size: a round trip over loopback, framing, the reply.
const decodeOverhead = 5 * time.Millisecond

// TestHostileJSONDecodeCostIsBounded measures, over a real socket, the time
// from sending a message to receiving the server's answer (its reply or
// the room's copy), for hostile shapes of JSON within the read limit: long
// strings, many numbers, many errors, many keys, deep nesting, long number
// literals and huge exponents. Each must cost no more per byte than
// decodeCostFactor times a realistic message, plus decodeOverhead, and its
// cost per byte must not grow with its size (decoding is linear: growing a
// message 16 times may not make each byte cost 4 times as much). A
// witness in the same room must be served meanwhile.
func TestHostileJSONDecodeCostIsBounded(t *testing.T) {
	wstest.CheckGoroutines(t)
	a := newArena(t, arenaOptions{}, richToOut)
	probe, _, err := wstest.RawDial(a.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()

	// measure returns the best of up to three round trips for msg (one
	// when it is slow: the point is made), and whether the server
	// accepted it. A connection the server closes instead of answering is
	// an error, and the probe is replaced.
	measure := func(msg string) (time.Duration, bool) {
		best, accepted := time.Duration(1<<62), false
		for range 3 {
			start := time.Now()
			if err := probe.Write(wstest.Frame(true, 1, []byte(msg))); err != nil {
				t.Fatal(err)
			}
			e := readUntil(probe, func(frames []wstest.ServerFrame) error {
				var m chatOut
				if err := json.Unmarshal(frames[len(frames)-1].Payload, &m); err == nil && (m.Type == "error" || m.Type == "chat") {
					accepted = m.Type == "chat"
					return nil
				}
				return fmt.Errorf("not yet")
			})
			if e.Err != nil {
				t.Errorf("no answer to a message of %d bytes (%.60s...): %v", len(msg), msg, e.Err)
				probe.Close()
				if probe, _, err = wstest.RawDial(a.url, nil); err != nil {
					t.Fatal(err)
				}
				return time.Since(start), false
			}
			best = min(best, time.Since(start))
			if best > 100*time.Millisecond {
				break
			}
		}
		return best, accepted
	}
	perByte := func(d time.Duration, n int) float64 { return float64(d.Nanoseconds()) / float64(n) }

	reference := func(n int) string {
		return repeatTo(`{"type":"chat","items":[`, `{"name":"apple","qty":3},`, `{"name":"pear","qty":1}]}`, n)
	}
	refCost := 1e18
	for _, n := range []int{smallJSON, largeJSON} {
		d, ok := measure(reference(n))
		if !ok {
			t.Fatal("the reference message was rejected")
		}
		refCost = min(refCost, perByte(d, len(reference(n))))
	}
	t.Logf("reference (array of small objects, valid): %.0f ns/byte", refCost)
	if len(reference(wsroom.DefaultReadLimit)) > wsroom.DefaultReadLimit {
		t.Fatal("reference message over the read limit")
	}

	tried := 0
	for _, sh := range jsonShapes {
		var costs []float64
		var report []string
		for _, n := range sh.sizes {
			msg := sh.build(n)
			if len(msg) > wsroom.DefaultReadLimit {
				t.Fatalf("%s: %d bytes, over the read limit", sh.name, len(msg))
			}
			d, accepted := measure(msg)
			tried++
			c := perByte(d, len(msg))
			costs = append(costs, c)
			verdict := "rejected"
			if accepted {
				verdict = "accepted"
			}
			report = append(report, fmt.Sprintf("%d bytes %s in %v (%.0f ns/byte)", len(msg), verdict, d.Round(10*time.Microsecond), c))
			budget := time.Duration(decodeCostFactor*refCost*float64(len(msg))) + decodeOverhead
			if d > budget {
				t.Errorf("%s: %d bytes cost %v, over the budget of %v (%dx a realistic message per byte, plus %v)",
					sh.name, len(msg), d, budget, decodeCostFactor, decodeOverhead)
			}
		}
		t.Logf("%s: %s", sh.name, strings.Join(report, "; "))
		small, large := costs[0], costs[len(costs)-1]
		growth := float64(sh.sizes[len(sh.sizes)-1]) / float64(sh.sizes[0])
		if large > 4*small && large > 2*refCost {
			t.Errorf("%s: the cost per byte grew %.1fx when the message grew %.0fx: decoding it is not linear", sh.name, large/small, growth)
		}
	}
	closeRaw(t, probe)
	a.finish()
	t.Logf("hostile: %d messages of %d shapes of JSON, each decoded within %dx the per-byte cost of a realistic message",
		tried, len(jsonShapes), decodeCostFactor)
}

// TestHostileOutOfRangeNumbersAreRejected: a number whose exponent is past
// what big-number parsing accepts (math/big refuses exponents beyond a
// million) is an invalid message like any other: the sender gets the error
// reply and stays connected; nothing panics.
func TestHostileOutOfRangeNumbersAreRejected(t *testing.T) {
	wstest.CheckGoroutines(t)
	a := newArena(t, arenaOptions{}, richToOut)
	probe, _, err := wstest.RawDial(a.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	inputs := []string{
		`{"type":"chat","score":1e1000001}`,
		`{"type":"chat","score":-1E-1000001}`,
		`{"type":"chat","score":0.` + strings.Repeat("1", 1000001) + `}`,
		`{"type":"chat","seq":1e1000001}`,
		`{"type":"chat","items":[{"name":"a","qty":1e1000001}]}`,
		`{"type":"chat","nums":[1e1000001]}`,
	}
	for _, in := range inputs {
		if err := probe.Write(wstest.Frame(true, 1, []byte(in))); err != nil {
			t.Fatal(err)
		}
		e := readUntil(probe, wantErrorReply)
		if e.Err != nil {
			t.Errorf("%.60s: %v, want the error reply", in, e.Err)
			probe.Close()
			if probe, _, err = wstest.RawDial(a.url, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	closeRaw(t, probe)
	if n := a.logs.panics.Load(); n > 0 {
		t.Errorf("%d of %d messages made the library panic", n, len(inputs))
		a.logs.panics.Store(0) // reported here, with the inputs
	}
	a.finish()
	t.Logf("hostile: %d out-of-range numbers", len(inputs))
}
