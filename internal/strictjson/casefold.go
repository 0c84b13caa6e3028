package strictjson

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// encoding/json fills a struct field from any key equal to its name under
// Unicode case folding ("TYPE", "Type", "\u212aind" for "kind"), while the
// validator matches keys exactly. Where the schema admits unknown keys
// (AllowAdditionalProperties, maps), a key that is not a field's name but
// folds to one would reach the field unvalidated. A caseCheck refuses such
// keys, walking the message beside the Go type it will fill.

// caseCheck is the check of one Go type, built once per Decoder; nil where
// nothing a folded key could fill lies under the type (scalars, interfaces,
// types that decode themselves).
type caseCheck struct {
	// fields, for a struct, maps the JSON name of each field (promoted ones
	// included) to the check of the field's type.
	fields map[string]*caseCheck
	// elem, for a map, slice or array, is the check of its elements.
	elem *caseCheck
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// caseCheckFor builds the check of the values of type t.
func caseCheckFor(t reflect.Type) *caseCheck {
	return buildCaseCheck(t, map[reflect.Type]*caseCheck{})
}

// buildCaseCheck builds the check of t; built holds the checks already
// built or being built, so that a recursive type refers to its own check.
func buildCaseCheck(t reflect.Type, built map[reflect.Type]*caseCheck) *caseCheck {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if cc, ok := built[t]; ok {
		return cc
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Slice, reflect.Array:
	default:
		return nil
	}
	if decodesItself(t) {
		return nil
	}
	cc := new(caseCheck)
	built[t] = cc
	if t.Kind() == reflect.Struct {
		cc.fields = map[string]*caseCheck{}
		for name, ft := range fieldsOf(t) {
			cc.fields[name] = buildCaseCheck(ft, built)
		}
		return cc
	}
	// A container of values that need no check needs none either; nothing
	// refers to cc then, as only a type containing t could.
	if cc.elem = buildCaseCheck(t.Elem(), built); cc.elem == nil {
		built[t] = nil
		return nil
	}
	return cc
}

// check reports the first key of v that differs only in case from a field
// name of the struct it fills.
func (cc *caseCheck) check(v any) *Rejection {
	if cc.fields == nil {
		switch v := v.(type) {
		case map[string]any:
			for key, e := range v {
				if bad := cc.elem.check(e); bad != nil {
					return bad.under(key)
				}
			}
		case []any:
			for i, e := range v {
				if bad := cc.elem.check(e); bad != nil {
					return bad.under(strconv.Itoa(i))
				}
			}
		}
		return nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	for key, val := range obj {
		if fc, ok := cc.fields[key]; ok {
			if fc != nil {
				if bad := fc.check(val); bad != nil {
					return bad.under(key)
				}
			}
			continue
		}
		for name := range cc.fields {
			if strings.EqualFold(key, name) {
				return (&Rejection{Reason: fmt.Sprintf("key %q differs only in case from field %q", key, name)}).under(key)
			}
		}
	}
	return nil
}

// decodesItself reports whether t has its own JSON decoding.
func decodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(jsonUnmarshaler) || p.Implements(textUnmarshaler)
}

// fieldsOf returns the JSON names of the fields of struct type t, with the
// type each fills.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	collectFields(t, fields, map[reflect.Type]bool{})
	return fields
}

// collectFields follows encoding/json's naming: exported fields, the name
// in the json tag or else the field's, "-" skipped, untagged embedded
// structs promoted. Where encoding/json would hide a conflicting name,
// keeping it only makes the check stricter.
func collectFields(t reflect.Type, fields map[string]reflect.Type, seen map[reflect.Type]bool) {
	if seen[t] {
		return
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				collectFields(et, fields, seen)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = ft
	}
}
