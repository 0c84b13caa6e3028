package redisbroker

// Origin returns the id b puts in the envelopes it publishes.
func Origin(b *Broker) string { return b.origin }

// Envelope returns the envelope of payload from origin.
func Envelope(origin string, payload []byte) []byte { return appendEnvelope(nil, origin, payload) }
