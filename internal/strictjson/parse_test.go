package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseMessage checks parseMessage against encoding/json. Whatever the
// input:
//   - it is accepted exactly when referenceParse accepts it (json.Valid,
//     and no repeated key, deep nesting or unfit number), and the tree is
//     the one json.Decoder with UseNumber builds, sharing no byte with the
//     input;
//   - a refusal of shape (repeated key, depth, number) has referenceParse's
//     Field and Reason;
//   - a syntax error has no Field and encoding/json's message, at the byte
//     where encoding/json stops.
//
// Run it with
//
//	go test -run '^$' -fuzz '^FuzzParseMessage$' -fuzztime 3m ./internal/strictjson
func FuzzParseMessage(f *testing.F) {
	for _, seed := range parseSeeds() {
		f.Add([]byte(seed))
	}
	f.Fuzz(checkParse)
}

func parseSeeds() []string {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	deepObj := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	return []string{
		``, ` `, "\t\r\n", `null`, `true`, `false`, `0`, `-0`, `-0.0e-0`, `1E+2`, `1e-2`, `1.5`, `-`, `01`, `1.`, `.5`, `1e`, `1e+`, `+1`, `0x10`,
		`""`, `"abc"`, `{}`, `[]`, ` [ ] `, `{ }`, `[1,2,3]`, `[1,]`, `[,1]`, `{"a":1,}`, `{,}`, `{1:2}`, `{"a" 1}`, `{"a":1 "b":2}`, `[1 2]`,
		`{"type":"message","username":"alice","content":"hello, room","timestamp":"2026-11-28T10:00:00.000Z"}`,
		`"\"\\\/\b\f\n\r\t"`, `"\u0000"`, `"\u00e9\u00E9"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00"`, `"\ud83d\u0041"`, `"\ud83d\ud83d\ude00"`,
		`"\ud83dx"`, `"\ud83d\"`, `"\ud83d\u12"`, `"\ud83d\uzzzz"`, `"\u12"`, `"\u12g4"`, `"\x"`, `"\'"`, `"\`, `"abc`, "\"a\x01b\"", "\"a\x7fb\"",
		"\"\xff\"", "\"\xc3\xa9\"", "\"\xc3\"", "\"\xed\xa0\x80\"", "\"\xef\xbf\xbd\"", "\"\xf4\x90\x80\x80\"", "\xef\xbb\xbf{}", "\xc3\xa9",
		`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"a":{"b":1,"b":2}}`, `{"a":[{"b":1},{"c":1,"c":{}}]}`, `{"a/b~c":{"x":1,"x":1}}`,
		`{"a":1,"a":[[[`, `{"a":1} x`, `{"a":1}}`, `[1] [2]`, `1 2`, `"a" "b"`, `nul`, `nulx`, `truex`, `tru`, `fals`, `not json`, `[tru]`,
		`{"\ud800":1,"\udfff":2}`, `{"\ud800":1,"\udbff":2}`, `{"\ud800":1,"\ufffd":2}`,
		deep(maxDepth), deep(maxDepth + 1), deepObj(maxDepth), deepObj(maxDepth + 1), `{"a":` + deep(maxDepth) + `}`,
		strings.Repeat("9", maxNumberLen), strings.Repeat("9", maxNumberLen+1), "[" + strings.Repeat("1", maxNumberLen+1) + "x",
		`1e308`, `1e309`, `-1e309`, `1e-400`, `1e-401`, `1e400`, `1e401`, `0e999`, `1e99999999999999999999`, `[1,1e500]`, `{"n":{"m":1e500}}`,
		`0.` + strings.Repeat("0", 97) + `1`, `1` + strings.Repeat("0", 99), `123456789012345678901234567890`,
		`[[],{},"",0,false,null]`, `{"":""}`, `{"":1,"":2}`, "{\"\xff\":1,\"\xfe\":2}", "{\"\xff\":1,\"\ufffd\":2}", "\v1", "\f1", "\u00a01",
		`["` + strings.Repeat("\xff", 300) + `","a\u00e9b",["` + strings.Repeat("\xc3\xa9\xff", 100) + `"],"` + strings.Repeat("\\u00ff", 50) + `"]`,
	}
}

