package fastschema

import (
	"encoding/json"
	"strings"
	"testing"

	jsv "github.com/santhosh-tekuri/jsonschema/v6"
)

// compile compiles a draft 2020-12 schema with formats and content
// asserted, as wsroom does.
func compile(t testing.TB, schema string) *jsv.Schema {
	t.Helper()
	doc, err := jsv.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsv.NewCompiler()
	c.AssertFormat()
	c.AssertContent()
	c.DefaultDraft(jsv.Draft2020)
	if err := c.AddResource("test:///s.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("test:///s.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func instance(t testing.TB, v string) any {
	t.Helper()
	doc, err := jsv.UnmarshalJSON(strings.NewReader(v))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// chatSchema is invopop's schema of a chat message, as wsroom compiles it.
const chatSchema = `{"$ref":"#/$defs/In","$defs":{"In":{"type":"object",
	"properties":{"type":{"type":"string","enum":["message","typing"]},
	"text":{"type":"string","maxLength":10},"seq":{"type":"integer"},
	"sent":{"type":"integer","minimum":0}},
	"additionalProperties":false,"required":["type","text","seq","sent"]}}}`

// TestAcceptsOnlyWhatTheValidatorAccepts checks, for each case, that
// Accepts says what it is meant to say (true: checked and passed; false:
// failed, or left to the full validator) and that whatever it accepts
// the full validator accepts too.
func TestAcceptsOnlyWhatTheValidatorAccepts(t *testing.T) {
	for _, tc := range []struct {
		schema, doc string
		accepts     bool
	}{
		{chatSchema, `{"type":"message","text":"hi","seq":1,"sent":2}`, true},
		{chatSchema, `{"type":"typing","text":"ééééééééé","seq":-0,"sent":0}`, true},
		{chatSchema, `{"type":"shout","text":"hi","seq":1,"sent":2}`, false},
		{chatSchema, `{"type":"message","text":"hello world","seq":1,"sent":2}`, false},
		{chatSchema, `{"type":"message","text":"hi","seq":1.5,"sent":2}`, false},
		{chatSchema, `{"type":"message","text":"hi","seq":1.0,"sent":2}`, true}, // an integer to JSON Schema
		{chatSchema, `{"type":"message","text":"hi","seq":1,"sent":-1}`, false},
		{chatSchema, `{"type":"message","text":"hi","seq":1}`, false},
		{chatSchema, `{"type":"message","text":"hi","seq":1,"sent":2,"x":0}`, false},
		{chatSchema, `{"type":"message","text":7,"seq":1,"sent":2}`, false},
		{chatSchema, `[]`, false},
		{`{"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":10,"multipleOf":3}`, `9`, true},
		{`{"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":10,"multipleOf":3}`, `0`, false},
		{`{"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":10,"multipleOf":3}`, `4`, false},
		{`{"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":10,"multipleOf":3}`, `12`, false},
		{`{"type":"integer","maximum":5}`, `99999999999999999999`, false},
		{`{"type":"number","minimum":0.5}`, `0.75`, true}, // a bound that is not an integer: left to the full validator
		{`{"type":"number","minimum":-1000,"maximum":1000}`, `12.5`, true},
		{`{"type":"number","minimum":-1000,"maximum":1000}`, `-0.5`, true},
		{`{"type":"number","minimum":-1000,"maximum":1000}`, `-999.999`, true},
		{`{"type":"number","minimum":-1000,"maximum":1000}`, `1000.0000000000000001`, false},
		{`{"type":"number","minimum":-1000,"maximum":1000}`, `-1000.0000000000000001`, false},
		{`{"type":"number","minimum":-1000,"maximum":1000}`, `1000.000`, true},
		{`{"type":"number","minimum":-1000,"maximum":1000}`, `1e2`, false}, // an exponent: left to the full validator
		{`{"type":"number","exclusiveMinimum":1,"exclusiveMaximum":2}`, `1.5`, true},
		{`{"type":"number","exclusiveMinimum":1,"exclusiveMaximum":2}`, `1.0`, false},
		{`{"type":"number","exclusiveMinimum":1,"exclusiveMaximum":2}`, `2.00`, false},
		{`{"type":"number","exclusiveMinimum":-2,"exclusiveMaximum":-1}`, `-1.5`, true},
		{`{"type":"number","exclusiveMinimum":-2,"exclusiveMaximum":-1}`, `-2.5`, false},
		{`{"type":"number","multipleOf":3}`, `-6.0`, true},
		{`{"type":"number","multipleOf":3}`, `6.5`, false},
		{`{"type":"integer"}`, `2.000`, true},
		{`{"type":"integer"}`, `-0.01`, false},
		{`{"type":"string","pattern":"^[a-z]+$","minLength":2}`, `"ab"`, true},
		{`{"type":"string","pattern":"^[a-z]+$","minLength":2}`, `"a"`, false},
		{`{"type":"string","pattern":"^[a-z]+$","minLength":2}`, `"aB"`, false},
		{`{"type":"string","format":"date-time"}`, `"2026-11-28T10:00:00Z"`, true},
		{`{"type":"string","format":"date-time"}`, `"2026-13-28T10:00:00Z"`, false},
		{`{"type":["string","null"],"const":null}`, `null`, true},
		{`{"const":"x"}`, `"y"`, false},
		{`{"enum":[1,2]}`, `2`, true}, // a numeric enum: left to the full validator
		{`{"enum":[1,2]}`, `3`, false},
		{`{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"integer"},"minItems":1,"maxItems":3}`, `["a",1,2]`, true},
		{`{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"integer"},"minItems":1,"maxItems":3}`, `[1]`, false},
		{`{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"integer"},"minItems":1,"maxItems":3}`, `["a",1,2,3]`, false},
		{`{"type":"array","uniqueItems":true}`, `[1,2]`, true}, // uniqueItems: left to the full validator
		{`{"type":"array","uniqueItems":true}`, `[1,1.0]`, false},
		{`{"type":"object","additionalProperties":{"type":"string"},"minProperties":1,"maxProperties":2}`, `{"a":"x"}`, true},
		{`{"type":"object","additionalProperties":{"type":"string"},"minProperties":1,"maxProperties":2}`, `{}`, false},
		{`{"type":"object","additionalProperties":{"type":"string"},"minProperties":1,"maxProperties":2}`, `{"a":1}`, false},
		{`{"properties":{"v":{"oneOf":[{"type":"string"},{"type":"integer"}]}}}`, `{"v":3}`, true},
		{`{"properties":{"v":{"oneOf":[{"type":"string"},{"type":"integer"}]}}}`, `{"v":true}`, false},
		{`{"$defs":{"T":{"type":"object","properties":{"kids":{"type":"array","items":{"$ref":"#/$defs/T"}},"v":{"type":"string"}}}},"$ref":"#/$defs/T"}`, `{"v":"a","kids":[{"v":"b","kids":[{}]}]}`, true},
		{`{"$defs":{"T":{"type":"object","properties":{"kids":{"type":"array","items":{"$ref":"#/$defs/T"}},"v":{"type":"string"}}}},"$ref":"#/$defs/T"}`, `{"v":"a","kids":[{"v":"b","kids":[{"v":1}]}]}`, false},
		{`false`, `1`, false},
		{`true`, `{"any":[1]}`, true},
	} {
		s := compile(t, tc.schema)
		c, ok := Compile(s)
		if !ok {
			t.Fatalf("%s: not compiled", tc.schema)
		}
		doc := instance(t, tc.doc)
		got := c.Accepts(doc)
		if got != tc.accepts {
			t.Errorf("%s on %s: Accepts is %v, want %v", tc.schema, tc.doc, got, tc.accepts)
		}
		if err := s.Validate(doc); got && err != nil {
			t.Errorf("%s on %s: accepted, but the full validator refuses it: %v", tc.schema, tc.doc, err)
		}
	}
}

// TestCompileRefusesSchemasThatCannotBeCheckedInParts: a $dynamicRef
// means what the path to it says, and drafts before 2020-12 read items and
// $ref otherwise.
func TestCompileRefusesSchemasThatCannotBeCheckedInParts(t *testing.T) {
	for _, schema := range []string{
		`{"$dynamicAnchor":"n","properties":{"kids":{"items":{"$dynamicRef":"#n"}}}}`,
		`{"$schema":"http://json-schema.org/draft-07/schema#","items":{"type":"string"}}`,
	} {
		if _, ok := Compile(compile(t, schema)); ok {
			t.Errorf("%s: compiled", schema)
		}
	}
}

// TestAcceptingAChatMessageAllocatesNothing: the quick check is meant for
// every inbound message.
func TestAcceptingAChatMessageAllocatesNothing(t *testing.T) {
	c, _ := Compile(compile(t, chatSchema))
	doc := map[string]any{"type": "message", "text": "hello", "seq": json.Number("41"), "sent": json.Number("1764324000000000")}
	if allocs := testing.AllocsPerRun(100, func() {
		if !c.Accepts(doc) {
			t.Fatal("refused")
		}
	}); allocs != 0 {
		t.Fatalf("Accepts allocates %v objects per message, want 0", allocs)
	}
}
