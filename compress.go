package wsroom

import (
	"net/http"
	"strings"
)

// permessage-deflate (RFC 7692), negotiated so that one compressed frame
// serves every member of a room. The server answers with
// server_no_context_takeover: each message is compressed on its own, with a
// fresh dictionary, so the same bytes are valid on every connection and a
// publish compresses once (compress_write.go). It answers with
// client_no_context_takeover too, so that inflating a client's message
// needs no window kept from its previous one: no connection holds
// compression state between messages (compress_read.go).

// deflateResponse is the extension the server answers with.
const deflateResponse = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// DefaultCompressionThreshold is the smallest payload, in bytes, that
// WithCompression compresses by default. Below it deflate saves a few
// bytes at most, when it does not add some, for a fixed cost per message.
const DefaultCompressionThreshold = 256

// offersDeflate reports whether the upgrade request offers permessage-deflate
// with parameters the server can accept. Offers are taken in the client's
// order of preference; an offer with an unknown or malformed parameter, or
// asking for a smaller server window (server_max_window_bits, which wsroom
// does not support), is declined, as RFC 7692 allows.
func offersDeflate(h http.Header) bool {
	for _, v := range h.Values("Sec-WebSocket-Extensions") {
		for offer := range strings.SplitSeq(v, ",") {
			if acceptableDeflateOffer(offer) {
				return true
			}
		}
	}
	return false
}

// acceptableDeflateOffer reports whether one extension offer is
// permessage-deflate with parameters wsroom can answer.
func acceptableDeflateOffer(offer string) bool {
	name, params, hasParams := strings.Cut(offer, ";")
	if !strings.EqualFold(strings.TrimSpace(name), "permessage-deflate") {
		return false
	}
	if !hasParams {
		return true
	}
	var serverNoTakeover, clientNoTakeover, clientBits bool
	for p := range strings.SplitSeq(params, ";") {
		key, value, hasValue := strings.Cut(p, "=")
		switch key = strings.ToLower(strings.TrimSpace(key)); {
		case key == "server_no_context_takeover" && !hasValue && !serverNoTakeover:
			serverNoTakeover = true
		case key == "client_no_context_takeover" && !hasValue && !clientNoTakeover:
			clientNoTakeover = true
		case key == "client_max_window_bits" && !clientBits && (!hasValue || validWindowBits(value)):
			clientBits = true // the client may use a smaller window: the inflater takes any
		default:
			return false // unknown, repeated, malformed, or server_max_window_bits
		}
	}
	return true
}

// validWindowBits reports whether v, possibly quoted, is a window size of 8
// to 15 bits, as RFC 7692 section 7.1.2 allows.
func validWindowBits(v string) bool {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	switch v {
	case "8", "9", "10", "11", "12", "13", "14", "15":
		return true
	}
	return false
}
