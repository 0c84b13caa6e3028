package main

import (
	"context"
	"time"

	"github.com/wsroom/wsroom"
)

// The lateBroker keeps presence through the Broker once there is one;
// until then every presence call fails, as in an outage: the rooms keep
// their members locally and put them at the Broker once it answers.

var _ wsroom.PresenceBroker = (*lateBroker)(nil)

// PutPresence puts entries at the Broker, or fails until there is one.
func (l *lateBroker) PutPresence(room string, entries []wsroom.PresenceRecord, lease time.Duration) error {
	if b := l.broker(); b != nil {
		return b.PutPresence(room, entries, lease)
	}
	return errNotReached
}

// RefreshPresence renews entries at the Broker, or fails until there is one.
func (l *lateBroker) RefreshPresence(room string, ids []string, lease time.Duration) ([]string, error) {
	if b := l.broker(); b != nil {
		return b.RefreshPresence(room, ids, lease)
	}
	return nil, errNotReached
}

// DropPresence drops entries at the Broker, or fails until there is one.
func (l *lateBroker) DropPresence(room string, ids []string) error {
	if b := l.broker(); b != nil {
		return b.DropPresence(room, ids)
	}
	return errNotReached
}

// ReadPresence reads the Broker's entries, or fails until there is one.
func (l *lateBroker) ReadPresence(ctx context.Context, room string) ([]wsroom.PresenceRecord, error) {
	if b := l.broker(); b != nil {
		return b.ReadPresence(ctx, room)
	}
	return nil, errNotReached
}

// ClaimExpired claims the Broker's expired entries, or fails until there
// is one.
func (l *lateBroker) ClaimExpired(ctx context.Context, room string) ([]wsroom.PresenceRecord, error) {
	if b := l.broker(); b != nil {
		return b.ClaimExpired(ctx, room)
	}
	return nil, errNotReached
}
