// Package fastschema checks a message against the common keywords of a
// compiled JSON Schema (santhosh-tekuri/jsonschema) without the general
// validator's bookkeeping: no scope, no sub-validator and no annotations
// per value, and integers told by their literal instead of by formatting
// and parsing them into math/big. It only ever accepts: a message it does
// not accept goes to the full validator, which decides and words the
// rejection. So a fast path can only be wrong by accepting what the full
// validator would refuse, and the differential fuzz test of the wsroom
// package looks for exactly that.
//
// A keyword it does not check (oneOf, uniqueItems, contentEncoding, ...)
// leaves the value under it, and only that value, to the full validator's
// subschema.
package fastschema

import (
	"reflect"

	jsv "github.com/santhosh-tekuri/jsonschema/v6"
)

// Checker is the quick check of one compiled schema. It is safe for
// concurrent use.
type Checker struct{ root *node }

// Compile returns the Checker of s, or false when s cannot be checked in
// parts: when it refers to anything by $dynamicRef or $recursiveRef, whose
// meaning depends on the path taken to it, or is older than draft 2020-12.
func Compile(s *jsv.Schema) (*Checker, bool) {
	if s.DraftVersion < 2020 || reachesDynamic(s) {
		return nil, false
	}
	c := compiler{nodes: map[*jsv.Schema]*node{}}
	return &Checker{c.node(s)}, true
}

// Accepts reports whether doc, a tree as encoding/json decodes it with
// UseNumber (map[string]any, []any, string, json.Number, bool, nil),
// passes the schema. True is final: the full validator accepts doc too.
// False is not: doc may still pass (a number with a fraction or an
// exponent under a bound is left to the full validator), so the caller
// asks the full validator.
func (c *Checker) Accepts(doc any) bool { return c.root.accepts(doc) }

// known are the fields of jsv.Schema the checker enforces or that do not
// change what a schema accepts (identifiers and annotations). A schema
// with any other field set is left to the full validator: a field added
// to jsv.Schema in a later version is unknown, so it falls back too.
var known = map[string]bool{
	"DraftVersion": true, "Location": true, "ID": true, "Anchor": true,
	"DynamicAnchor": true, "RecursiveAnchor": true,
	"Bool": true, "Ref": true, "Types": true, "Enum": true, "Const": true, "Format": true,
	"MinProperties": true, "MaxProperties": true, "Required": true,
	"Properties": true, "AdditionalProperties": true,
	"MinItems": true, "MaxItems": true, "PrefixItems": true, "Items2020": true,
	"MinLength": true, "MaxLength": true, "Pattern": true,
	"Minimum": true, "Maximum": true, "ExclusiveMinimum": true, "ExclusiveMaximum": true,
	"MultipleOf": true,
	"Title":      true, "Description": true, "Default": true, "Comment": true,
	"ReadOnly": true, "WriteOnly": true, "Examples": true, "Deprecated": true,
}

// unknownField reports whether s sets a field the checker does not
// enforce.
func unknownField(s *jsv.Schema) bool {
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() && !known[f.Name] && !v.Field(i).IsZero() {
			return true
		}
	}
	return false
}
