// Package brokertest checks implementations of [wsroom.Broker], as
// testing/fstest checks implementations of fs.FS: an adapter for another
// engine runs it against a real server and knows it meets the contract
// that wsroom's rooms rely on. The adapters of this repository (natsbroker,
// redisbroker, pgbroker) and the core's in-memory test broker run it.
//
// An adapter's test hands the suite a [Pair]: a func that returns two
// Brokers standing for two processes on one server (each with its own
// connection), closed at the test's cleanup.
//
//	func TestContract(t *testing.T) {
//		brokertest.Run(t, func(t *testing.T) (a, b wsroom.Broker) {
//			return newBroker(t, url), newBroker(t, url)
//		})
//	}
//
// # The contract
//
// [Run] checks, each as a subtest named after it:
//
//   - DeliversToOtherProcessesOnly: a publish reaches the other process's
//     subscription, byte for byte, and never comes back to the publisher.
//   - ReadyMeansSubscribed: once a subscription's ready is closed, the very
//     next publish from another process reaches it (300 rooms, each new to
//     both processes; no probe, no retry).
//   - KeepsPublisherOrder: 5,000 publishes of one goroutine arrive in order.
//   - KeepsRoomsApartWhateverTheirNames: hostile room names (wildcards and
//     separators of common brokers, quotes, semicolons, control
//     characters, NUL, non-ASCII, names of 100 KB) are neither refused nor
//     heard by other rooms.
//   - CancelStopsDelivery: a cancelled subscription gets nothing more while
//     another of the same room still does.
//   - JoinThenPublish: on two complete wsroom instances, a client joins a
//     room new to both and the other instance publishes the moment the
//     join has returned; the client gets it (see [JoinThenPublish]).
//   - TwoInstances: 1,000 messages from a client on one instance reach a
//     client on the other in order, and the sender once (see
//     [TwoInstances]).
//   - Close, for a Broker with a Close() error method (io.Closer; one
//     without is skipped): Close returns nil, and so does a second call;
//     once it has returned no deliver func is called, although the other
//     process goes on publishing into the room; and from then on Publish,
//     and Record and History of a [wsroom.HistoryBroker], fail within
//     100 ms with an error wrapping [wsroom.ErrBroker], while Subscribe
//     and SubscribeRecorded return a closed ready and deliver nothing.
//     What the suite cannot see is the adapter's to test: that Close
//     leaves the client it was given open, and that it waits for its
//     goroutines.
//
// [Outage] checks what a server outage must do, and needs funcs that stop
// and start the server: local delivery goes on, Publish fails with an
// error wsroom wraps in [wsroom.ErrBroker], joins do not wait, and every
// room is subscribed again once the server is back, without user code.
//
// [RunPresence] checks a [wsroom.PresenceBroker]: entries put by one
// process are read by the other, field for field, and gone once dropped;
// leases run out and refreshes extend them; every expired entry is
// claimed exactly once while both processes claim at once; rooms are kept
// apart; and on two complete instances, presence across them and a dead
// process's members announced gone once. [PresenceOutage] checks that an
// outage of the server, whether it keeps its data or not, announces no
// live member gone. [MemoryPresence] is an in-process bus that passes
// both.
//
// # Helpers
//
// The suite's parts are exported for an adapter's own tests: [Subscribe]
// (subscribe and wait for ready), [Inbox] (record deliveries), [Await]
// (probe until a subscription is active), [StartInstance] and [Bridge]
// (complete wsroom instances over real sockets), and [Memory], an
// in-process bus whose Brokers pass the suite.
package brokertest
