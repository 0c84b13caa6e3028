package fastschema

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// accepts reports whether v passes n; false may also mean that n cannot
// tell cheaply (see Checker.Accepts).
func (n *node) accepts(v any) bool {
	if n.full != nil {
		return n.full.Validate(v) == nil
	}
	if n.never {
		return false
	}
	if n.types != 0 && !n.typeMatches(v) {
		return false
	}
	if n.enum != nil && !oneOf(n.enum, v) {
		return false
	}
	if n.hasC && v != n.konst { // konst is scalar: == cannot panic
		return false
	}
	if n.format != nil && n.format(v) != nil {
		return false
	}
	if n.ref != nil && !n.ref.accepts(v) {
		return false
	}
	switch v := v.(type) {
	case map[string]any:
		return n.object(v)
	case []any:
		return n.array(v)
	case string:
		return n.string(v)
	case json.Number:
		return n.number(v)
	case bool, nil:
		return true
	}
	return false // not a value of a JSON tree
}

// typeMatches reports whether v is of one of n's types. A number matches
// integer here; whether it is one is told by number, which parses its
// literal once for that and for the bounds.
func (n *node) typeMatches(v any) bool {
	var t types
	switch v.(type) {
	case nil:
		t = tNull
	case bool:
		t = tBoolean
	case string:
		t = tString
	case []any:
		t = tArray
	case map[string]any:
		t = tObject
	case json.Number:
		t = tNumber | tInteger
	}
	return n.types&t != 0
}

// oneOf reports whether v equals one of values, strings, booleans and
// nulls that == compares as the full validator does.
func oneOf(values []any, v any) bool {
	for _, e := range values {
		if v == e {
			return true
		}
	}
	return false
}

func (n *node) object(obj map[string]any) bool {
	if n.minProps >= 0 && len(obj) < n.minProps || n.maxProps >= 0 && len(obj) > n.maxProps {
		return false
	}
	for _, name := range n.required {
		if _, ok := obj[name]; !ok {
			return false
		}
	}
	for name, v := range obj {
		if p, ok := n.props[name]; ok {
			if !p.accepts(v) {
				return false
			}
			continue
		}
		if n.noAdditional || n.additional != nil && !n.additional.accepts(v) {
			return false
		}
	}
	return true
}

func (n *node) array(arr []any) bool {
	if n.minItems >= 0 && len(arr) < n.minItems || n.maxItems >= 0 && len(arr) > n.maxItems {
		return false
	}
	for i, v := range arr {
		switch {
		case i < len(n.prefix):
			if !n.prefix[i].accepts(v) {
				return false
			}
		case n.items != nil:
			if !n.items.accepts(v) {
				return false
			}
		}
	}
	return true
}

func (n *node) string(s string) bool {
	if n.minLen >= 0 || n.maxLen >= 0 {
		l := utf8.RuneCountInString(s)
		if n.minLen >= 0 && l < n.minLen || n.maxLen >= 0 && l > n.maxLen {
			return false
		}
	}
	return n.pattern == nil || n.pattern.MatchString(s)
}

// number checks that lit is an integer when the type says so, and the
// bounds. A number is an integer when its literal has no exponent and no
// fraction but zeros, and its integer part fits an int64. Only literals
// without an exponent whose integer part fits an int64 are checked: any
// other, under the integer type or a bound, is left to the full
// validator.
func (n *node) number(lit json.Number) bool {
	integer := n.types&tInteger != 0 && n.types&tNumber == 0
	if !integer && len(n.bounds) == 0 {
		return true
	}
	floor, ceil, ok := integerRange(string(lit))
	if !ok || integer && floor != ceil {
		return false
	}
	for _, b := range n.bounds {
		if !b.holds(floor, ceil) {
			return false
		}
	}
	return true
}

// integerRange returns the integers just below and just above a number
// literal, both the number itself if it is an integer ("-3", "2.000"), or
// false for a literal with an exponent or beyond int64.
func integerRange(lit string) (floor, ceil int64, ok bool) {
	if strings.ContainsAny(lit, "eE") {
		return 0, 0, false
	}
	whole, frac, _ := strings.Cut(lit, ".")
	i, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if strings.Trim(frac, "0") == "" {
		return i, i, true
	}
	if whole[0] == '-' { // "-0.5" too: ParseInt read it as 0
		if i == math.MinInt64 {
			return 0, 0, false
		}
		return i - 1, i, true
	}
	if i == math.MaxInt64 {
		return 0, 0, false
	}
	return i, i + 1, true
}

// bound is one numeric keyword with an integer operand.
type bound struct {
	kind boundKind
	v    int64
}

type boundKind uint8

const (
	atLeast    boundKind = iota // minimum
	atMost                      // maximum
	above                       // exclusiveMinimum
	below                       // exclusiveMaximum
	multipleOf                  // multipleOf, v > 0
)

// holds reports whether the number between floor and ceil (both the
// number if it is an integer) meets b. A number that is not an integer is
// at least v when its floor is, and at most v when its ceiling is.
func (b bound) holds(floor, ceil int64) bool {
	switch b.kind {
	case atLeast:
		return floor >= b.v
	case atMost:
		return ceil <= b.v
	case above:
		return floor > b.v || floor == b.v && ceil != floor
	case below:
		return ceil < b.v || ceil == b.v && ceil != floor
	default:
		return floor == ceil && floor%b.v == 0
	}
}
