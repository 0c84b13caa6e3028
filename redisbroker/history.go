package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
)

var _ wsroom.HistoryBroker = (*Broker)(nil)

// WithHistory sets how much of each room's history Redis keeps: the last
// size recorded messages (approximately: see "History" in the package
// doc), for ttl after the room's last record. Both must be positive (New
// fails otherwise); the defaults are wsroom.DefaultHistorySize and
// wsroom.DefaultHistoryTTL. Processes sharing rooms should use the same
// values: each Record trims and refreshes with its own.
func WithHistory(size int, ttl time.Duration) Option {
	return func(c *config) { c.historySize, c.historyTTL = size, ttl }
}

// recordScript appends a message to a room's history and publishes it,
// in one step, so that every subscriber sees the offsets in order. A meta
// hash without an epoch is a room whose history was lost: the stream is
// deleted (it may have outlived the hash) and a new epoch starts. The
// XADD comes first so that an XADD refused (a stream whose top is ahead,
// written by something else) changes nothing.
//
// KEYS: meta, stream. ARGV: the epoch to start if new, payload, size,
// TTL in ms, channel.
var recordScript = redis.NewScript(`
local meta = redis.call('hmget', KEYS[1], 'epoch', 'offset')
local epoch, offset = meta[1], 0
if epoch then
	if meta[2] then offset = tonumber(meta[2]) end
else
	epoch = ARGV[1]
	redis.call('del', KEYS[2])
end
offset = offset + 1
local id = string.format('%d', offset)
redis.call('xadd', KEYS[2], 'MAXLEN', '~', ARGV[3], id .. '-0', 'd', ARGV[2])
redis.call('hset', KEYS[1], 'epoch', epoch, 'offset', id)
redis.call('pexpire', KEYS[1], ARGV[4])
redis.call('pexpire', KEYS[2], ARGV[4])
redis.call('publish', ARGV[5], 'wsh1:' .. epoch .. ':' .. id .. ':' .. ARGV[2])
return {offset, epoch}
`)

// readScript returns a room's epoch, last offset and, if the epoch is
// the one expected, the entries from a given offset on. A room without a
// meta hash gets one, with the epoch to start and offset 0, so that the
// epoch reported is the one the next record uses.
//
// KEYS: meta, stream. ARGV: the epoch to start if new, TTL in ms, the
// epoch expected, the first offset wanted, how many entries (0: none,
// -1: all).
var readScript = redis.NewScript(`
local meta = redis.call('hmget', KEYS[1], 'epoch', 'offset')
local epoch, top = meta[1], 0
if not epoch then
	epoch = ARGV[1]
	redis.call('hset', KEYS[1], 'epoch', epoch, 'offset', '0')
	redis.call('pexpire', KEYS[1], ARGV[2])
	redis.call('del', KEYS[2])
	return {epoch, 0, {}}
end
if meta[2] then top = tonumber(meta[2]) end
if epoch ~= ARGV[3] or ARGV[5] == '0' then
	return {epoch, top, {}}
end
if ARGV[5] == '-1' then
	return {epoch, top, redis.call('xrange', KEYS[2], ARGV[4], '+')}
end
return {epoch, top, redis.call('xrange', KEYS[2], ARGV[4], '+', 'COUNT', ARGV[5])}
`)

// historyKeys returns the keys of room's history: its meta hash and its
// stream. Both carry a hash tag drawn from the room's name, so that they
// fall in one Redis Cluster slot, as a script's keys must; the room's
// name follows unchanged, after a fixed-length header, so distinct rooms
// have distinct keys.
func (b *Broker) historyKeys(room string) []string {
	tag := b.roomTag(room)
	return []string{tag + "m:" + room, tag + "s:" + room}
}

// roomTag returns the prefix of every key of room: the Broker's prefix
// and a hash tag of the room's name, so that a room's keys share a
// Cluster slot.
func (b *Broker) roomTag(room string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(room))
	return fmt.Sprintf("%s:{%016x}", b.prefix, h.Sum64())
}

// newEpoch returns an epoch no room has had: this Broker's id and a
// count.
func (b *Broker) newEpoch() string {
	return b.origin + "-" + strconv.FormatUint(b.epochs.Add(1), 36)
}

