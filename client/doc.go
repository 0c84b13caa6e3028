// Package client is the typed Go client of wsroom endpoints: it dials an
// endpoint, sends Send values and yields Recv values as an iterator, and
// keeps the connection alive across drops.
//
// # Reconnection and recovery
//
// A Conn reconnects on its own when its connection is lost: after an
// exponential backoff with full jitter (WithBackoff), for as many attempts
// as WithMaxAttempts allows (no bound by default), until its context is
// cancelled or Close is called. Each new connection asks to resume from
// the position (seq and epoch) of the last recorded message the Conn
// received, with wsroom's recovery protocol (wsroom.QuerySince,
// wsroom.QueryEpoch): the server replays what was missed, and the Conn
// drops what it has already had, so a range over Messages sees every
// recorded message of the room once, in order, across any number of
// reconnects. The recovery notice is consumed by the Conn, never yielded.
// When the history no longer covers the gap, the Conn says so
// (NotRecovered) and goes on with the live stream. A Conn follows one
// position, so it recovers one room with history per connection, as the
// server's protocol does. Recv may declare the fields seq and epoch
// (omitempty) to see each recorded message's position; Position returns
// the last one the range was given.
//
// What happens to the connection is reported by the callback given to
// WithStatus, called from the goroutine that ranges over Messages, between
// two messages, in the order of the stream: a NotRecovered status comes
// exactly where the gap is, so the caller can reload its state at the
// right point, and the callback needs no lock to touch what the range
// touches. A status channel would lose that order; statuses yielded in
// the range's error slot would end every range written as
// "if err != nil { return err }".
//
// Not every end is retried. A refused upgrade (401, 403, 404 and the other
// 4xx but 408 and 429) and a close with a code that says the server meant
// it (1000, 1002, 1003, 1007, 1008, 1009, 1010, and the 3000-4999 codes of
// libraries and applications) end the Conn: the range yields the error
// last. Network errors, 5xx, 408, 429 and the closes 1001, 1005, 1006,
// 1011, 1012, 1013 and 1014 are retried (a 503 or 429 Retry-After is
// honoured, up to the largest delay of WithBackoff).
//
// # Sending
//
// Send writes at once or fails: while the Conn is reconnecting it returns
// an error wrapping ErrReconnecting, and after the end one wrapping
// ErrClosed. Nothing is queued to be sent later: what a client sends is
// not part of any history, so the caller, told by the Reconnected status
// that the connection is back, decides what to send again.
//
// # Transport
//
// The client is built on gws's client side (github.com/lxzan/gws), the
// transport the server already uses, so the module needs no other
// WebSocket implementation and the client speaks exactly the framing its
// server was tested with. Dialing is wsroom's own (a net.Dialer with the
// context, TLS for wss://), so that a context cancels a dial at any point.
//
// # Compression
//
// WithCompression offers permessage-deflate on the terms a wsroom endpoint
// with wsroom.WithCompression answers: no context takeover on either side,
// so each message is compressed and inflated on its own. The read limit
// applies to a compressed message's inflated size. A server that declines
// the offer gets plain frames, and the Conn works as without the option.
package client
