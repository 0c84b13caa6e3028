package redisbroker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wsroom/wsroom"
)

var _ wsroom.PresenceBroker = (*Broker)(nil)

// claimBatch bounds the entries one run of claimScript takes, so that a
// script never holds Redis for long; ClaimExpired runs it again while it
// fills a batch.
const claimBatch = 1000

// unpackBatch bounds the arguments a script unpacks at once: Lua's C
// stack takes about 8,000.
const unpackBatch = 1000

// presenceNow is the Lua that sets now to Redis's clock in milliseconds:
// leases run on one clock, whatever the processes' clocks say. Scripts
// that read the clock and then write need effects replication, which
// Redis 7 always uses and older versions are asked for.
const presenceNow = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// putScript stores entries and leases them until now + lease; both keys
// then live four leases more (a minute at least), so that expired entries
// wait there to be claimed, and a room whose every process died vanishes
// from Redis after that.
//
// KEYS: entries hash, expiries sorted set. ARGV: lease in ms, then ID and
// entry JSON pairs.
var putScript = redis.NewScript(presenceNow + `
local lease = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
	redis.call('hset', KEYS[1], ARGV[i], ARGV[i + 1])
	redis.call('zadd', KEYS[2], now + lease, ARGV[i])
end
local keep = math.max(4 * lease, 60000)
redis.call('pexpire', KEYS[1], keep)
redis.call('pexpire', KEYS[2], keep)
return (#ARGV - 1) / 2
`)

// refreshScript leases the entries it is given until now + lease, as
// putScript does, and returns the IDs of those the hash does not hold.
//
// KEYS: entries hash, expiries sorted set. ARGV: lease in ms, then the
// IDs.
var refreshScript = redis.NewScript(presenceNow + `
local lease = tonumber(ARGV[1])
local missing = {}
for i = 2, #ARGV do
	if redis.call('hexists', KEYS[1], ARGV[i]) == 1 then
		redis.call('zadd', KEYS[2], now + lease, ARGV[i])
	else
		missing[#missing + 1] = ARGV[i]
	end
end
local keep = math.max(4 * lease, 60000)
redis.call('pexpire', KEYS[1], keep)
redis.call('pexpire', KEYS[2], keep)
return missing
`)

// dropScript removes entries. KEYS: entries hash, expiries sorted set.
// ARGV: the IDs.
var dropScript = redis.NewScript(`
for i = 1, #ARGV do
	redis.call('hdel', KEYS[1], ARGV[i])
	redis.call('zrem', KEYS[2], ARGV[i])
end
return #ARGV
`)

// readScript returns the entries whose lease has not run out.
// KEYS: entries hash, expiries sorted set.
var readPresenceScript = redis.NewScript(presenceNow + `
local ids = redis.call('zrangebyscore', KEYS[2], '(' .. now, '+inf')
local out = {}
for i = 1, #ids, ` + strconv.Itoa(unpackBatch) + ` do
	local vals = redis.call('hmget', KEYS[1], unpack(ids, i, math.min(i + ` + strconv.Itoa(unpackBatch-1) + `, #ids)))
	for _, v in ipairs(vals) do
		if v then out[#out + 1] = v end
	end
end
return out
`)

// claimScript removes up to a batch of entries whose lease has run out
// and returns them. Redis runs a script alone, so an entry is removed,
// and returned, by one run only: that run's caller announces it.
//
// KEYS: entries hash, expiries sorted set. ARGV: the batch size.
var claimScript = redis.NewScript(presenceNow + `
local ids = redis.call('zrangebyscore', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for _, id in ipairs(ids) do
	local v = redis.call('hget', KEYS[1], id)
	redis.call('hdel', KEYS[1], id)
	redis.call('zrem', KEYS[2], id)
	if v then out[#out + 1] = v end
end
return {#ids, out}
`)

// presenceKeys returns the keys of room's presence: the entries hash and
// the expiries sorted set, under the room's hash tag.
func (b *Broker) presenceKeys(room string) []string {
	tag := b.roomTag(room)
	return []string{tag + "p:" + room, tag + "e:" + room}
}

// PutPresence stores entries in room, each as JSON in the room's entries
// hash under its ID, and leases them until lease from now by Redis's
// clock, in one script: see "Presence" in the package doc. Like Publish,
// it waits for at most the publish timeout, and fails at once with
// ErrUnavailable while Redis is known unreachable.
func (b *Broker) PutPresence(room string, entries []wsroom.PresenceRecord, lease time.Duration) error {
	if len(entries) == 0 {
		return nil
	}
	args := make([]any, 0, 1+2*len(entries))
	args = append(args, max(lease.Milliseconds(), 1))
	for _, x := range entries {
		data, err := json.Marshal(x)
		if err != nil {
			return fmt.Errorf("redisbroker: presence in room %q: %w", room, err)
		}
		args = append(args, x.ID, data)
	}
	_, err := b.presenceCommand(room, putScript, args)
	return err
}

