package strictjson

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
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
//
// It accepts exactly what encoding/json accepts and builds the tree
// json.Decoder with UseNumber would, but in one pass over the bytes: every
// message goes through it, and encoding/json's tokenizer took as long as
// validating and decoding the message together. Syntax errors are worded
// as encoding/json words them.
func parseMessage(data []byte) (any, *Rejection) {
	p := parser{data: data}
	v, bad := p.value(0)
	if bad != nil {
		return nil, bad
	}
	if i := p.skipSpace(); i < len(data) {
		return nil, p.fail(i, "after top-level value")
	}
	return v, nil
}

// parser is the state of parseMessage.
type parser struct {
	data []byte
	pos  int // the next byte to read
	// text holds the decoded strings and number literals of the message:
	// they must outlive data, which the caller may reuse once Decode returns, and one
	// buffer costs one allocation instead of one per string. A
	// strings.Builder never changes bytes it has handed out.
	text strings.Builder
	// items holds the elements of the arrays being parsed, so that each
	// array is allocated once, at its final length.
	items []any
}

// value parses the value at p.pos, preceded by whitespace, depth being the
// number of objects and arrays around it.
func (p *parser) value(depth int) (any, *Rejection) {
	i := p.skipSpace()
	if i == len(p.data) {
		return nil, p.fail(i, "looking for beginning of value")
	}
	switch c := p.data[i]; c {
	case '{', '[':
		if depth == maxDepth {
			return nil, &Rejection{Reason: fmt.Sprintf("nested deeper than %d levels", maxDepth)}
		}
		if c == '{' {
			return p.object(depth + 1)
		}
		return p.array(depth + 1)
	case '"':
		s, bad := p.string()
		if bad != nil {
			return nil, bad
		}
		return s, nil
	case 't':
		return true, p.literal("true")
	case 'f':
		return false, p.literal("false")
	case 'n':
		return nil, p.literal("null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return p.number()
		}
		return nil, p.fail(i, "looking for beginning of value")
	}
}

func (p *parser) object(depth int) (any, *Rejection) {
	var obj map[string]any
	if depth == 1 {
		obj = objects.Get().(map[string]any) // recycle returns it
	} else {
		obj = make(map[string]any)
	}
	p.pos++ // '{'
	i := p.skipSpace()
	if i < len(p.data) && p.data[i] == '}' {
		p.pos++
		return obj, nil
	}
	for {
		if i == len(p.data) || p.data[i] != '"' {
			return nil, p.fail(i, "looking for beginning of object key string")
		}
		key, bad := p.string()
		if bad != nil {
			return nil, bad
		}
		if _, dup := obj[key]; dup {
			return nil, (&Rejection{Reason: fmt.Sprintf("key %q appears twice", key)}).under(key)
		}
		if i = p.skipSpace(); i == len(p.data) || p.data[i] != ':' {
			return nil, p.fail(i, "after object key")
		}
		p.pos++
		v, bad := p.value(depth)
		if bad != nil {
			return nil, bad.under(key)
		}
		obj[key] = v
		i = p.skipSpace()
		if i < len(p.data) && p.data[i] == '}' {
			p.pos++
			return obj, nil
		}
		if i == len(p.data) || p.data[i] != ',' {
			return nil, p.fail(i, "after object key:value pair")
		}
		p.pos++
		i = p.skipSpace()
	}
}

func (p *parser) array(depth int) (any, *Rejection) {
	p.pos++ // '['
	base := len(p.items)
	if i := p.skipSpace(); i < len(p.data) && p.data[i] == ']' {
		p.pos++
		return []any{}, nil // not nil, as encoding/json decodes it
	}
	for {
		v, bad := p.value(depth)
		if bad != nil {
			// Leave the scratch stack as this array found it: an enclosing
			// array numbers its own elements by it.
			index := len(p.items) - base
			p.items = p.items[:base]
			return nil, bad.under(strconv.Itoa(index))
		}
		p.items = append(p.items, v)
		i := p.skipSpace()
		if i < len(p.data) && p.data[i] == ']' {
			p.pos++
			break
		}
		if i == len(p.data) || p.data[i] != ',' {
			p.items = p.items[:base]
			return nil, p.fail(i, "after array element")
		}
		p.pos++
	}
	arr := make([]any, len(p.items)-base)
	copy(arr, p.items[base:])
	p.items = p.items[:base]
	return arr, nil
}

// plain marks the bytes a string holds as they are: not the closing quote,
// not a backslash, not a control character, and ASCII (other bytes may be
// invalid UTF-8, which encoding/json replaces).
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// string parses the string at p.pos and returns it decoded, as
// encoding/json decodes it: invalid UTF-8 and \u escapes of lone or
// mismatched surrogates become U+FFFD.
func (p *parser) string() (string, *Rejection) {
	data := p.data
	i := p.pos + 1 // past '"'
	start := p.startText(i)
	from := i // the start of the bytes not yet copied to p.text
	for {
		for i < len(data) && plain[data[i]] {
			i++
		}
		if i == len(data) {
			return "", p.fail(i, "in string literal")
		}
		switch c := data[i]; {
		case c == '"':
			p.text.Write(data[from:i])
			p.pos = i + 1
			return p.text.String()[start:], nil
		case c == '\\':
			p.text.Write(data[from:i])
			var bad *Rejection
			if i, bad = p.escape(i); bad != nil {
				return "", bad
			}
			from = i
		case c < 0x20:
			return "", p.fail(i, "in string literal")
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				p.text.Write(data[from:i])
				p.text.WriteRune(utf8.RuneError)
				from = i + 1
			}
			i += size
		}
	}
}

