package wsroom

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/invopop/jsonschema"
	"github.com/wsroom/wsroom/internal/fastschema"
	"github.com/wsroom/wsroom/internal/strictjson"
)

// quickIn spans what the quick check checks itself (types, string enums,
// lengths, patterns, formats, integer bounds, required and unknown keys,
// arrays, maps, nested and recursive objects) and what it leaves to the
// full validator (numeric enums, bounds that are not integers, base64
// content, oneOf).
type quickIn struct {
	Type   string            `json:"type" jsonschema:"enum=a,enum=b,enum=c"`
	N      int64             `json:"n" jsonschema:"minimum=-5,maximum=1000"`
	Odd    int               `json:"odd,omitempty" jsonschema:"exclusiveMinimum=0,exclusiveMaximum=100,multipleOf=3"`
	Level  int               `json:"level,omitempty" jsonschema:"enum=1,enum=2,enum=3"`
	Ratio  float64           `json:"ratio,omitempty" jsonschema:"minimum=0.5,maximum=2.5"`
	Small  uint8             `json:"small,omitempty"`
	Code   string            `json:"code,omitempty" jsonschema:"pattern=^[a-z]{2}[0-9]$"`
	Name   string            `json:"name,omitempty" jsonschema:"minLength=1,maxLength=8"`
	At     time.Time         `json:"at,omitempty"`
	Flag   *bool             `json:"flag,omitempty"`
	Blob   []byte            `json:"blob,omitempty"`
	Nums   []int             `json:"nums,omitempty" jsonschema:"minItems=1,maxItems=4"`
	Labels map[string]string `json:"labels,omitempty"`
	Either any               `json:"either,omitempty" jsonschema:"oneof_type=string;integer"`
	Tree   *quickTree        `json:"tree,omitempty"`
}

type quickTree struct {
	V    string       `json:"v" jsonschema:"maxLength=4"`
	Kids []*quickTree `json:"kids,omitempty" jsonschema:"maxItems=3"`
}

// quickSchemas are, for each inbound type of the differential fuzzer and
// each reflector, the endpoint's schemas (quick check in front) and the
// same schemas with only the full validator.
var quickSchemas = sync.OnceValue(func() (pairs []quickPair) {
	for _, r := range []*jsonschema.Reflector{new(jsonschema.Reflector), {AllowAdditionalProperties: true}} {
		for _, in := range []any{new(fuzzIn), new(quickIn), new(benchMsg)} {
			s, err := compileSchemas(r, in, in)
			if err != nil {
				panic(err)
			}
			full := *s
			full.strict = strictjson.New(reflect.TypeOf(in), s.validator.Validate)
			pairs = append(pairs, quickPair{reflect.TypeOf(in).Elem(), s, &full})
		}
	}
	return pairs
})

type quickPair struct {
	t           reflect.Type
	quick, full *schemas
}

// FuzzQuickCheck decodes arbitrary bytes through the endpoint's decode
// path, where a quick check of the common keywords accepts most messages
// before the full validator, and through the full validator alone, for
// several types under both reflectors. Both must accept the same inputs,
// reject the others with the same field and reason, and fill the same Go
// value.
//
// Seeds are FuzzDecode's (testdata/fuzz/FuzzDecode) and the ones below.
// Run the fuzzer with
//
//	go test -run '^$' -fuzz '^FuzzQuickCheck$' -fuzztime 10s .
func FuzzQuickCheck(f *testing.F) {
	for _, seed := range quickSeeds {
		f.Add([]byte(seed))
	}
	files, err := filepath.Glob("testdata/fuzz/FuzzDecode/*")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds of FuzzDecode: %v", err)
	}
	for _, name := range files {
		f.Add(readSeed(f, name))
	}
	pairs := quickSchemas()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range pairs {
			got := reflect.New(p.t)
			want := reflect.New(p.t)
			gotBad := p.quick.decode(data, got.Interface())
			wantBad := p.full.decode(data, want.Interface())
			switch {
			case (gotBad == nil) != (wantBad == nil):
				t.Fatalf("%v: %q: with the quick check %v, with the full validator %v", p.t, data, gotBad, wantBad)
			case gotBad != nil && (gotBad.Field != wantBad.Field || gotBad.Reason != wantBad.Reason):
				t.Fatalf("%v: %q: rejected at %q for %q with the quick check, at %q for %q without", p.t, data, gotBad.Field, gotBad.Reason, wantBad.Field, wantBad.Reason)
			case !reflect.DeepEqual(got.Interface(), want.Interface()):
				t.Fatalf("%v: %q: decoded to %+v with the quick check, %+v without", p.t, data, got.Elem(), want.Elem())
			}
		}
	})
}

