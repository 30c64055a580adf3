// This file owns the rebalance journal of ring.md, the hash polyshop:rebalance next to
// the ring record in the registry's Redis: which ring a rebalance started from and which
// it goes to. It makes a second rebalance to another ring wait for the first, lets the
// same command resume it, and changes the ring record in the same script that marks it
// done.
package rebalance

import (
	"context"
	"errors"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/ringrecord"
)

// JournalKey is the journal's hash: from_epoch, from_members, to_members, state.
const JournalKey = "polyshop:rebalance"

// Journal states: moving until the ring record names the new members, then done.
const (
	StateMoving = "moving"
	StateDone   = "done"
)

var (
	// ErrBusy: another rebalance, to other members, is unfinished.
	ErrBusy = errors.New("another rebalance is unfinished")
	// ErrNoRecord: there is no ring record (no shard has started with the registry).
	ErrNoRecord = errors.New("no ring record")
	// ErrRecordChanged: the ring record is not the one the rebalance started from.
	ErrRecordChanged = errors.New("the ring record changed under the rebalance")
)

// plan is what a rebalance to `to` will do, read before anything is written.
type plan struct {
	fromEpoch int64
	from      []string
	resume    bool // an unfinished journal to the same members
	nothing   bool // the record already names the members and no journal is open
}

// beginScript: KEYS record, journal; ARGV the new members (sorted, comma-joined),
// 'dry' or 'write'. Decides from the record and the journal alone: an unfinished
// journal to the same members is resumed and one to others refused; otherwise a record
// that already names the members needs nothing, and any other starts a journal (write).
var beginScript = goredis.NewScript(`
local rec = redis.call('HMGET', KEYS[1], 'epoch', 'members')
if not rec[1] or not rec[2] then return {'no_record'} end
local j = redis.call('HMGET', KEYS[2], 'from_epoch', 'from_members', 'to_members', 'state')
if j[4] and j[4] ~= 'done' then
  if j[3] ~= ARGV[1] then return {'busy', j[3] or ''} end
  if rec[1] ~= j[1] or rec[2] ~= j[2] then return {'changed', rec[1], rec[2]} end
  return {'resumed', j[1], j[2]}
end
if rec[2] == ARGV[1] then return {'nothing', rec[1], rec[2]} end
if ARGV[2] == 'write' then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'from_epoch', rec[1], 'from_members', rec[2], 'to_members', ARGV[1], 'state', 'moving')
end
return {'started', rec[1], rec[2]}
`)

// completeScript: KEYS record, journal; ARGV the new members. Writes the record
// (members, epoch + 1) and marks the journal done in one step, so no reader ever sees
// one without the other; done already answers the record's epoch.
var completeScript = goredis.NewScript(`
local j = redis.call('HMGET', KEYS[2], 'from_epoch', 'from_members', 'to_members', 'state')
if j[3] ~= ARGV[1] then return {'not_ours', j[3] or ''} end
local rec = redis.call('HMGET', KEYS[1], 'epoch', 'members')
if j[4] == 'done' then return {'done', rec[1] or ''} end
if rec[1] ~= j[1] or rec[2] ~= j[2] then return {'changed', rec[1] or '', rec[2] or ''} end
local epoch = tonumber(j[1]) + 1
redis.call('HSET', KEYS[1], 'epoch', epoch, 'members', ARGV[1])
redis.call('HSET', KEYS[2], 'state', 'done')
return {'done', tostring(epoch)}
`)

// begin runs beginScript; write=false only plans.
func begin(ctx context.Context, rdb *goredis.Client, to []string, write bool) (plan, error) {
	mode := "dry"
	if write {
		mode = "write"
	}
	target := strings.Join(to, ",")
	v, err := beginScript.Run(ctx, rdb, []string{ringrecord.Key, JournalKey}, target, mode).StringSlice()
	if err != nil {
		return plan{}, fmt.Errorf("journal: %w: %w", ringrecord.ErrUnavailable, err)
	}
	switch v[0] {
	case "no_record":
		return plan{}, fmt.Errorf("%w %s: start the shards once before rebalancing them", ErrNoRecord, ringrecord.Key)
	case "busy":
		return plan{}, fmt.Errorf("%w (%s to_members=%s): run it again with --to %s to finish it", ErrBusy, JournalKey, v[1], v[1])
	case "changed":
		return plan{}, fmt.Errorf("%w: it is epoch %s members %s now", ErrRecordChanged, v[1], v[2])
	case "resumed", "started", "nothing":
		rec, err := ringrecord.Parse(v[1], v[2])
		if err != nil {
			return plan{}, err
		}
		return plan{fromEpoch: rec.Epoch, from: rec.Members, resume: v[0] == "resumed", nothing: v[0] == "nothing"}, nil
	}
	return plan{}, fmt.Errorf("journal: unexpected reply %v", v)
}

// complete writes the new record and marks the journal done; it answers the epoch.
func complete(ctx context.Context, rdb *goredis.Client, to []string) (int64, error) {
	v, err := completeScript.Run(ctx, rdb, []string{ringrecord.Key, JournalKey}, strings.Join(to, ",")).StringSlice()
	if err != nil {
		return 0, fmt.Errorf("journal: %w: %w", ringrecord.ErrUnavailable, err)
	}
	switch v[0] {
	case "done":
		rec, err := ringrecord.Parse(v[1], strings.Join(to, ","))
		return rec.Epoch, err
	case "changed":
		return 0, fmt.Errorf("%w: it is epoch %s members %s now", ErrRecordChanged, v[1], v[2])
	case "not_ours":
		return 0, fmt.Errorf("%w: the journal now goes to %q", ErrBusy, v[1])
	}
	return 0, fmt.Errorf("journal: unexpected reply %v", v)
}
