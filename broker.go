package wsroom

import (
	"context"
	"time"
)

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

// A HistoryBroker is a Broker that keeps rooms' histories itself, so that
// a room's recorded messages have the same positions, and reach members
// in the same order, in every process; a member that drops from one
// process recovers on another. Rooms of a registry with history and a
// HistoryBroker (WithHistory, WithBroker) record through it.
//
// Offsets count a room's recorded messages from 1 within an epoch, with
// no gaps; the epoch changes whenever the broker lost the room's history
// (its storage was reset, or the room expired). An epoch is 1 to 64 ASCII
// letters, digits, '-' or '_': frames carry it unescaped, and rooms drop
// (and count in RoomsStats.RemoteInvalid) a message whose epoch is not.
type HistoryBroker interface {
	Broker
	// Record appends payload to room's history at the room's next
	// position and hands it, with that position, to every process's
	// SubscribeRecorded of the room, this process's included. It returns
	// once the message is recorded. An error means it was most likely not
	// (a reply lost after the server recorded it cannot be told apart):
	// rooms then tell the publisher ErrNotRecorded. Like Publish, it must
	// be bounded in time and fail at once while the broker knows its
	// server is unreachable. It must not keep payload after it returns.
	Record(room string, payload []byte) (Position, error)
	// SubscribeRecorded hands deliver, with their positions, the messages
	// recorded in room from the moment ready is closed, in position order
	// and without gaps within an epoch: after losing its connection the
	// broker catches up from the history before delivering anything newer.
	// What it can no longer find (trimmed while it was away) it may skip,
	// or answer with a new epoch; rooms then stop vouching for what came
	// before, and recoveries from before the jump ask History. Messages
	// may arrive before ready is closed. The rules of Subscribe hold for
	// deliver, cancel and ready.
	SubscribeRecorded(room string, deliver func(pos Position, payload []byte)) (cancel func(), ready <-chan struct{})
	// History returns the messages recorded in room after since, oldest
	// first, at most limit of them, with the room's current epoch.
	// complete is false when they are not all of those after since:
	// since is of another epoch, or older than what the history keeps
	// (msgs is then empty), or more than limit are newer. It may wait for
	// the network, for as long as ctx allows.
	History(ctx context.Context, room string, since Position, limit int) (msgs []Recorded, epoch string, complete bool, err error)
}

// Recorded is a message of a room's history, as a HistoryBroker keeps it.
type Recorded struct {
	Position Position
	Payload  []byte // the JSON object published, without its position
}