// RefreshPresence leases room's entries of ids until lease from now and
// returns the IDs the room's hash does not hold, in one script that
// sends IDs, not entries. It is bounded and fails like PutPresence.
func (b *Broker) RefreshPresence(room string, ids []string, lease time.Duration) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 1+len(ids))
	args = append(args, max(lease.Milliseconds(), 1))
	for _, id := range ids {
		args = append(args, id)
	}
	res, err := b.presenceCommand(room, refreshScript, args)
	if err != nil {
		return nil, err
	}
	vals, _ := res.([]any)
	missing := make([]string, 0, len(vals))
	for _, v := range vals {
		if id, ok := v.(string); ok {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// DropPresence removes room's entries of ids, in one script. It is
// bounded and fails like PutPresence.
func (b *Broker) DropPresence(room string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	_, err := b.presenceCommand(room, dropScript, args)
	return err
}

// presenceCommand runs a script that changes room's presence, as Publish
// runs a PUBLISH: bounded by the publish timeout, through the breaker.
func (b *Broker) presenceCommand(room string, script *redis.Script, args []any) (any, error) {
	b.publishing.RLock() // Close waits for commands in progress
	defer b.publishing.RUnlock()
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if err := b.breaker.allow(); err != nil {
		return nil, fmt.Errorf("redisbroker: presence in room %q: %w", room, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.publishTimeout)
	defer cancel()
	res, err := script.Run(ctx, b.client, b.presenceKeys(room), args...).Result()
	b.settle(err)
	if err != nil {
		return nil, fmt.Errorf("redisbroker: presence in room %q: %w", room, err)
	}
	return res, nil
}

// ReadPresence returns room's entries whose lease has not run out, by
// Redis's clock, in one script. It waits for Redis for as long as ctx
// allows, and fails at once with ErrUnavailable while Redis is known
// unreachable. Entries that are not a PresenceRecord's JSON (written by
// something else) are skipped and counted in Stats.Malformed.
func (b *Broker) ReadPresence(ctx context.Context, room string) ([]wsroom.PresenceRecord, error) {
	if err := b.presenceAllowed(); err != nil {
		return nil, fmt.Errorf("redisbroker: presence of room %q: %w", room, err)
	}
	vals, err := readPresenceScript.Run(ctx, b.client, b.presenceKeys(room)).Slice()
	if err != nil {
		return nil, fmt.Errorf("redisbroker: presence of room %q: %w", room, err)
	}
	return b.parseRecords(vals), nil
}

// ClaimExpired removes room's entries whose lease has run out and
// returns them, a batch per script run, until a run finds fewer than a
// batch. Redis runs each script alone: an entry is returned to one
// caller only, whichever the process. It waits and fails like
// ReadPresence; an error after some batches returns what they claimed
// with it, since those are no longer in Redis.
func (b *Broker) ClaimExpired(ctx context.Context, room string) ([]wsroom.PresenceRecord, error) {
	if err := b.presenceAllowed(); err != nil {
		return nil, fmt.Errorf("redisbroker: claim in room %q: %w", room, err)
	}
	var out []wsroom.PresenceRecord
	for {
		res, err := claimScript.Run(ctx, b.client, b.presenceKeys(room), claimBatch).Slice()
		if err != nil {
			return out, fmt.Errorf("redisbroker: claim in room %q: %w", room, err)
		}
		n, _ := res[0].(int64)
		vals, _ := res[1].([]any)
		out = append(out, b.parseRecords(vals)...)
		if n < claimBatch {
			return out, nil
		}
	}
}

// presenceAllowed returns why a presence read may not try Redis, if it
// may not.
func (b *Broker) presenceAllowed() error {
	if b.closed.Load() {
		return ErrClosed
	}
	return b.breaker.allow()
}

// parseRecords decodes the entries a script returned, skipping and
// counting those that are not a record's JSON.
func (b *Broker) parseRecords(vals []any) []wsroom.PresenceRecord {
	out := make([]wsroom.PresenceRecord, 0, len(vals))
	for _, v := range vals {
		s, ok := v.(string)
		var x wsroom.PresenceRecord
		if !ok || json.Unmarshal([]byte(s), &x) != nil || x.ID == "" {
			b.malformed.Add(1)
			continue
		}
		out = append(out, x)
	}
	return out
}
