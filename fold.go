package wsroom

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// encoding/json fills a struct field from any key equal to its name under
// Unicode case folding ("TYPE", "Type", "\u212aind" for "kind"), while the
// validator matches keys exactly. Where the schema admits unknown keys
// (AllowAdditionalProperties, maps), a key that is not a field's name but
// folds to one would reach the field unvalidated. foldGuard refuses such
// keys, walking the message beside the Go type it will fill.

// fieldNames are the JSON names of a struct type's fields, promoted ones
// included, with the type each fills.
type fieldNames map[string]reflect.Type

var structNames sync.Map // reflect.Type → fieldNames

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// foldGuard reports the first key of v that differs only in case from a
// field name of the struct it fills in t.
func foldGuard(v any, t reflect.Type) *InvalidMessageError {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		names := namesOf(t)
		if names == nil {
			return nil // it decodes itself
		}
		for key, val := range obj {
			if ft, ok := names[key]; ok {
				if bad := foldGuard(val, ft); bad != nil {
					return bad.under(key)
				}
				continue
			}
			for name := range names {
				if strings.EqualFold(key, name) {
					return &InvalidMessageError{Field: "/" + pointerEscaper.Replace(key),
						Reason: fmt.Sprintf("key %q differs only in case from field %q", key, name)}
				}
			}
		}
	case reflect.Map:
		if obj, ok := v.(map[string]any); ok && !decodesItself(t) {
			for key, val := range obj {
				if bad := foldGuard(val, t.Elem()); bad != nil {
					return bad.under(key)
				}
			}
		}
	case reflect.Slice, reflect.Array:
		if arr, ok := v.([]any); ok && !decodesItself(t) {
			for i, val := range arr {
				if bad := foldGuard(val, t.Elem()); bad != nil {
					return bad.under(fmt.Sprint(i))
				}
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

// namesOf returns the field names of struct type t, computed once; nil when
// t decodes itself.
func namesOf(t reflect.Type) fieldNames {
	if n, ok := structNames.Load(t); ok {
		return n.(fieldNames)
	}
	var names fieldNames
	if !decodesItself(t) {
		names = fieldNames{}
		collectNames(t, names, map[reflect.Type]bool{})
	}
	structNames.Store(t, names)
	return names
}

// collectNames follows encoding/json's naming: exported fields, the name in
// the json tag or else the field's, "-" skipped, untagged embedded structs
// promoted. Where encoding/json would hide a conflicting name, keeping it
// only makes the guard stricter.
func collectNames(t reflect.Type, names fieldNames, seen map[reflect.Type]bool) {
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
				collectNames(et, names, seen)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names[name] = ft
	}
}
