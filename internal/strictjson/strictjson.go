// Package strictjson parses untrusted JSON messages into the generic tree
// a JSON Schema validator takes, and refuses what the validator and
// encoding/json, which later fills the Go value, would read differently: a
// key repeated in one object, a key that differs only in case from a field
// of the Go type, and shapes that make validation cost out of proportion to
// the message (deep nesting, long or out-of-range numbers).
//
// Its one entry point is a Decoder, built once per Go type.
package strictjson

import (
	"reflect"
	"strings"
)

// Rejection is why a message was refused. Its Reason never echoes more of
// the message than a key.
type Rejection struct {
	// Field is the JSON Pointer (RFC 6901) of the offending value, "" for a
	// syntax error or a fault of the message as a whole.
	Field string
	// Reason says what is wrong, without the field: a syntax error is
	// worded as encoding/json words it, after "invalid JSON: ".
	Reason string
	// Err is the syntax error, io.ErrUnexpectedEOF for a truncated message;
	// nil for the refusals of shape and keys.
	Err error
}

// Decoder parses and checks the messages that fill values of one Go type.
// It is safe for concurrent use.
type Decoder struct {
	keys     *caseCheck // nil when the type holds no field a key could fold to
	validate func(doc any) error
}

// New returns the Decoder of messages that fill values of type t (nil for
// none: keys are then not checked against fields). Each message that
// passes is lent to validate.
func New(t reflect.Type, validate func(doc any) error) *Decoder {
	d := &Decoder{validate: validate}
	if t != nil {
		d.keys = caseCheckFor(t)
	}
	return d
}

// Decode parses data and hands the tree to the validator: objects are
// map[string]any, arrays []any, numbers json.Number, as json.Decoder with
// UseNumber builds them, and no string shares a byte with data, which the
// caller may reuse once Decode returns. It returns the Rejection of a
// message refused before validation, or else the validator's error. The
// tree is lent: when the validator returns nil it must keep nothing of it,
// as the tree is recycled.
func (d *Decoder) Decode(data []byte) (*Rejection, error) {
	doc, bad := parseMessage(data)
	if bad == nil && d.keys != nil {
		bad = d.keys.check(doc)
	}
	if bad != nil {
		return bad, nil
	}
	if err := d.validate(doc); err != nil {
		return nil, err
	}
	recycle(doc)
	return nil, nil
}

// under places a rejection found inside a member at that member's key.
func (r *Rejection) under(key string) *Rejection {
	if r.Field == "" && r.Err != nil {
		return r // a syntax error: it has no field
	}
	r.Field = "/" + pointerEscaper.Replace(key) + r.Field
	return r
}

// pointerEscaper escapes a JSON Pointer token (RFC 6901 section 3).
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")