func checkParse(t *testing.T, data []byte) {
	want, wantBad := referenceParse(data)
	in := bytes.Clone(data)
	got, bad := parseMessage(in)
	for i := range in {
		in[i] = '#' // the caller may reuse the input once Decode returns
	}
	switch {
	case bad == nil && wantBad != nil:
		t.Fatalf("%q: accepted as %#v, want %q", data, got, wantBad.Reason)
	case bad != nil && wantBad == nil:
		t.Fatalf("%q: refused (%q), want %#v", data, bad.Reason, want)
	case bad == nil:
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %#v, want %#v", data, got, want)
		}
		var v any
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		if err := d.Decode(&v); err != nil || !json.Valid(data) || !reflect.DeepEqual(got, v) {
			t.Fatalf("%q: got %#v, encoding/json decodes %#v (%v)", data, got, v, err)
		}
	case wantBad.Err == nil:
		if bad.Field != wantBad.Field || bad.Reason != wantBad.Reason || bad.Err != nil {
			t.Fatalf("%q: refused with %q at %q (%v), want %q at %q", data, bad.Reason, bad.Field, bad.Err, wantBad.Reason, wantBad.Field)
		}
	default:
		var se *json.SyntaxError
		if err := json.Unmarshal(data, new(json.RawMessage)); !errors.As(err, &se) {
			t.Fatalf("%q: encoding/json finds no syntax error, but %v", data, err)
		}
		if bad.Field != "" || bad.Err == nil {
			t.Fatalf("%q: syntax error %q at %q with error %v", data, bad.Reason, bad.Field, bad.Err)
		}
		// At the end of the input encoding/json's scanner reads a space,
		// which json.Decoder reports as the end.
		atEnd := se.Offset == int64(len(data)) && strings.HasPrefix(se.Error(), "invalid character ' '") && !bytes.HasSuffix(data, []byte(" "))
		if atEnd || se.Error() == "unexpected end of JSON input" {
			if bad.Reason != "invalid JSON: unexpected EOF" || bad.Err != io.ErrUnexpectedEOF {
				t.Fatalf("%q: refused with %q (%v), want unexpected EOF", data, bad.Reason, bad.Err)
			}
			return
		}
		if bad.Reason != "invalid JSON: "+se.Error() || bad.Err.Error() != fmt.Sprintf("%s at offset %d", se, se.Offset-1) {
			t.Fatalf("%q: refused with %q (%v), want encoding/json's %q at offset %d", data, bad.Reason, bad.Err, se, se.Offset-1)
		}
	}
}

// referenceParse is parseMessage built on encoding/json's tokenizer, as it
// was: it decides acceptance and builds the tree with encoding/json, and
// words refusals of shape. Its syntax errors carry encoding/json's error,
// not its wording, which FuzzParseMessage takes from json.Unmarshal.
func referenceParse(data []byte) (any, *Rejection) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	v, bad := referenceValue(d, 0)
	if bad != nil {
		return nil, bad
	}
	if _, err := d.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the top-level value")
		}
		return nil, referenceSyntaxError(err)
	}
	return v, nil
}

func referenceValue(d *json.Decoder, depth int) (any, *Rejection) {
	tok, err := d.Token()
	if err != nil {
		return nil, referenceSyntaxError(err)
	}
	switch tok := tok.(type) {
	case json.Delim:
		if depth == maxDepth {
			return nil, &Rejection{Reason: fmt.Sprintf("nested deeper than %d levels", maxDepth)}
		}
		if tok == '[' {
			return referenceArray(d, depth+1)
		}
		return referenceObject(d, depth+1)
	case json.Number:
		if len(tok) > maxNumberLen {
			return nil, &Rejection{Reason: fmt.Sprintf("number longer than %d characters", maxNumberLen)}
		}
		if !numberInRange(string(tok)) {
			return nil, &Rejection{Reason: "number out of range"}
		}
		return tok, nil
	default:
		return tok, nil // string, bool or nil
	}
}

