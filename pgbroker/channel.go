package pgbroker

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"
)

// roomKey returns the key of room in the tables, and the suffix of its
// channel: the first 16 bytes of the SHA-256 of its name, in lowercase
// hexadecimal. Any name (empty, 100 KB long, with quotes, NUL or invalid
// UTF-8) has a key of 32 ASCII characters, so a name never reaches SQL
// text or an identifier.
func roomKey(room string) string {
	sum := sha256.Sum256([]byte(room))
	return hex.EncodeToString(sum[:16])
}

// A room has two streams of messages, each with its own row in the rooms
// table, its own offsets and epoch, its own rows in the log and its own
// channel: what Publish sends, under the room's key, and what Record
// records, under "h" and the room's key (33 characters: never a room's
// key), so no publish appears in a history, or a record among publishes.
// A stream is named by its key in the tables.

// recordedStream returns the stream of the messages recorded in the room
// whose key is key.
func recordedStream(key string) string { return "h" + key }

// isRecorded reports whether stream holds recorded messages.
func isRecorded(stream string) bool { return len(stream) == 1+2*16 }

// channel returns the NOTIFY channel of stream: "<prefix>_<key>" for a
// room's publishes, "<prefix>-<key>" for its records. Either is at most 63
// bytes, so PostgreSQL never truncates it, and no prefix holds '-', so the
// two never meet.
func (b *Broker) channel(stream string) string {
	if key, ok := strings.CutPrefix(stream, "h"); ok && isRecorded(stream) {
		return b.prefix + "-" + key
	}
	return b.prefix + "_" + stream
}

// streamOf returns the stream of a channel b listens to.
func (b *Broker) streamOf(channel string) (string, bool) {
	if key, ok := strings.CutPrefix(channel, b.prefix+"_"); ok {
		return key, true
	}
	if key, ok := strings.CutPrefix(channel, b.prefix+"-"); ok {
		return recordedStream(key), true
	}
	return "", false
}

// The payload of a notification:
//
//	epoch ":" offset ":" origin [":" message]
//
// epoch and offset are the decimal numbers of the message's row in the
// log, origin the publishing Broker's id (16 lowercase hexadecimal
// digits). The message's bytes follow when they fit (see inlineMax) and
// can be sent as text; otherwise the notification ends after the origin
// and the listener reads the message from the log.

// notifyLimit is PostgreSQL's limit on a notification's payload: it must
// be shorter than 8000 bytes.
const notifyLimit = 8000

// maxHeaderLen is the longest header: two 19-digit numbers, the origin and
// three colons.
const maxHeaderLen = 19 + 1 + 19 + 1 + originLen + 1

// inlineMax is the longest message that travels in its notification.
const inlineMax = notifyLimit - 1 - maxHeaderLen

// originLen is the length of a Broker's id.
const originLen = 16

// inline reports whether payload can travel in a notification: short
// enough, and text PostgreSQL takes in the database's encoding (NOTIFY
// payloads are text: no NUL; UTF-8 if the database's encoding is UTF8,
// else ASCII, which every server encoding holds unchanged).
func inline(payload []byte, utf8DB bool) bool {
	if len(payload) > inlineMax {
		return false
	}
	for _, c := range payload {
		if c == 0 || (c >= utf8.RuneSelf && !utf8DB) {
			return false
		}
	}
	return !utf8DB || utf8.Valid(payload)
}

// A notice is a parsed notification.
type notice struct {
	epoch, off int64
	origin     string
	payload    string
	inline     bool // payload came with the notification
}

// parseNotice parses a notification's payload, and reports whether it is
// well formed.
func parseNotice(s string) (n notice, ok bool) {
	epoch, rest, ok1 := strings.Cut(s, ":")
	off, rest, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 {
		return n, false
	}
	var err1, err2 error
	n.epoch, err1 = strconv.ParseInt(epoch, 10, 64)
	n.off, err2 = strconv.ParseInt(off, 10, 64)
	// Only the canonical form a publish sends: positive, no sign, no
	// leading zero.
	if err1 != nil || err2 != nil || n.epoch < 1 || n.off < 1 || strconv.FormatInt(n.epoch, 10) != epoch || strconv.FormatInt(n.off, 10) != off {
		return n, false
	}
	n.origin, n.payload, n.inline = strings.Cut(rest, ":")
	return n, validOrigin(n.origin)
}

func validOrigin(s string) bool {
	if len(s) != originLen {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
