package wsroom

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits on the shape of an inbound message, checked while it is parsed,
// before the validator sees it: the validator's cost grows faster than
// linearly with nesting (an invalid value at the bottom of 10,000 levels
// takes seconds), it does arithmetic on number literals of any length (a
// million digits take seconds), and it panics on exponents beyond
// big.Float's range. No message a Go type can hold comes near them.
const (
	maxDepth     = 64  // levels of objects and arrays
	maxNumberLen = 100 // bytes of a number literal
)

// parseMessage parses an inbound message into the generic tree the
// validator takes (objects, arrays, strings, json.Number, bools, nil). It
// refuses what the validator and encoding/json would read differently: a
// key repeated in one object (the validator keeps the last; encoding/json
// merges a repeated object or array into what the first one decoded), as
// well as the shapes above.
func parseMessage(data []byte) (any, *InvalidMessageError) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	v, bad := parseValue(d, 0)
	if bad != nil {
		return nil, bad
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, &InvalidMessageError{Reason: "invalid JSON: data after the top-level value"}
	}
	return v, nil
}

func parseValue(d *json.Decoder, depth int) (any, *InvalidMessageError) {
	tok, err := d.Token()
	if err != nil {
		return nil, syntaxError(err)
	}
	switch tok := tok.(type) {
	case json.Delim:
		if depth == maxDepth {
			return nil, &InvalidMessageError{Reason: fmt.Sprintf("nested deeper than %d levels", maxDepth)}
		}
		if tok == '[' {
			return parseArray(d, depth+1)
		}
		return parseObject(d, depth+1)
	case json.Number:
		if len(tok) > maxNumberLen {
			return nil, &InvalidMessageError{Reason: fmt.Sprintf("number longer than %d characters", maxNumberLen)}
		}
		if !numberInRange(string(tok)) {
			return nil, &InvalidMessageError{Reason: "number out of range"}
		}
		return tok, nil
	default:
		return tok, nil // string, bool or nil
	}
}

func parseObject(d *json.Decoder, depth int) (any, *InvalidMessageError) {
	obj := make(map[string]any)
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, syntaxError(err)
		}
		key := tok.(string) // the decoder allows nothing else here
		if _, dup := obj[key]; dup {
			return nil, &InvalidMessageError{Field: "/" + pointerEscaper.Replace(key), Reason: fmt.Sprintf("key %q appears twice", key)}
		}
		v, bad := parseValue(d, depth)
		if bad != nil {
			return nil, bad.under(key)
		}
		obj[key] = v
	}
	if _, err := d.Token(); err != nil { // '}'
		return nil, syntaxError(err)
	}
	return obj, nil
}

func parseArray(d *json.Decoder, depth int) (any, *InvalidMessageError) {
	arr := []any{}
	for d.More() {
		v, bad := parseValue(d, depth)
		if bad != nil {
			return nil, bad.under(strconv.Itoa(len(arr)))
		}
		arr = append(arr, v)
	}
	if _, err := d.Token(); err != nil { // ']'
		return nil, syntaxError(err)
	}
	return arr, nil
}

// under places a rejection found inside a member at that member's key.
func (e *InvalidMessageError) under(key string) *InvalidMessageError {
	if e.Field == "" && e.Err != nil {
		return e // a syntax error: it has no field
	}
	e.Field = "/" + pointerEscaper.Replace(key) + e.Field
	return e
}

func syntaxError(err error) *InvalidMessageError {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return &InvalidMessageError{Reason: "invalid JSON: " + strings.TrimPrefix(err.Error(), "json: "), Err: err}
}

// numberInRange reports whether a number literal fits a float64, neither
// overflowing nor underflowing by an absurd exponent.
func numberInRange(s string) bool {
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return false
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp, err := strconv.Atoi(s[i+1:])
		return err == nil && exp >= -400 && exp <= 400
	}
	return true
}
