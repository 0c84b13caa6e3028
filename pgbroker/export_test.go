package pgbroker

// ApplicationName is the application_name of b's listening connection,
// by which tests find its backend.
func (b *Broker) ApplicationName() string { return "wsroom-pgbroker-" + b.origin }

// Prefix is the prefix b was made with.
func (b *Broker) Prefix() string { return b.prefix }

// RoomKey is the key of room's row, by which tests lock it.
func RoomKey(room string) string { return roomKey(room) }
