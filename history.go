package wsroom

import (
	"container/heap"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a registry's history (WithHistory).
const (
	DefaultHistorySize  = 1000            // recorded messages kept per room
	DefaultHistoryTTL   = 5 * time.Minute // how long each recorded message is kept
	DefaultHistoryBytes = 64 << 20        // frames kept by the whole registry, in bytes
)

// A Position is where a recorded message stands in its room's history:
// Offset counts the room's recorded messages from 1, and Epoch names the
// history they belong to. A room's offsets strictly increase within an
// epoch; a new epoch starts whenever the room's history was lost (the
// process restarted, or the history expired while nobody was in the room),
// so offsets of different epochs cannot be compared.
type Position struct {
	Offset uint64
	Epoch  string
}

// histories are a registry's rooms' histories, by room name. A history
// outlives its room: it stays while it holds messages younger than the
// TTL, members or not.
type histories struct {
	size     int
	ttl      int64 // nanoseconds
	maxBytes int64

	all       sync.Map     // name → *history
	bytes     atomic.Int64 // frame bytes held by every history
	nextSweep atomic.Int64 // nanotime after which a publish sweeps expired histories
	evicting  sync.Mutex   // one eviction at a time; others go on

	// now is the clock, nanotime but in tests.
	now func() int64
}

func newHistories(size int, ttl time.Duration, maxBytes int64) *histories {
	return &histories{size: size, ttl: int64(ttl), maxBytes: maxBytes, now: nanotime}
}

// history is one room's recorded messages, oldest first.
type history struct {
	// mu serialises the room's recorded publishes and the joins that
	// replay the history: it is what makes one order per room.
	mu      sync.Mutex
	epoch   string
	last    uint64 // offset of the newest message recorded; 0: none yet
	known   bool   // epoch and last are the room's: with a HistoryBroker, not until its first message
	entries []entry
	start   int   // entries before start are gone
	bytes   int64 // frame bytes of entries[start:]
	dead    bool  // removed from the registry: whoever holds it takes a new one
}

// entry is one recorded message: its complete frame, ready to replay.
type entry struct {
	offset uint64
	at     int64 // nanotime it was recorded
	frame  []byte
}

// lock returns the history of room, created if need be, locked.
func (hs *histories) lock(room string) *history {
	for {
		v, ok := hs.all.Load(room)
		if !ok {
			v, _ = hs.all.LoadOrStore(room, &history{epoch: newEpoch(), known: true})
		}
		h := v.(*history)
		h.mu.Lock()
		if !h.dead {
			return h
		}
		h.mu.Unlock()
	}
}

// newEpoch returns a name no other history had.
func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// create makes the history of a room whose positions a HistoryBroker
// gives: it knows nothing until the room's first message arrives.
func (hs *histories) create(room string) *history {
	h := new(history)
	hs.all.Store(room, h)
	return h
}

// forget drops h, the history of room, from the registry.
func (hs *histories) forget(room string, h *history) {
	h.mu.Lock()
	hs.drop(h, len(h.entries)-h.start)
	h.dead = true
	h.mu.Unlock()
	hs.all.CompareAndDelete(room, h)
}

// record records the JSON object obj as the room's next message, at
// offset h.last+1, and returns its frame. h.mu is held.
func (hs *histories) record(h *history, obj []byte) []byte {
	frame := recordedFrame(obj, h.last+1, h.epoch)
	hs.put(h, h.last+1, frame)
	return frame
}

// put records frame as the message at offset, the one after h.last.
// h.mu is held.
func (hs *histories) put(h *history, offset uint64, frame []byte) {
	now := hs.now()
	h.last = offset
	h.entries = append(h.entries, entry{offset: offset, at: now, frame: frame})
	h.bytes += int64(len(frame))
	hs.bytes.Add(int64(len(frame)))
	if len(h.entries)-h.start > hs.size {
		hs.drop(h, 1)
	}
	hs.expire(h, now)
}

// expire drops h's messages older than the TTL. h.mu is held.
func (hs *histories) expire(h *history, now int64) {
	n := 0
	for i := h.start; i < len(h.entries) && now-h.entries[i].at > hs.ttl; i++ {
		n++
	}
	hs.drop(h, n)
}

// drop drops h's n oldest messages. h.mu is held.
func (hs *histories) drop(h *history, n int) {
	if n == 0 {
		return
	}
	var freed int64
	for i := h.start; i < h.start+n; i++ {
		freed += int64(len(h.entries[i].frame))
		h.entries[i] = entry{}
	}
	h.start += n
	h.bytes -= freed
	hs.bytes.Add(-freed)
	if h.start == len(h.entries) {
		h.entries, h.start = h.entries[:0], 0
	} else if h.start >= 64 && h.start*2 >= len(h.entries) {
		// Mostly gone: move the rest down, so the slice does not grow
		// for ever while messages come and go.
		rest := copy(h.entries, h.entries[h.start:])
		clear(h.entries[rest:])
		h.entries, h.start = h.entries[:rest], 0
	}
}

// restart empties h and makes it continue from pos: the first message of
// the room this process receives, a new epoch, or a message after a gap
// it cannot vouch for. h.mu is held.
func (hs *histories) restart(h *history, pos Position) {
	hs.drop(h, len(h.entries)-h.start)
	h.epoch, h.last, h.known = pos.Epoch, pos.Offset-1, true
}

// since returns the messages of h after pos and whether they are all of
// them: false when pos is of another epoch, ahead of the history, or older
// than what it still holds. h.mu is held.
func (hs *histories) since(h *history, pos Position) ([]entry, bool) {
	hs.expire(h, hs.now())
	if pos.Epoch != h.epoch || pos.Offset > h.last {
		return nil, false
	}
	kept := h.entries[h.start:]
	if pos.Offset == h.last {
		return nil, true
	}
	if len(kept) == 0 || kept[0].offset > pos.Offset+1 {
		return nil, false
	}
	return kept[pos.Offset+1-kept[0].offset:], true
}

// tidy runs after a recorded publish, outside every history's lock: it
// keeps the registry's bytes under the bound and, now and then, forgets
// histories that have expired whole. live reports whether a room has
// members: the history of a room with members is never forgotten.
func (hs *histories) tidy(live func(room string) bool) {
	if hs.bytes.Load() > hs.maxBytes {
		hs.evict()
	}
	now := hs.now()
	next := hs.nextSweep.Load()
	if now < next || !hs.nextSweep.CompareAndSwap(next, now+hs.ttl/4) {
		return
	}
	hs.all.Range(func(k, v any) bool {
		h := v.(*history)
		h.mu.Lock()
		hs.expire(h, now)
		if len(h.entries) == h.start && !live(k.(string)) {
			h.dead = true
			hs.all.CompareAndDelete(k, h)
		}
		h.mu.Unlock()
		return true
	})
}

// evict drops the oldest messages of the registry, whatever their room,
// until its histories are back under the byte bound. A publish that finds
// an eviction under way goes on: the bound is soft by what arrives
// meanwhile.
func (hs *histories) evict() {
	if !hs.evicting.TryLock() {
		return
	}
	defer hs.evicting.Unlock()
	var oldest byAge
	hs.all.Range(func(_, v any) bool {
		h := v.(*history)
		h.mu.Lock()
		if len(h.entries) > h.start {
			oldest = append(oldest, aged{h: h, at: h.entries[h.start].at})
		}
		h.mu.Unlock()
		return true
	})
	heap.Init(&oldest)
	for hs.bytes.Load() > hs.maxBytes && len(oldest) > 0 {
		h := oldest[0].h
		h.mu.Lock()
		if len(h.entries) > h.start {
			hs.drop(h, 1)
		}
		if len(h.entries) > h.start {
			oldest[0].at = h.entries[h.start].at
			heap.Fix(&oldest, 0)
		} else {
			heap.Pop(&oldest)
		}
		h.mu.Unlock()
	}
}

// aged is a history by the age of its oldest message, for evict.
type aged struct {
	h  *history
	at int64
}

// byAge is a min-heap of histories, the one holding the oldest message on top.
type byAge []aged

func (a byAge) Len() int           { return len(a) }
func (a byAge) Less(i, j int) bool { return a[i].at < a[j].at }
func (a byAge) Swap(i, j int)      { a[i], a[j] = a[j], a[i] }
func (a *byAge) Push(x any)        { *a = append(*a, x.(aged)) }
func (a *byAge) Pop() any {
	old := *a
	x := old[len(old)-1]
	*a = old[:len(old)-1]
	return x
}
