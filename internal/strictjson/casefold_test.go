package strictjson

import (
	"encoding/json"
	"reflect"
	"testing"
)

// foldIn exercises every way a case-variant key could reach a field:
// directly, through a pointer, a slice, an array, a map, a promoted field
// of an embedded struct, and a recursive type.
type foldIn struct {
	Type   string             `json:"type"`
	Pos    *foldPos           `json:"pos,omitempty"`
	Items  []foldItem         `json:"items,omitempty"`
	Pair   [2]foldItem        `json:"pair"`
	ByName map[string]foldPos `json:"byName,omitempty"`
	Raw    json.RawMessage    `json:"raw,omitempty"`
	Any    any                `json:"any,omitempty"`
	Secret string             `json:"-"`
	Plain  string
	foldEmbedded
}

type foldEmbedded struct {
	Kind string `json:"kind"`
}

type foldPos struct {
	X     int      `json:"x"`
	Child *foldPos `json:"child,omitempty"`
}

type foldItem struct {
	Name string `json:"name"`
}

func TestCaseCheckRefusesKeysThatFoldToAField(t *testing.T) {
	cases := []struct{ in, field, reason string }{
		{`{"TYPE":"x"}`, "/TYPE", `key "TYPE" differs only in case from field "type"`},
		{`{"pos":{"X":1}}`, "/pos/X", `key "X" differs only in case from field "x"`},
		{`{"pos":{"child":{"child":{"cHILD":{}}}}}`, "/pos/child/child/cHILD", `key "cHILD" differs only in case from field "child"`},
		{`{"items":[{"name":"a"},{"NAME":"b"}]}`, "/items/1/NAME", `key "NAME" differs only in case from field "name"`},
		{`{"pair":[{},{"Name":"b"}]}`, "/pair/1/Name", `key "Name" differs only in case from field "name"`},
		{`{"byName":{"a/b":{"X":1}}}`, "/byName/a~1b/X", `key "X" differs only in case from field "x"`},
		{`{"KIND":"promoted"}`, "/KIND", `key "KIND" differs only in case from field "kind"`},
		{`{"plain":"untagged"}`, "/plain", `key "plain" differs only in case from field "Plain"`},
		{`{"\u212aind":"Kelvin sign"}`, "/\u212aind", "key \"\u212aind\" differs only in case from field \"kind\""},
	}
	d := New(reflect.TypeFor[foldIn](), func(any) error { return nil })
	for _, tc := range cases {
		bad, err := d.Decode([]byte(tc.in))
		if bad == nil || err != nil {
			t.Errorf("%s: refusal %v, error %v; want %q at %q", tc.in, bad, err, tc.reason, tc.field)
			continue
		}
		if bad.Field != tc.field || bad.Reason != tc.reason || bad.Err != nil {
			t.Errorf("%s: refused at %q with %q (%v), want %q at %q", tc.in, bad.Field, bad.Reason, bad.Err, tc.reason, tc.field)
		}
	}
}

func TestCaseCheckLeavesOtherKeysAlone(t *testing.T) {
	inputs := []string{
		`{"type":"x","kind":"k","Plain":"p","pos":{"x":1,"child":{"x":2}},"items":[{"name":"a"}],"pair":[{},{"name":"b"}]}`,
		`{"byName":{"X":{"x":1},"Name":{"x":2}}}`,      // map keys are not fields
		`{"raw":{"TYPE":1},"any":{"TYPE":1,"Kind":2}}`, // nothing under them is a field
		`{"Secret":"s","secret":"s","-":1,"other":1}`,  // json:"-" is no field; unknown keys are the schema's concern
		`[{"TYPE":1}]`, `"TYPE"`, `null`, // not an object where a struct goes: the schema's concern
	}
	d := New(reflect.TypeFor[foldIn](), func(any) error { return nil })
	for _, in := range inputs {
		if bad, err := d.Decode([]byte(in)); bad != nil || err != nil {
			t.Errorf("%s: refused (%v, %v)", in, bad, err)
		}
	}
}

func TestCaseCheckIsNilWhereNoFieldCanBeFilled(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeFor[string](),
		reflect.TypeFor[[]int](),
		reflect.TypeFor[map[string]any](),
		reflect.TypeFor[*json.RawMessage](),
		reflect.TypeFor[[]json.RawMessage](),
	} {
		if cc := caseCheckFor(typ); cc != nil {
			t.Errorf("%v: a check of %+v, want none", typ, *cc)
		}
	}
}

// FuzzCaseCheck checks the case check against encoding/json: whatever the
// input, when the Decoder of foldIn accepts it, encoding/json fills a
// foldIn from it exactly as from the same tree with every key that is not
// exactly a field's name removed. No key reaches a field by folding.
//
// Run it with
//
//	go test -run '^$' -fuzz '^FuzzCaseCheck$' -fuzztime 1m ./internal/strictjson
func FuzzCaseCheck(f *testing.F) {
	for _, seed := range []string{
		`{"type":"x","kind":"k","Plain":"p","pos":{"x":1,"child":{"x":2}},"items":[{"name":"a"}],"pair":[{},{"name":"b"}]}`,
		`{"TYPE":"x"}`, `{"pos":{"child":{"cHILD":{"x":1}}}}`, `{"items":[{"NAME":"b"}]}`, `{"byName":{"X":{"X":1}}}`,
		`{"KIND":"k"}`, `{"plain":"p"}`, `{"\u212aind":"k"}`, `{"\u017fecret":1,"any":{"TYPE":1}}`, `{"pos":5}`, `[]`, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var tree any
		d := New(reflect.TypeFor[foldIn](), func(doc any) error {
			tree = doc
			return errKept
		})
		if bad, _ := d.Decode(data); bad != nil {
			return
		}
		var got, want foldIn
		if err := json.Unmarshal(data, &got); err != nil {
			return // not a foldIn: the schema's concern
		}
		exact, err := json.Marshal(exactKeys(reflect.TypeFor[foldIn](), tree))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(exact, &want); err != nil {
			t.Fatalf("%q fills a foldIn, %s does not: %v", data, exact, err)
		}
		// Raw keeps its bytes as written; compare what they say.
		var gotRaw, wantRaw any
		_ = json.Unmarshal(got.Raw, &gotRaw)
		_ = json.Unmarshal(want.Raw, &wantRaw)
		got.Raw, want.Raw = nil, nil
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotRaw, wantRaw) {
			t.Fatalf("%q was accepted, and fills a foldIn as %+v; its exact keys (%s) as %+v", data, got, exact, want)
		}
	})
}

// exactKeys returns the tree v, which fills a value of type t, without the
// keys that are not exactly the name of a field of the struct they fill.
func exactKeys(t reflect.Type, v any) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if decodesItself(t) {
		return v
	}
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for key, e := range v {
			switch t.Kind() {
			case reflect.Struct:
				if ft, ok := fieldsOf(t)[key]; ok {
					out[key] = exactKeys(ft, e)
				}
			case reflect.Map:
				out[key] = exactKeys(t.Elem(), e)
			default:
				return v
			}
		}
		return out
	case []any:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return v
		}
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = exactKeys(t.Elem(), e)
		}
		return out
	}
	return v
}
