package wsroom

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
// folds to one would reach the field unvalidated. A keyGuard refuses such
// keys, walking the message beside the Go type it will fill.

// keyGuard is the check of one Go type, built once per endpoint; nil where
// nothing a folded key could fill lies under the type (scalars, interfaces,
// types that decode themselves).
type keyGuard struct {
	// fields, for a struct, maps the JSON name of each field (promoted ones
	// included) to the guard of the field's type.
	fields map[string]*keyGuard
	// elem, for a map, slice or array, is the guard of its elements.
	elem *keyGuard
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// guardFor builds the guard of the values of type t.
func guardFor(t reflect.Type) *keyGuard {
	return buildGuard(t, map[reflect.Type]*keyGuard{})
}

// buildGuard builds the guard of t; built holds the guards already built
// or being built, so that a recursive type refers to its own guard.
func buildGuard(t reflect.Type, built map[reflect.Type]*keyGuard) *keyGuard {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if g, ok := built[t]; ok {
		return g
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Slice, reflect.Array:
	default:
		return nil
	}
	if decodesItself(t) {
		return nil
	}
	g := new(keyGuard)
	built[t] = g
	if t.Kind() == reflect.Struct {
		g.fields = map[string]*keyGuard{}
		for name, ft := range fieldsOf(t) {
			g.fields[name] = buildGuard(ft, built)
		}
		return g
	}
	// A container of values that need no guard needs none either; nothing
	// refers to g then, as only a type containing t could.
	if g.elem = buildGuard(t.Elem(), built); g.elem == nil {
		built[t] = nil
		return nil
	}
	return g
}

// check reports the first key of v that differs only in case from a field
// name of the struct it fills.
func (g *keyGuard) check(v any) *InvalidMessageError {
	if g.fields == nil {
		switch v := v.(type) {
		case map[string]any:
			for key, e := range v {
				if bad := g.elem.check(e); bad != nil {
					return bad.under(key)
				}
			}
		case []any:
			for i, e := range v {
				if bad := g.elem.check(e); bad != nil {
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
		if fg, ok := g.fields[key]; ok {
			if fg != nil {
				if bad := fg.check(val); bad != nil {
					return bad.under(key)
				}
			}
			continue
		}
		for name := range g.fields {
			if strings.EqualFold(key, name) {
				return (&InvalidMessageError{Reason: fmt.Sprintf("key %q differs only in case from field %q", key, name)}).under(key)
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
// keeping it only makes the guard stricter.
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
