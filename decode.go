package wsroom

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	jsv "github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"github.com/wsroom/wsroom/internal/strictjson"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// errBinary rejects a binary frame: endpoints speak JSON in text frames.
func errBinary() *InvalidMessageError {
	return &InvalidMessageError{Reason: "binary frames are not supported"}
}

// defaultErrorReply is the answer InvalidReply sends unless WithErrorReply
// says otherwise.
func defaultErrorReply(e *InvalidMessageError) any {
	return errorReply{Type: "error", Error: e.Reason}
}

// errorReply is the default answer to an invalid message.
type errorReply struct {
	Type  string `json:"type"`
	Error string `json:"error"`
}

// decode parses data, validates it against the schema of In and decodes it
// into v, a pointer to the In the schemas were compiled for. The handler
// sees v only when decode returns nil.
func (s *schemas) decode(data []byte, v any) *InvalidMessageError {
	bad, err := s.strict.Decode(data)
	if bad != nil {
		return refused(bad)
	}
	if err != nil {
		var ve *jsv.ValidationError
		if !errors.As(err, &ve) {
			return &InvalidMessageError{Reason: err.Error(), Err: err}
		}
		return validationFailure(ve)
	}
	if err := json.Unmarshal(data, v); err != nil {
		// The schema admitted a value Go cannot hold, such as an integer
		// beyond int64.
		e := &InvalidMessageError{Reason: err.Error(), Err: err}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			e.Field = "/" + strings.ReplaceAll(te.Field, ".", "/")
			e.Reason = fmt.Sprintf("%s: value does not fit %s", e.Field, te.Type)
		}
		return e
	}
	return nil
}

// refused words a refusal of the strict parser, prefixed by its field.
func refused(r *strictjson.Rejection) *InvalidMessageError {
	e := &InvalidMessageError{Field: r.Field, Reason: r.Reason, Err: r.Err}
	if e.Field != "" {
		e.Reason = e.Field + ": " + e.Reason
	}
	return e
}

// printer renders the validator's messages.
var printer = message.NewPrinter(language.English)

// maxReasons bounds how many schema violations a rejection lists.
const maxReasons = 3

// validationFailure turns the validator's tree of errors into a rejection
// listing the leaf violations, the message's own first and then by field,
// each prefixed by the field it concerns.
func validationFailure(ve *jsv.ValidationError) *InvalidMessageError {
	var leaves []*jsv.ValidationError
	var walk func(*jsv.ValidationError)
	walk = func(e *jsv.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, e)
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	// The validator walks an object's keys in map order: sort what it
	// found, so that one message always draws the same reply.
	slices.SortStableFunc(leaves, func(a, b *jsv.ValidationError) int {
		return slices.Compare(a.InstanceLocation, b.InstanceLocation)
	})
	for _, leaf := range leaves {
		if k, ok := leaf.ErrorKind.(*kind.AdditionalProperties); ok {
			slices.Sort(k.Properties)
		}
	}
	e := &InvalidMessageError{Field: jsonPointer(leaves[0].InstanceLocation), Err: ve}
	var b strings.Builder
	for i, leaf := range leaves {
		if i == maxReasons {
			fmt.Fprintf(&b, "; and %d more", len(leaves)-maxReasons)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		if p := jsonPointer(leaf.InstanceLocation); p != "" {
			b.WriteString(p)
			b.WriteString(": ")
		}
		b.WriteString(leaf.ErrorKind.LocalizedString(printer))
	}
	e.Reason = b.String()
	return e
}

// pointerEscaper escapes a JSON Pointer token (RFC 6901 section 3).
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// jsonPointer renders an instance location as an RFC 6901 JSON Pointer.
func jsonPointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(pointerEscaper.Replace(t))
	}
	return b.String()
}
