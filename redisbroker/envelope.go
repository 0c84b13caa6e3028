package redisbroker

import (
	"strconv"
	"strings"
)

// The envelope of every message a Broker publishes:
//
//	"wsr1:" origin ":" payload
//
// where origin is the publishing Broker's id, 16 lowercase hexadecimal
// digits drawn at random by New, and payload is the bytes given to
// Publish, unchanged. The header is 22 bytes; "wsr1" names the format and
// its version, and cannot begin a JSON text, so a plain client's JSON is
// never taken for an envelope.
const (
	magic     = "wsr1:"
	originLen = 16
	headerLen = len(magic) + originLen + 1
)

// appendEnvelope appends the envelope of payload from origin to dst.
func appendEnvelope(dst []byte, origin string, payload []byte) []byte {
	dst = append(dst, magic...)
	dst = append(dst, origin...)
	dst = append(dst, ':')
	return append(dst, payload...)
}

// openEnvelope splits a received message into its origin and payload, and
// reports whether it is a well-formed envelope.
func openEnvelope(msg string) (origin, payload string, ok bool) {
	if len(msg) < headerLen || msg[:len(magic)] != magic || msg[headerLen-1] != ':' {
		return "", "", false
	}
	origin = msg[len(magic) : headerLen-1]
	for i := range len(origin) {
		if c := origin[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", "", false
		}
	}
	return origin, msg[headerLen:], true
}

// The envelope of every recorded message, published by Record's script:
//
//	"wsh1:" epoch ":" offset ":" payload
//
// where epoch is 1 to 64 ASCII letters, digits, '-' or '_' and offset is
// the message's offset in decimal, from 1. It goes to the room's channel,
// beside the envelopes of Publish, and names no origin: a Broker's own
// records are delivered to it like any other.
const recordedMagic = "wsh1:"

// openRecorded splits a received recorded message into its position and
// payload, and reports whether it is a well-formed recorded envelope.
func openRecorded(msg string) (epoch string, offset uint64, payload string, ok bool) {
	rest, ok := strings.CutPrefix(msg, recordedMagic)
	if !ok {
		return "", 0, "", false
	}
	epoch, rest, ok = strings.Cut(rest, ":")
	if !ok || !validEpoch(epoch) {
		return "", 0, "", false
	}
	n, payload, ok := strings.Cut(rest, ":")
	if !ok || n == "" || n[0] == '0' {
		return "", 0, "", false
	}
	offset, err := strconv.ParseUint(n, 10, 64)
	if err != nil {
		return "", 0, "", false
	}
	return epoch, offset, payload, true
}

// validEpoch reports whether e is an epoch wsroom accepts.
func validEpoch(e string) bool {
	if len(e) < 1 || len(e) > 64 {
		return false
	}
	for i := range len(e) {
		switch c := e[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
