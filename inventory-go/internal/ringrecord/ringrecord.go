// Package ringrecord owns the inventory ring record of ring.md, the Redis hash
// polyshop:ring:inventory {epoch, members} in the REGISTRY_URL database. The members of
// the record, not any process's INVENTORY_SHARDS, are the ring: liveness never changes
// ownership, only a rebalance changes the record.
package ringrecord

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/ring"
)

// ErrUnavailable: Redis did not answer (worth retrying); other errors are a bad record.
var ErrUnavailable = errors.New("ring record: redis unavailable")

// Key is the ring record's hash.
const Key = "polyshop:ring:inventory"

// Record is the ring record as read from Redis.
type Record struct {
	// Epoch starts at 1 and grows by one per change of the members.
	Epoch int64
	// Members are the shard ids, sorted.
	Members []string
	// Created: this call wrote the record (it did not exist).
	Created bool
}

// ensureScript: KEYS[1] the record, ARGV[1] the members to create it with. The check
// and the write are one script, so of several shards starting at once exactly one
// creates the record and every other one reads what that one wrote; an existing
// record is never overwritten.
var ensureScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'epoch', 1, 'members', ARGV[1])
  return {1, '1', ARGV[1]}
end
local r = redis.call('HMGET', KEYS[1], 'epoch', 'members')
return {0, r[1] or '', r[2] or ''}
`)

// Ensure creates the record from members (epoch 1) unless it exists, and answers the
// record as it now is. members must name at least one shard.
func Ensure(ctx context.Context, rdb goredis.Scripter, members []string) (Record, error) {
	names := ring.New(members).Names()
	if len(names) == 0 {
		return Record{}, fmt.Errorf("ring record: no members to create it with")
	}
	v, err := ensureScript.Run(ctx, rdb, []string{Key}, strings.Join(names, ",")).Slice()
	if err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	created, _ := v[0].(int64)
	epochText, _ := v[1].(string)
	membersText, _ := v[2].(string)
	rec, err := Parse(epochText, membersText)
	if err != nil {
		return Record{}, err
	}
	rec.Created = created == 1
	return rec, nil
}

// Parse checks a stored record: a bad one is refused rather than read as an empty ring
// (which would make every product answer 421 with no owner).
func Parse(epochText, membersText string) (Record, error) {
	epoch, err := strconv.ParseInt(epochText, 10, 64)
	if err != nil || epoch < 1 {
		return Record{}, fmt.Errorf("ring record %s: epoch %q is not an integer >= 1", Key, epochText)
	}
	names := ring.New(strings.Split(membersText, ",")).Names()
	if len(names) == 0 {
		return Record{}, fmt.Errorf("ring record %s: no members", Key)
	}
	return Record{Epoch: epoch, Members: names}, nil
}