func referenceObject(d *json.Decoder, depth int) (any, *Rejection) {
	obj := make(map[string]any)
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, referenceSyntaxError(err)
		}
		key := tok.(string) // the decoder allows nothing else here
		if _, dup := obj[key]; dup {
			return nil, &Rejection{Field: "/" + pointerEscaper.Replace(key), Reason: fmt.Sprintf("key %q appears twice", key)}
		}
		v, bad := referenceValue(d, depth)
		if bad != nil {
			return nil, bad.under(key)
		}
		obj[key] = v
	}
	if _, err := d.Token(); err != nil { // '}'
		return nil, referenceSyntaxError(err)
	}
	return obj, nil
}

func referenceArray(d *json.Decoder, depth int) (any, *Rejection) {
	arr := []any{}
	for d.More() {
		v, bad := referenceValue(d, depth)
		if bad != nil {
			return nil, bad.under(strconv.Itoa(len(arr)))
		}
		arr = append(arr, v)
	}
	if _, err := d.Token(); err != nil { // ']'
		return nil, referenceSyntaxError(err)
	}
	return arr, nil
}

func referenceSyntaxError(err error) *Rejection {
	return &Rejection{Reason: "invalid JSON: " + err.Error(), Err: err}
}

func TestParseMessageSeeds(t *testing.T) {
	for _, seed := range parseSeeds() {
		checkParse(t, []byte(seed))
	}
}

func TestParseMessageRefusals(t *testing.T) {
	deep := strings.Repeat("[", maxDepth) + "{}" + strings.Repeat("]", maxDepth)
	cases := []struct {
		in, field, reason string
		syntax            bool
	}{
		{`{"a":1,"a":2}`, "/a", `key "a" appears twice`, false},
		{`{"a":1,"\u0061":2}`, "/a", `key "a" appears twice`, false},
		{`{"x":[0,{"a/b~c":1,"a/b~c":[[[`, "/x/1/a~1b~0c", `key "a/b~c" appears twice`, false},
		{`{"x":[0,1,` + deep + `]}`, "/x/2" + strings.Repeat("/0", maxDepth-2), "nested deeper than 64 levels", false},
		{`{"n":` + strings.Repeat("1", maxNumberLen+1) + `}`, "/n", "number longer than 100 characters", false},
		{`[1e309]`, "/0", "number out of range", false},
		{`{"a":[1,1e-401]}`, "/a/1", "number out of range", false},
		{``, "", "invalid JSON: unexpected EOF", true},
		{`{"a":[1,`, "", "invalid JSON: unexpected EOF", true},
		{`"\u12`, "", "invalid JSON: unexpected EOF", true},
		{`not json`, "", "invalid JSON: invalid character 'o' in literal null (expecting 'u')", true},
		{`{"a":[1 2]}`, "", "invalid JSON: invalid character '2' after array element", true},
		{`{"a":1} x`, "", "invalid JSON: invalid character 'x' after top-level value", true},
		{"{\"a\":\"\n\"}", "", `invalid JSON: invalid character '\n' in string literal`, true},
		{`"\ud800\u12x4"`, "", `invalid JSON: invalid character 'x' in \u hexadecimal character escape`, true},
		{"\xef\xbb\xbf{}", "", "invalid JSON: invalid character 'ï' looking for beginning of value", true},
	}
	for _, tc := range cases {
		_, bad := parseMessage([]byte(tc.in))
		if bad == nil {
			t.Errorf("%q: accepted", tc.in)
			continue
		}
		if bad.Field != tc.field || bad.Reason != tc.reason || (bad.Err != nil) != tc.syntax {
			t.Errorf("%q: refused at %q with %q (error %v), want %q at %q", tc.in, bad.Field, bad.Reason, bad.Err, tc.reason, tc.field)
		}
	}
}

// inbound is the message of the root package's BenchmarkDecode.
var inbound = []byte(`{"type":"message","username":"alice","content":"hello, room","timestamp":"2026-11-28T10:00:00.000Z"}`)

// BenchmarkParseMessage compares parseMessage with referenceParse and with
// the tree json.Decoder builds, on the message of BenchmarkDecode.
func BenchmarkParseMessage(b *testing.B) {
	b.Run("parseMessage", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, bad := parseMessage(inbound); bad != nil {
				b.Fatal(bad)
			}
		}
	})
	b.Run("Token", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, bad := referenceParse(inbound); bad != nil {
				b.Fatal(bad)
			}
		}
	})
	b.Run("Decoder", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var v any
			d := json.NewDecoder(bytes.NewReader(inbound))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