// startText returns where in p.text the string or number at data[from]
// begins, sizing p.text on first use to the rest of the message: the text
// it decodes to is no longer, but for invalid UTF-8 (U+FFFD takes three
// bytes).
func (p *parser) startText(from int) int {
	if p.text.Cap() == 0 {
		p.text.Grow(len(p.data) - from)
	}
	return p.text.Len()
}

// escape decodes the escape sequence at data[i] into p.text and returns
// the index past it.
func (p *parser) escape(i int) (int, *Rejection) {
	data := p.data
	if i+1 == len(data) {
		return 0, p.fail(i+1, "in string escape code")
	}
	switch c := data[i+1]; c {
	case '"', '\\', '/':
		p.text.WriteByte(c)
	case 'b':
		p.text.WriteByte('\b')
	case 'f':
		p.text.WriteByte('\f')
	case 'n':
		p.text.WriteByte('\n')
	case 'r':
		p.text.WriteByte('\r')
	case 't':
		p.text.WriteByte('\t')
	case 'u':
		r := p.u4(i)
		if r < 0 {
			j := i + 2
			for j < len(data) && hexValue(data[j]) >= 0 {
				j++
			}
			return 0, p.fail(j, `in \u hexadecimal character escape`)
		}
		i += 6
		if utf16.IsSurrogate(r) {
			// Only a well-formed pair is consumed whole; anything after a
			// lone surrogate is read on its own, as encoding/json does.
			if dec := utf16.DecodeRune(r, p.u4(i)); dec != utf8.RuneError {
				i += 6
				r = dec
			} else {
				r = utf8.RuneError
			}
		}
		p.text.WriteRune(r)
		return i, nil
	default:
		return 0, p.fail(i+1, "in string escape code")
	}
	return i + 2, nil
}

// u4 returns the code point of the \u escape at data[i], or -1 if there is
// none.
func (p *parser) u4(i int) rune {
	if len(p.data)-i < 6 || p.data[i] != '\\' || p.data[i+1] != 'u' {
		return -1
	}
	r := rune(0)
	for _, c := range p.data[i+2 : i+6] {
		h := hexValue(c)
		if h < 0 {
			return -1
		}
		r = r<<4 | h
	}
	return r
}

func hexValue(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// number parses the number literal at p.pos.
func (p *parser) number() (any, *Rejection) {
	data := p.data
	start := p.pos
	i := start
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && '1' <= data[i] && data[i] <= '9':
		i = skipDigits(data, i+1)
	default:
		return nil, p.fail(i, "in numeric literal")
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i == len(data) || !isDigit(data[i]) {
			return nil, p.fail(i, "after decimal point in numeric literal")
		}
		i = skipDigits(data, i+1)
	}
	exponent := i < len(data) && (data[i] == 'e' || data[i] == 'E')
	if exponent {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i == len(data) || !isDigit(data[i]) {
			return nil, p.fail(i, "in exponent of numeric literal")
		}
		i = skipDigits(data, i+1)
	}
	if i-start > maxNumberLen {
		return nil, &Rejection{Reason: fmt.Sprintf("number longer than %d characters", maxNumberLen)}
	}
	n := p.startText(start)
	p.text.Write(data[start:i])
	lit := p.text.String()[n:]
	// Without an exponent, a literal of at most maxNumberLen bytes lies
	// well within a float64's range.
	if exponent && !numberInRange(lit) {
		return nil, &Rejection{Reason: "number out of range"}
	}
	p.pos = i
	return json.Number(lit), nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func skipDigits(data []byte, i int) int {
	for i < len(data) && isDigit(data[i]) {
		i++
	}
	return i
}

// literal parses true, false or null, whose first byte is at p.pos.
func (p *parser) literal(word string) *Rejection {
	for k := 1; k < len(word); k++ {
		i := p.pos + k
		if i == len(p.data) || p.data[i] != word[k] {
			return p.fail(i, fmt.Sprintf("in literal %s (expecting %q)", word, word[k]))
		}
	}
	p.pos += len(word)
	return nil
}

// skipSpace moves p.pos past whitespace and returns it.
func (p *parser) skipSpace() int {
	i := p.pos
	for i < len(p.data) {
		switch p.data[i] {
		case ' ', '\t', '\n', '\r':
			i++
			continue
		}
		break
	}
	p.pos = i
	return i
}

// fail rejects the byte at data[i], or the end of the data if i is past
// it, where context says what was expected.
func (p *parser) fail(i int, context string) *Rejection {
	if i >= len(p.data) {
		return &Rejection{Reason: "invalid JSON: " + io.ErrUnexpectedEOF.Error(), Err: io.ErrUnexpectedEOF}
	}
	msg := "invalid character " + quoteChar(p.data[i]) + " " + context
	return &Rejection{Reason: "invalid JSON: " + msg, Err: fmt.Errorf("%s at offset %d", msg, i)}
}

// quoteChar quotes a byte as encoding/json's syntax errors do.
func quoteChar(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
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

// objects recycles the map of a message's top-level object once it has
// passed validation: most messages are one small object, and its map was the
// parser's largest allocation. Nested objects are left to the collector.
var objects = sync.Pool{New: func() any { return make(map[string]any, smallObject) }}

// smallObject is the largest object whose map is recycled: a map keeps its
// capacity when cleared, and the pool must not hold on to large ones.
const smallObject = 8

// recycle returns the top-level map of a parsed message to objects. The
// message must be referenced nowhere else: the validator keeps nothing of a
// tree that passed.
func recycle(doc any) {
	if m, ok := doc.(map[string]any); ok && len(m) <= smallObject {
		clear(m)
		objects.Put(m)
	}
}
