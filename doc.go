// Package wsroom adds typed WebSocket endpoints and real-time rooms to any
// net/http server.
//
// A handler receives the client's messages as an iter.Seq2[In, error],
// already decoded from JSON into In and validated against the JSON Schema
// reflected from In; it sends Out values to its client and publishes to
// rooms, which deliver each message, encoded once, to every member.
//
//	rooms := wsroom.NewRooms[Out]()
//	chat := wsroom.New(func(c *wsroom.Conn[Out], msgs iter.Seq2[In, error]) error {
//		room := rooms.Room(c.Request().PathValue("room"))
//		user := c.Request().URL.Query().Get("username")
//		leave, err := room.Join(c, Out{Type: "joined", User: user}) // subscribe + announce, one step
//		if err != nil {
//			return err // ErrTooManyRooms: a broker outage never fails Join
//		}
//		defer leave()
//		for msg, err := range msgs { // decoded and validated; invalid input never gets here
//			if err != nil {
//				return err
//			}
//			err := room.Publish(Out{Type: msg.Type, User: user, Content: msg.Content})
//			if errors.Is(err, wsroom.ErrBroker) { // local members have it; other instances may not
//				_ = c.Send(Out{Type: "error", Error: "not delivered to other servers"})
//			} else if err != nil {
//				return err
//			}
//		}
//		return nil
//	}, wsroom.WithGuard(wsroom.RequireToken(verify)))
//
// (the whole program is Example_chat).
//
// # Endpoints
//
// An Endpoint is an http.Handler: path values, query, headers and context
// values set by middleware reach the handler through Conn.Request and
// Conn.Context. Before the upgrade it refuses cross-origin requests (403,
// see WithOriginPatterns) and runs the Guard (401/403, see RequireToken).
// The transport is github.com/lxzan/gws; HTTP/1.1 upgrades only. Once the
// connection is upgraded, ServeHTTP returns and the handler runs in a
// goroutine of its own.
//
// # Inbound messages
//
// The handler's range runs the connection's read loop in the handler's own
// goroutine. Each text frame is decoded and validated against the schema of
// In, which is reflected by github.com/invopop/jsonschema and compiled, with
// every keyword (formats included) enforced, by
// github.com/santhosh-tekuri/jsonschema/v6. By default unknown fields are
// rejected (additionalProperties: false) and fields without omitempty are
// required; WithReflector changes that. Messages with a key repeated in one
// object, a key differing from a field's name only in case, nesting deeper
// than 64 levels, or a number longer than 100 characters or beyond a
// float64 are invalid too: the value the handler receives always satisfies
// the schema, and decoding costs time linear in the message. An invalid
// message, or a binary frame, is answered by the InvalidPolicy
// (WithInvalid): by default the sender alone receives
// {"type":"error","error":"<reason>"} and the handler never sees the
// message.
//
// Each connection's messages are rate-limited (WithRateLimit; 1000 a
// second, bursts of 1000, by default). A client past the limit is slowed
// down, not cut off: the reader stops reading its socket until the limit
// allows the next message, so nothing is dropped, the client's sends wait
// in TCP, and the server does no more than the limit's work for it
// (RateThrottle). Under RateClose (WithRatePolicy) it is closed with 1008
// "rate limit exceeded" instead.
//
// # Rooms
//
// Rooms is a registry of rooms keyed by name. A room's subscriber set is a
// snapshot behind an atomic pointer: Publish takes no lock, and hands the
// same encoded frame to every connection; a join or a leave costs the same
// in a room of 50,000 as in a room of 50. Messages published from
// one goroutine arrive in order; Join subscribes and announces in one step;
// a room with no subscribers is removed. With a Broker (WithBroker), rooms
// of the same name in several processes form one room: the adapters are
// github.com/wsroom/wsroom/natsbroker and github.com/wsroom/wsroom/redisbroker,
// modules of their own.
//
// # History and recovery
//
// A registry made with WithHistory records what its rooms publish. Each
// recorded message gets a Position, an offset in the room and an epoch
// naming the room's history, which its frame carries as "seq" and "epoch"
// in front of the message's own fields; every member receives a room's
// recorded messages in offset order. A client that reconnects with the last
// position it saw, as the upgrade query ?since=SEQ&epoch=EPOCH, is sent by
// Join (or Subscribe) the notice
// {"type":"recovery","recovered":true,"epoch":"...","missed":N}, the N
// recorded messages it missed, then the live stream: nothing lost, nothing
// twice. When the history no longer covers the gap the notice says
// "recovered":false and the client joins afresh. PublishEphemeral sends
// what is never recorded (typing signals). Histories are bounded by count
// and age per room and by bytes per registry; the README has the protocol's
// table and the defaults. The Go client in package client speaks this
// protocol by itself: it reconnects, resumes, drops what it has had and
// reports what it could not recover.
//
// # Presence
//
// A member that joins with As(key, meta) is present in the room until it
// leaves; LeaveWith(m) gives the message the room publishes then.
// Room.Presence returns who is here, one entry per key with a count of
// its connections, sorted by key. In-process it is exact: present from
// the moment the member's announcement is sent until it leaves. With a
// PresenceBroker (redisbroker; natsbroker WithPresence) it spans
// instances: entries are leased (DefaultPresenceLease) and renewed, and
// when an instance dies, one survivor claims each of its expired entries
// and publishes its leave message, so each dead connection is announced
// gone exactly once.
// Presence is bounded per room (WithPresenceLimits).
//
// # Slow consumers
//
// Each connection has a bounded send queue (WithSendQueue; 16,384 frames and
// 1 MiB by default) drained by a writer that writes everything queued in
// one call. Publish and Send never wait for a connection's socket. When a queue is
// full the connection is closed with 1008 "slow consumer" (OverflowClose),
// or, with OverflowDrop, the message is dropped for that connection and
// counted. A write blocked for longer than the write timeout closes the
// connection too.
//
// # Compression
//
// WithCompression negotiates permessage-deflate with clients that offer
// it, without context takeover on either side: a room's publish is
// compressed once for every member that negotiated it, and no connection
// holds compression state between messages. Inbound compressed messages
// are inflated under the read limit. It is off by default (see the
// README's Compression section for what it costs and saves).
//
// # Closing
//
// The close codes: 1000 when the handler returns nil or calls Close; 1001
// on Shutdown or after the idle timeout; 1002 for protocol errors; 1007 for
// invalid UTF-8 or compressed data that does not inflate (and invalid
// messages under InvalidClose); 1008 for slow consumers; 1009 for a
// message over the read limit, inflated; 1011 when the handler
// panics or fails. Shutdown closes every connection with 1001 and waits for
// the handlers.
package wsroom
