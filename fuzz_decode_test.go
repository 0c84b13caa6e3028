package wsroom

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/invopop/jsonschema"
	jsv "github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/wsroom/wsroom/internal/strictjson"
)

// fuzzIn is the inbound type of the decode fuzzer: nested and recursive
// objects, enums, arrays with bounds and uniqueness, integers and bounded
// numbers, strings with lengths and formats, and a map.
type fuzzIn struct {
	Type  string         `json:"type" jsonschema:"enum=move,enum=chat,enum=join"`
	Seq   int            `json:"seq,omitempty" jsonschema:"minimum=0"`
	Score float64        `json:"score,omitempty" jsonschema:"minimum=-1000,maximum=1000"`
	Text  string         `json:"text,omitempty" jsonschema:"maxLength=64"`
	Email string         `json:"email,omitempty" jsonschema:"format=email"`
	When  string         `json:"when,omitempty" jsonschema:"format=date-time"`
	Tags  []string       `json:"tags,omitempty" jsonschema:"maxItems=8,uniqueItems=true"`
	Pos   *fuzzPos       `json:"pos,omitempty"`
	Items []fuzzItem     `json:"items,omitempty" jsonschema:"maxItems=16"`
	Meta  map[string]int `json:"meta,omitempty"`
}

type fuzzPos struct {
	X     float64  `json:"x"`
	Y     float64  `json:"y"`
	Child *fuzzPos `json:"child,omitempty"`
}

type fuzzItem struct {
	Name string `json:"name" jsonschema:"minLength=1,maxLength=16"`
	Qty  uint8  `json:"qty"`
	Kind string `json:"kind,omitempty" jsonschema:"enum=a,enum=b"`
}

// fuzzSchemas are fuzzIn's schemas under the default reflector (unknown
// fields rejected) and under AllowAdditionalProperties.
var fuzzSchemas = sync.OnceValues(func() (*schemas, *schemas) {
	strict, err := compileSchemas(newConfig(nil).reflector, new(fuzzIn), new(fuzzIn))
	if err != nil {
		panic(err)
	}
	loose, err := compileSchemas(&jsonschema.Reflector{AllowAdditionalProperties: true}, new(fuzzIn), new(fuzzIn))
	if err != nil {
		panic(err)
	}
	return strict, loose
})

// FuzzDecode feeds the inbound decode-and-validate path arbitrary bytes,
// under both schemas. Whatever the input:
//   - nothing panics, and decoding ends within 1 s plus 5 µs a byte (no
//     hang, no blow-up: a message at the read limit gets about 6 s even
//     with the fuzzer's instrumentation);
//   - an accepted input is valid JSON, and the value the handler would
//     receive satisfies the schema (re-encoded, it validates) and decodes
//     again to itself;
//   - a rejected input has a reason, and the error reply the sender gets is
//     valid UTF-8 JSON, at most 4 times the input's size plus 4 KiB;
//   - the message parser agrees with encoding/json (json.Decoder with
//     UseNumber, as the validator's own loader): it refuses all that
//     encoding/json refuses, and on input without the shapes it refuses on
//     purpose (a repeated key, deep nesting, long or out-of-range numbers)
//     it accepts the same and builds the same tree.
//
// Seeds are in testdata/fuzz/FuzzDecode. Run the fuzzer with
//
//	go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 10s .
func FuzzDecode(f *testing.F) {
	strict, loose := fuzzSchemas()
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParser(t, data)
		checkDecode(t, "default reflector", strict, data)
		checkDecode(t, "AllowAdditionalProperties", loose, data)
	})
}