// Record appends payload to room's history at its next offset and
// publishes it to every process's SubscribeRecorded of the room, this
// one's included, in one script run by Redis: see "History" in the
// package doc. It returns the message's position once Redis has run the
// script, and waits for at most the publish timeout. Like Publish, it
// fails at once with ErrUnavailable while Redis is known unreachable,
// and every error names the room.
//
// An error means the message was not recorded, with one exception: a
// reply lost after Redis ran the script (a timeout, a connection that
// failed) leaves the message recorded, and go-redis's retries of such a
// failure may record it twice, at two offsets.
func (b *Broker) Record(room string, payload []byte) (wsroom.Position, error) {
	b.publishing.RLock() // Close waits for records in progress
	defer b.publishing.RUnlock()
	fail := func(err error) (wsroom.Position, error) {
		b.recordErrors.Add(1)
		return wsroom.Position{}, fmt.Errorf("redisbroker: record in room %q: %w", room, err)
	}
	if b.closed.Load() {
		b.recordErrors.Add(1)
		return wsroom.Position{}, ErrClosed
	}
	if err := b.breaker.allow(); err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.publishTimeout)
	defer cancel()
	ttl := strconv.FormatInt(b.historyTTL.Milliseconds(), 10)
	res, err := recordScript.Run(ctx, b.client, b.historyKeys(room),
		b.newEpoch(), payload, b.historySize, ttl, b.channel(room)).Slice()
	b.settle(err)
	if err != nil {
		return fail(err)
	}
	offset, ok1 := res[0].(int64)
	epoch, ok2 := res[1].(string)
	if len(res) != 2 || !ok1 || !ok2 || offset < 1 {
		return fail(fmt.Errorf("unexpected reply %v", res))
	}
	b.recorded.Add(1)
	return wsroom.Position{Offset: uint64(offset), Epoch: epoch}, nil
}

// History returns the messages recorded in room after since, oldest
// first, at most limit of them, and the room's current epoch: a room
// Redis keeps no history of is given a new epoch, the one its next
// Record uses. complete is false when since is of another epoch, or
// older than what the stream keeps, or ahead of the room's last offset
// (msgs is then empty), or when more than limit are newer. It waits for
// Redis for as long as ctx allows, and fails at once with ErrUnavailable
// while Redis is known unreachable.
func (b *Broker) History(ctx context.Context, room string, since wsroom.Position, limit int) (msgs []wsroom.Recorded, epoch string, complete bool, err error) {
	if b.closed.Load() {
		return nil, "", false, ErrClosed
	}
	if err := b.breaker.allow(); err != nil {
		return nil, "", false, fmt.Errorf("redisbroker: history of room %q: %w", room, err)
	}
	limit = max(limit, 0)
	h, err := b.read(ctx, room, since.Epoch, since.Offset+1, limit+1)
	if err != nil {
		return nil, "", false, fmt.Errorf("redisbroker: history of room %q: %w", room, err)
	}
	switch {
	case h.epoch != since.Epoch || since.Offset > h.top:
		return nil, h.epoch, false, nil
	case since.Offset == h.top:
		return nil, h.epoch, true, nil
	case len(h.msgs) == 0 || h.msgs[0].Position.Offset != since.Offset+1:
		return nil, h.epoch, false, nil // trimmed, expired or lost past since
	}
	complete = len(h.msgs) <= limit
	return h.msgs[:min(len(h.msgs), limit)], h.epoch, complete, nil
}

// stored is what readScript returns.
type stored struct {
	epoch string
	top   uint64
	msgs  []wsroom.Recorded // of epoch, by offset
}

// read runs readScript: the room's epoch and last offset and, if the
// epoch is expect, up to count entries from offset first on (count -1:
// all of them).
func (b *Broker) read(ctx context.Context, room, expect string, first uint64, count int) (stored, error) {
	ttl := strconv.FormatInt(b.historyTTL.Milliseconds(), 10)
	res, err := readScript.Run(ctx, b.client, b.historyKeys(room),
		b.newEpoch(), ttl, expect, first, count).Slice()
	if err != nil {
		return stored{}, err
	}
	return parseStored(res)
}

var errReply = errors.New("unexpected reply from the history script")

// parseStored decodes readScript's reply: {epoch, top, {{id, {"d", payload}}...}}.
func parseStored(res []any) (stored, error) {
	if len(res) != 3 {
		return stored{}, errReply
	}
	epoch, ok1 := res[0].(string)
	top, ok2 := res[1].(int64)
	entries, ok3 := res[2].([]any)
	if !ok1 || !ok2 || !ok3 || top < 0 {
		return stored{}, errReply
	}
	s := stored{epoch: epoch, top: uint64(top), msgs: make([]wsroom.Recorded, 0, len(entries))}
	for _, e := range entries {
		entry, ok := e.([]any)
		if !ok || len(entry) != 2 {
			return stored{}, errReply
		}
		id, _ := entry[0].(string)
		fields, _ := entry[1].([]any)
		n, _, _ := strings.Cut(id, "-")
		offset, err := strconv.ParseUint(n, 10, 64)
		if err != nil || len(fields) != 2 || fields[0] != "d" {
			return stored{}, errReply
		}
		payload, _ := fields[1].(string)
		s.msgs = append(s.msgs, wsroom.Recorded{
			Position: wsroom.Position{Offset: offset, Epoch: epoch},
			Payload:  []byte(payload),
		})
	}
	return s, nil
}
