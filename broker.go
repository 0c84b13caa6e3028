package wsroom

// A Broker carries rooms' messages between processes, so that a room spans
// every instance of a service. Rooms use it only when given one (WithBroker);
// without a broker rooms are in-process and publishing does no extra work.
//
// The payload is the JSON of one message: the very bytes local members
// receive. A Broker must not hand a process back its own publishes (local
// members already have them), must keep the order of one publisher's
// messages, and must keep rooms apart whatever their names contain.
type Broker interface {
	// Publish sends payload to the room's members in other processes. An
	// error means other processes may not get it; local members already have.
	Publish(room string, payload []byte) error
	// Subscribe starts handing deliver the payloads other processes publish
	// to room, until cancel is called. deliver is called from one goroutine
	// at a time per room and must not block for long. Subscribe and cancel
	// are called while the room's membership is being changed, under its
	// lock: they must return promptly (not wait for the network or for a
	// delivery in progress).
	Subscribe(room string, deliver func(payload []byte)) (cancel func())
}

// A RoomsOption configures a Rooms registry.
type RoomsOption func(*roomsConfig)

type roomsConfig struct {
	broker   Broker
	maxRooms int
}

// WithMaxRooms caps the rooms that may have subscribers at once; a
// subscription that would create one more fails with ErrTooManyRooms.
// Zero, the default, means no cap.
func WithMaxRooms(n int) RoomsOption { return func(c *roomsConfig) { c.maxRooms = n } }

// WithBroker joins the registry's rooms with the rooms of the same names in
// every process using the same broker.
func WithBroker(b Broker) RoomsOption { return func(c *roomsConfig) { c.broker = b } }
