package wsroom

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Defaults of a registry's presence (WithPresenceLimits).
const (
	// DefaultPresenceEntries bounds the keys present in one room from one
	// process.
	DefaultPresenceEntries = 10000
	// DefaultPresenceEntryBytes bounds one entry: its key, its metadata's
	// JSON and its leave message's JSON together.
	DefaultPresenceEntryBytes = 4096
)

// presences is a registry's presence: the entries of its members, by
// room, and, with a PresenceBroker, their leases there.
type presences struct {
	owner      string         // this registry's id in the broker's records
	broker     PresenceBroker // nil: presence is this process's only
	lease      time.Duration
	maxEntries int
	maxBytes   int
	seq        atomic.Uint64
	announce   func(room string, leave []byte) // publishes a claimed entry's leave message

	claimed, refreshes, errors atomic.Int64

	mu    sync.Mutex // guards what follows
	rooms map[string]*roomPresence
	// drops holds, by room, the IDs of entries that left while the broker
	// could not take their removal; the lease loop drops them when it can.
	drops   map[string][]string
	loop    chan struct{} // closed to stop the lease loop; nil while it is not running
	healthy time.Time     // since when every call to the broker succeeded; zero after a failure
}

// roomPresence is one room's entries in this process.
type roomPresence struct {
	// io orders the room's calls to the broker: a refresh that read an
	// entry puts it before that entry's removal, never after.
	io sync.Mutex

	keys    map[string]int             // key → connections, joining ones included: the bound counts them; guarded by presences.mu
	entries map[string]*PresenceRecord // ID → entry, of members whose announcement was sent; guarded by presences.mu
}

// presenceKeeper is a PresenceBroker that may have been made without
// presence (see PresenceBroker).
type presenceKeeper interface{ KeepsPresence() bool }

func newPresences(cfg roomsConfig) *presences {
	var id [8]byte
	_, _ = rand.Read(id[:])
	ps := &presences{
		owner:      hex.EncodeToString(id[:]),
		lease:      DefaultPresenceLease,
		maxEntries: DefaultPresenceEntries,
		maxBytes:   DefaultPresenceEntryBytes,
		rooms:      map[string]*roomPresence{},
		drops:      map[string][]string{},
	}
	ps.broker, _ = cfg.broker.(PresenceBroker)
	if k, ok := ps.broker.(presenceKeeper); ok && !k.KeepsPresence() {
		ps.broker = nil
	}
	if cfg.presenceLease > 0 {
		ps.lease = cfg.presenceLease
	}
	if cfg.presenceEntries > 0 {
		ps.maxEntries = cfg.presenceEntries
	}
	if cfg.presenceBytes > 0 {
		ps.maxBytes = cfg.presenceBytes
	}
	return ps
}

// newRecord makes the entry of a member joining with key, meta and leave,
// or says why it cannot be one.
func (ps *presences) newRecord(key string, meta any, leave []byte) (*PresenceRecord, error) {
	if key == "" || !utf8.ValidString(key) {
		return nil, fmt.Errorf("wsroom: As(%q): the key must be non-empty valid UTF-8", key)
	}
	var metaJSON json.RawMessage
	if meta != nil {
		b, err := json.Marshal(meta)
		if err != nil {
			return nil, fmt.Errorf("wsroom: As(%q): encode meta: %w", key, err)
		}
		metaJSON = b
	}
	if n := len(key) + len(metaJSON) + len(leave); n > ps.maxBytes {
		return nil, fmt.Errorf("%w: %d bytes of key, meta and leave message, over %d", ErrPresenceEntryTooLarge, n, ps.maxBytes)
	}
	return &PresenceRecord{
		ID:    ps.owner + "-" + strconv.FormatUint(ps.seq.Add(1), 36),
		Owner: ps.owner,
		Key:   key,
		Meta:  metaJSON,
		Leave: leave,
	}, nil
}

// reserve counts rec's key in room, unless a new key would pass the
// bound, and returns the room's entries; rec is not yet present.
func (ps *presences) reserve(room string, rec *PresenceRecord) (*roomPresence, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	rp := ps.rooms[room]
	if rp == nil {
		rp = &roomPresence{keys: map[string]int{}, entries: map[string]*PresenceRecord{}}
		ps.rooms[room] = rp
	}
	if rp.keys[rec.Key] == 0 && len(rp.keys) >= ps.maxEntries {
		return nil, fmt.Errorf("%w: room %q has %d keys present", ErrPresenceFull, room, len(rp.keys))
	}
	rp.keys[rec.Key]++
	return rp, nil
}

// show makes a reserved rec present.
func (ps *presences) show(rp *roomPresence, rec *PresenceRecord) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	rec.Joined = time.Now()
	rp.entries[rec.ID] = rec
	if ps.broker != nil {
		ps.startLoop()
	}
}

// release takes rec out of room, whether it was shown or only reserved,
// and reports whether it was shown.
func (ps *presences) release(room string, rp *roomPresence, rec *PresenceRecord) (shown bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	_, shown = rp.entries[rec.ID]
	delete(rp.entries, rec.ID)
	if rp.keys[rec.Key]--; rp.keys[rec.Key] == 0 {
		delete(rp.keys, rec.Key)
	}
	if len(rp.keys) == 0 {
		delete(ps.rooms, room)
		ps.stopIfIdle()
	}
	return shown
}

// put registers rec with the broker, now that its member is present; a
// failure is counted, and the lease loop registers it again.
func (ps *presences) put(room string, rp *roomPresence, rec *PresenceRecord) {
	if ps.broker == nil {
		return
	}
	rp.io.Lock()
	defer rp.io.Unlock()
	if err := ps.broker.PutPresence(room, []PresenceRecord{*rec}, ps.lease); err != nil {
		ps.failed()
	}
}

// drop removes rec, which has left, from the broker; what the broker does
// not take is dropped by the lease loop later, before anyone could take
// the entry for a dead one.
func (ps *presences) drop(room string, rp *roomPresence, rec *PresenceRecord) {
	if ps.broker == nil {
		return
	}
	rp.io.Lock()
	defer rp.io.Unlock()
	if err := ps.broker.DropPresence(room, []string{rec.ID}); err != nil {
		ps.failed()
		ps.mu.Lock()
		ps.drops[room] = append(ps.drops[room], rec.ID)
		ps.startLoop()
		ps.mu.Unlock()
	}
}

// local returns room's present entries in this process.
func (ps *presences) local(room string) []PresenceRecord {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	rp := ps.rooms[room]
	if rp == nil {
		return nil
	}
	recs := make([]PresenceRecord, 0, len(rp.entries))
	for _, x := range rp.entries {
		recs = append(recs, *x)
	}
	return recs
}

// isPresent reports whether this process holds the entry id in room.
func (ps *presences) isPresent(room, id string) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	rp := ps.rooms[room]
	if rp == nil {
		return false
	}
	_, ok := rp.entries[id]
	return ok
}

// count returns the entries present in this process, of every room.
func (ps *presences) count() int64 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var n int
	for _, rp := range ps.rooms {
		n += len(rp.entries)
	}
	return int64(n)
}

// validRemoteRecord reports whether a record from the broker can be
// shown: its key is valid UTF-8 and its meta, if any, valid JSON.
func validRemoteRecord(x PresenceRecord) bool {
	return x.Key != "" && utf8.ValidString(x.Key) && (x.Meta == nil || json.Valid(x.Meta))
}