// quickSeeds are messages near the edges of quickIn's schema.
var quickSeeds = []string{
	`{"type":"a","n":0}`,
	`{"type":"b","n":-5,"odd":3,"level":2,"ratio":0.5,"small":255,"code":"ab1","name":"x"}`,
	`{"type":"c","n":1000,"odd":99,"level":3,"ratio":2.5,"code":"zz9","name":"12345678"}`,
	`{"type":"a","n":-6}`, `{"type":"a","n":1001}`, `{"type":"a","n":1e2}`, `{"type":"a","n":10.0}`,
	`{"type":"a","n":-0}`, `{"type":"a","n":99999999999999999999}`, `{"type":"a","n":1.5}`,
	`{"type":"a","n":1,"odd":0}`, `{"type":"a","n":1,"odd":100}`, `{"type":"a","n":1,"odd":4}`, `{"type":"a","n":1,"odd":3e0}`,
	`{"type":"a","n":1,"level":4}`, `{"type":"a","n":1,"level":2.0}`, `{"type":"a","n":1,"ratio":0.49}`, `{"type":"a","n":1,"ratio":1}`,
	`{"type":"a","n":1,"small":256}`, `{"type":"a","n":1,"small":-1}`,
	`{"type":"a","n":1,"code":"AB1"}`, `{"type":"a","n":1,"code":"ab12"}`, `{"type":"a","n":1,"name":""}`, `{"type":"a","n":1,"name":"ééééééééé"}`,
	`{"type":"a","n":1,"at":"2026-11-28T10:00:00Z"}`, `{"type":"a","n":1,"at":"2026-13-28T10:00:00Z"}`, `{"type":"a","n":1,"at":5}`,
	`{"type":"a","n":1,"flag":true}`, `{"type":"a","n":1,"flag":null}`, `{"type":"a","n":1,"flag":"true"}`,
	`{"type":"a","n":1,"blob":"aGVsbG8="}`, `{"type":"a","n":1,"blob":"not base64!"}`,
	`{"type":"a","n":1,"nums":[]}`, `{"type":"a","n":1,"nums":[1,2,3,4]}`, `{"type":"a","n":1,"nums":[1,2,3,4,5]}`, `{"type":"a","n":1,"nums":[1,"2"]}`,
	`{"type":"a","n":1,"labels":{"k":"v"}}`, `{"type":"a","n":1,"labels":{"k":1}}`,
	`{"type":"a","n":1,"either":"s"}`, `{"type":"a","n":1,"either":7}`, `{"type":"a","n":1,"either":true}`,
	`{"type":"a","n":1,"tree":{"v":"r","kids":[{"v":"a"},{"v":"b","kids":[{"v":"toolong"}]}]}}`,
	`{"type":"a","n":1,"tree":{"v":"r","kids":[{"v":"a"},{"v":"b"},{"v":"c"},{"v":"d"}]}}`,
	`{"type":"a","n":1,"tree":{"v":"r","kids":[null]}}`,
	`{"type":"a","n":1,"extra":1}`, `{"type":"d","n":1}`, `{"n":1}`, `{"type":"a"}`, `{"type":null,"n":1}`,
	`{"type":"message","username":"alice","content":"hello, room","timestamp":"2026-11-28T10:00:00.000Z"}`,
	`{"type":"message","text":"hello","seq":1,"sent":1764324000000000}`,
	`{"type":"a","N":1}`, `{"type":"a","n":1,"n":2}`, `[]`, `null`, `"a"`, `1`,
}

// readSeed returns the input of a seed file of a []byte fuzz target.
func readSeed(f *testing.F, name string) []byte {
	b, err := os.ReadFile(name)
	if err != nil {
		f.Fatal(err)
	}
	lines := strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)
	lit, ok := strings.CutPrefix(lines[len(lines)-1], "[]byte(")
	if ok {
		lit, ok = strings.CutSuffix(lit, ")")
	}
	s, err := strconv.Unquote(lit)
	if !ok || err != nil || lines[0] != "go test fuzz v1" {
		f.Fatalf("%s is not a seed of a []byte target", name)
	}
	return []byte(s)
}

// TestQuickCheckAcceptsValidMessagesItself: the differential fuzzer would
// pass if the quick check accepted nothing. Valid messages of each type,
// fields left to the full validator included, must pass the quick check
// without falling back to the full validator at the top.
func TestQuickCheckAcceptsValidMessagesItself(t *testing.T) {
	valid := map[reflect.Type][]string{
		reflect.TypeFor[benchMsg](): {string(inbound)},
		reflect.TypeFor[quickIn](): {
			`{"type":"a","n":0}`,
			`{"type":"b","n":-5,"odd":3,"level":2,"ratio":0.5,"small":255,"code":"ab1","name":"x","at":"2026-11-28T10:00:00Z","flag":true,` +
				`"blob":"aGVsbG8=","nums":[1],"labels":{"k":"v"},"either":7,"tree":{"v":"r","kids":[{"v":"a","kids":[]}]}}`,
		},
		reflect.TypeFor[fuzzIn](): {
			`{"type":"move","seq":1,"score":12.5,"text":"hi","email":"a@b.co","when":"2024-01-02T03:04:05Z","tags":["x","y"],` +
				`"pos":{"x":1,"y":2,"child":{"x":3,"y":4}},"items":[{"name":"n","qty":3,"kind":"a"}],"meta":{"a":1}}`,
		},
	}
	for _, p := range quickSchemas() {
		quick, ok := fastschema.Compile(p.quick.validator)
		if !ok {
			t.Fatalf("%v: the schema has no quick check", p.t)
		}
		for _, msg := range valid[p.t] {
			doc, bad := parseStrictly([]byte(msg))
			if bad != nil {
				t.Fatal(bad.Reason)
			}
			if !quick.Accepts(doc) {
				t.Errorf("%v: the quick check does not accept %s", p.t, msg)
			}
			if err := p.quick.validator.Validate(doc); err != nil {
				t.Errorf("%v: %s is not valid: %v", p.t, msg, err)
			}
		}
	}
}
