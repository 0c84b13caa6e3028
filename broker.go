package wsroom

import "time"

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
	//
	// ready is closed once the subscription is in effect on the broker's
	// server (every publish the server takes from then on, from any
	// process, is delivered), or as soon as the broker knows that it
	// cannot be for now (it is disconnected: it subscribes again when it is
	// back). The room waits for ready, outside its lock, before Subscribe
	// or Join returns, for at most BrokerReadyTimeout; a Broker should
	// close ready well within that. A nil ready counts as closed.
	Subscribe(room string, deliver func(payload []byte)) (cancel func(), ready <-chan struct{})
}

// BrokerReadyTimeout bounds how long Subscribe, Join and SubscribeFunc wait
// for a broker to confirm a room's subscription (see Broker). Past it they
// return anyway: the member is in the room locally.
const BrokerReadyTimeout = 2 * time.Second
