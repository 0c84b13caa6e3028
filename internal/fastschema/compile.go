package fastschema

import (
	"math/big"
	"reflect"

	jsv "github.com/santhosh-tekuri/jsonschema/v6"
)

// node is the check of one schema.
type node struct {
	// full, when set, is the schema this node leaves to the full
	// validator: it sets a keyword the node does not check.
	full *jsv.Schema

	never bool  // the schema false
	ref   *node // $ref, checked beside the keywords below
	types types // 0: any type
	enum  []any // strings, booleans and nulls only; nil: no enum
	hasC  bool  // const is set
	konst any   // const: a string, boolean or null
	// format validates the value when the format is asserted.
	format func(any) error

	minProps, maxProps int // -1: unbounded
	required           []string
	props              map[string]*node
	noAdditional       bool  // additionalProperties: false
	additional         *node // additionalProperties as a schema

	minItems, maxItems int // -1: unbounded
	prefix             []*node
	items              *node

	minLen, maxLen int // in code points; -1: unbounded
	pattern        jsv.Regexp

	bounds []bound // minimum, maximum and their exclusive kin, multipleOf
}

// types is a set of JSON types.
type types uint8

const (
	tNull types = 1 << iota
	tBoolean
	tNumber
	tInteger
	tString
	tArray
	tObject
)

var typeNames = map[string]types{
	"null": tNull, "boolean": tBoolean, "number": tNumber, "integer": tInteger,
	"string": tString, "array": tArray, "object": tObject,
}

// compiler builds the nodes of a schema, each schema once, so that a
// recursive schema becomes a cyclic graph of nodes.
type compiler struct{ nodes map[*jsv.Schema]*node }

func (c *compiler) node(s *jsv.Schema) *node {
	if n, ok := c.nodes[s]; ok {
		return n
	}
	n := &node{minProps: -1, maxProps: -1, minItems: -1, maxItems: -1, minLen: -1, maxLen: -1}
	c.nodes[s] = n
	// Before draft 2020-12, items, $ref and content work otherwise.
	if s.DraftVersion < 2020 || unknownField(s) || refLoops(s) || !c.fill(n, s) {
		*n = node{full: s}
	}
	return n
}

// fill sets n's checks from s and reports whether it knows how to check
// all of them.
func (c *compiler) fill(n *node, s *jsv.Schema) bool {
	if s.Bool != nil {
		n.never = !*s.Bool
		return true
	}
	if s.Ref != nil {
		n.ref = c.node(s.Ref)
	}
	if s.Types != nil {
		for _, name := range s.Types.ToStrings() {
			n.types |= typeNames[name]
		}
	}
	if s.Enum != nil {
		if !allScalar(s.Enum.Values) {
			return false
		}
		n.enum = s.Enum.Values
		if n.enum == nil {
			n.enum = []any{}
		}
	}
	if s.Const != nil {
		if !allScalar([]any{*s.Const}) {
			return false
		}
		n.hasC, n.konst = true, *s.Const
	}
	if s.Format != nil {
		n.format = s.Format.Validate
	}
	n.minProps, n.maxProps = orUnbounded(s.MinProperties), orUnbounded(s.MaxProperties)
	n.required = s.Required
	if len(s.Properties) > 0 {
		n.props = make(map[string]*node, len(s.Properties))
		for name, p := range s.Properties {
			n.props[name] = c.node(p)
		}
	}
	switch a := s.AdditionalProperties.(type) {
	case nil:
	case bool:
		n.noAdditional = !a
	case *jsv.Schema:
		n.additional = c.node(a)
	default:
		return false
	}
	n.minItems, n.maxItems = orUnbounded(s.MinItems), orUnbounded(s.MaxItems)
	for _, p := range s.PrefixItems {
		n.prefix = append(n.prefix, c.node(p))
	}
	if s.Items2020 != nil {
		n.items = c.node(s.Items2020)
	}
	n.minLen, n.maxLen = orUnbounded(s.MinLength), orUnbounded(s.MaxLength)
	n.pattern = s.Pattern
	return n.fillBounds(s)
}

// fillBounds sets n's numeric bounds, which must be integers within int64
// (multipleOf a positive one).
func (n *node) fillBounds(s *jsv.Schema) bool {
	for _, b := range []struct {
		r    *big.Rat
		kind boundKind
	}{
		{s.Minimum, atLeast}, {s.Maximum, atMost},
		{s.ExclusiveMinimum, above}, {s.ExclusiveMaximum, below},
		{s.MultipleOf, multipleOf},
	} {
		if b.r == nil {
			continue
		}
		if !b.r.IsInt() || !b.r.Num().IsInt64() {
			return false
		}
		v := b.r.Num().Int64()
		if b.kind == multipleOf && v <= 0 {
			return false
		}
		n.bounds = append(n.bounds, bound{b.kind, v})
	}
	return true
}

func orUnbounded(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

// allScalar reports whether every value is a string, a boolean or null:
// values the full validator compares by ==, as the checker does.
func allScalar(values []any) bool {
	for _, v := range values {
		switch v.(type) {
		case string, bool, nil:
		default:
			return false
		}
	}
	return true
}

// refLoops reports whether following $ref from s comes back to s without
// descending into the value: the full validator refuses such a cycle,
// which the checker would follow forever.
func refLoops(s *jsv.Schema) bool {
	seen := map[*jsv.Schema]bool{}
	for r := s; r != nil; r = r.Ref {
		if seen[r] {
			return true
		}
		seen[r] = true
	}
	return false
}

// reachesDynamic reports whether a schema reachable from s holds a
// $dynamicRef or $recursiveRef, walking every exported field.
func reachesDynamic(s *jsv.Schema) bool {
	seen := map[*jsv.Schema]bool{}
	var walk func(v reflect.Value) bool
	walk = func(v reflect.Value) bool {
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() {
				return false
			}
			if s, ok := v.Interface().(*jsv.Schema); ok {
				if seen[s] {
					return false
				}
				seen[s] = true
				if s.DynamicRef != nil || s.RecursiveRef != nil {
					return true
				}
			}
			return walk(v.Elem())
		case reflect.Interface:
			return !v.IsNil() && walk(v.Elem())
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				if walk(v.Index(i)) {
					return true
				}
			}
		case reflect.Map:
			for it := v.MapRange(); it.Next(); {
				if walk(it.Value()) {
					return true
				}
			}
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() && walk(v.Field(i)) {
					return true
				}
			}
		}
		return false
	}
	return walk(reflect.ValueOf(s))
}
