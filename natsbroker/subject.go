package natsbroker

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// maxTokenLen bounds the subject token of a room. NATS refuses protocol
// lines longer than max_control_line (4 KiB by default) and closes the
// connection that sends one, so a long room name, which may come from a
// URL, must not become a long subject: a name whose escaped form is longer
// than this is hashed instead.
const maxTokenLen = 200

// maxPrefixLen bounds the subject prefix, for the same reason.
const maxPrefixLen = 200

// token returns the single NATS subject token that stands for room:
//   - a name made only of ASCII letters, digits, '-' and '_' is its own
//     token ("lobby" → "lobby");
//   - any other byte is written %XX, upper-case hex, '%' included
//     ("a.b" → "a%2Eb", "%" → "%25", "ü" → "%C3%BC"): reversible, and
//     never a '.', '*', '>', space or control byte;
//   - the empty name is "%", which no escaped name can be (an escape is
//     always '%' and two hex digits);
//   - a name whose escaped form is longer than maxTokenLen is "%%" and the
//     unpadded base64url SHA-256 of the name, which no escaped name can
//     start with.
//
// So distinct names give distinct tokens (for hashed ones, but for a
// SHA-256 collision), and every token is one safe token.
func token(room string) string {
	if room == "" {
		return "%"
	}
	escapes := 0
	for i := 0; i < len(room); i++ {
		if !plain(room[i]) {
			escapes++
		}
	}
	n := len(room) + 2*escapes
	switch {
	case n > maxTokenLen:
		sum := sha256.Sum256([]byte(room))
		return "%%" + base64.RawURLEncoding.EncodeToString(sum[:])
	case escapes == 0:
		return room
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(n)
	for i := 0; i < len(room); i++ {
		c := room[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xF])
	}
	return b.String()
}

// plain reports whether c stands for itself in a token.
func plain(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// validPrefix reports whether p is one or more '.'-separated subject
// tokens of printable ASCII without wildcards: what a subject may start
// with and what NATS permissions can name as "<prefix>.>".
func validPrefix(p string) bool {
	if p == "" || len(p) > maxPrefixLen {
		return false
	}
	for tok := range strings.SplitSeq(p, ".") {
		if tok == "" {
			return false
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c <= ' ' || c >= 0x7f || c == '*' || c == '>' {
				return false
			}
		}
	}
	return true
}