func checkDecode(t *testing.T, mode string, s *schemas, data []byte) {
	t.Helper()
	var v fuzzIn
	start := time.Now()
	bad := s.decode(data, &v)
	took := time.Since(start)
	if limit := time.Second + time.Duration(len(data))*5*time.Microsecond; took > limit {
		t.Fatalf("%s: decoding %d bytes took %v, over %v", mode, len(data), took, limit)
	}
	if bad == nil {
		if !json.Valid(data) {
			t.Fatalf("%s: accepted invalid JSON %q", mode, data)
		}
		re, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: accepted %q into a value that cannot be encoded: %v", mode, data, err)
		}
		doc, err := jsv.UnmarshalJSON(bytes.NewReader(re))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.validator.Validate(doc); err != nil {
			t.Fatalf("%s: accepted %q, but the handler would receive %s, which the schema forbids: %v", mode, data, re, err)
		}
		var w fuzzIn
		if bad := s.decode(re, &w); bad != nil {
			t.Fatalf("%s: the value accepted from %q, re-encoded as %s, is rejected: %v", mode, data, re, bad)
		}
		if again, _ := json.Marshal(w); !bytes.Equal(again, re) {
			t.Fatalf("%s: %s decodes to %s", mode, re, again)
		}
		return
	}
	if bad.Reason == "" {
		t.Fatalf("%s: rejected %q without a reason", mode, data)
	}
	if bad.Field != "" && !strings.HasPrefix(bad.Field, "/") {
		t.Fatalf("%s: field %q is not a JSON Pointer", mode, bad.Field)
	}
	frame, err := encodeFrame(defaultErrorReply(bad))
	if err != nil {
		t.Fatalf("%s: error reply for %q cannot be encoded: %v", mode, data, err)
	}
	reply := framePayload(frame)
	if !utf8.Valid(reply) || !json.Valid(reply) {
		t.Fatalf("%s: error reply %q is not valid UTF-8 JSON", mode, reply)
	}
	if len(reply) > 4*len(data)+4096 {
		t.Fatalf("%s: a %d-byte input drew a %d-byte error reply", mode, len(data), len(reply))
	}
}

// checkParser compares the strict parser with encoding/json.
func checkParser(t *testing.T, data []byte) {
	t.Helper()
	got, bad := parseStrictly(data)
	want, err := decodeLikeTheValidator(data)
	switch {
	case err != nil && bad == nil:
		t.Fatalf("the parser accepted %q, which encoding/json refuses: %v", data, err)
	case err != nil:
		return
	case bad != nil:
		if refusedOnPurpose(data) {
			return
		}
		t.Fatalf("the parser refused %q (%s), which encoding/json accepts as %#v", data, bad.Reason, want)
	case !reflect.DeepEqual(got, want):
		t.Fatalf("the parser read %q as %#v, encoding/json as %#v", data, got, want)
	}
}

// parseStrictly returns the tree the strict decoder hands the validator,
// without checking keys against a Go type, or its refusal.
func parseStrictly(data []byte) (doc any, bad *strictjson.Rejection) {
	bad, _ = strictjson.New(nil, func(tree any) error {
		doc = tree
		return errKept // kept, so not recycled
	}).Decode(data)
	return doc, bad
}

var errKept = errors.New("tree kept by the test")

// decodeLikeTheValidator decodes data as jsonschema.UnmarshalJSON does.
func decodeLikeTheValidator(data []byte) (any, error) {
	return jsv.UnmarshalJSON(bytes.NewReader(data))
}

// refusedOnPurpose reports whether valid JSON data holds a shape the
// parser may refuse: a key repeated in an object, nesting near 64 levels,
// or a number literal that is long or far out of a float64's range.
func refusedOnPurpose(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		object  bool
		keys    map[string]bool
		wantKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return false
		}
		if err != nil {
			return true // not for this oracle to judge
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			key := tok.(string)
			if top.keys[key] {
				return true
			}
			top.keys[key] = true
			top.wantKey = false
			continue
		}
		if top != nil && top.object {
			top.wantKey = true // this token is the value
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{':
				stack = append(stack, &frame{object: true, keys: map[string]bool{}, wantKey: true})
			case '[':
				stack = append(stack, &frame{})
			case ']':
				stack = stack[:len(stack)-1]
			}
			if len(stack) > 60 {
				return true
			}
		case json.Number:
			if farNumber(string(tok)) {
				return true
			}
		}
	}
}

// farNumber reports a number literal over 90 bytes, or whose exponent or
// value is far from a float64's range.
func farNumber(s string) bool {
	if len(s) > 90 {
		return true
	}
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return true
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp, err := strconv.Atoi(s[i+1:])
		return err != nil || exp < -300 || exp > 300
	}
	return false
}
