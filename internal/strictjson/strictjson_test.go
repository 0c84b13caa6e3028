package strictjson

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestDecodeLendsTheTreeToTheValidator(t *testing.T) {
	var got any
	d := New(reflect.TypeFor[foldIn](), func(doc any) error {
		got = doc
		return errKept
	})
	bad, err := d.Decode([]byte(`{"type":"x","pos":{"x":1},"items":[{"name":"a"}]}`))
	if bad != nil || err != errKept {
		t.Fatalf("refusal %v, error %v; want the validator's error", bad, err)
	}
	want := map[string]any{
		"type":  "x",
		"pos":   map[string]any{"x": json.Number("1")},
		"items": []any{map[string]any{"name": "a"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the validator got %#v, want %#v", got, want)
	}
}

func TestDecodeRefusesBeforeTheValidatorRuns(t *testing.T) {
	d := New(reflect.TypeFor[foldIn](), func(doc any) error {
		t.Errorf("the validator ran on %#v", doc)
		return nil
	})
	for _, in := range []string{`{"type":1,"type":2}`, `{"TYPE":1}`, `{`, `[`} {
		if bad, err := d.Decode([]byte(in)); bad == nil || err != nil {
			t.Errorf("%s: refusal %v, error %v; want a refusal", in, bad, err)
		}
	}
}

func TestDecodeWithoutTypeChecksNoKeys(t *testing.T) {
	d := New(nil, func(any) error { return nil })
	if bad, err := d.Decode([]byte(`{"TYPE":1,"Type":2}`)); bad != nil || err != nil {
		t.Fatalf("refusal %v, error %v", bad, err)
	}
}

var errKept = errors.New("tree kept by the test")
