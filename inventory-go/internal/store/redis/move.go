// This file owns the Redis half of a rebalance (ring.md, Rebalance): the handoff
// records a shard answers from, and Mover, the handle inventoryctl moves products
// between two shards' databases with. Only the Redis store can be rebalanced: the
// memory store lives and dies with its process, so there is nothing to move.
package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/inventory"
)

const (
	productPrefix = "polyshop:inventory:product:"
	resPrefix     = "polyshop:inventory:res:"
	handoffPrefix = "polyshop:inventory:handoff:"
)

// ProductHandoffs is inventory.Handoffs: the shards that products of ids were handed to.
func (s *Store) ProductHandoffs(ctx context.Context, ids []int64) (map[int64]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = handoffPrefix + strconv.FormatInt(id, 10)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := map[int64]string{}
	for i, v := range vals {
		if to, ok := v.(string); ok && to != "" {
			out[ids[i]] = to
		}
	}
	return out, nil
}

// HoldHandoff is inventory.Handoffs: the shard hold id was handed to, "" if none.
func (s *Store) HoldHandoff(ctx context.Context, id string) (string, error) {
	to, err := s.rdb.Get(ctx, handoffPrefix+"res:"+id).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", s.fail(ctx, err)
	}
	return to, nil
}

// Mover is one shard's database as a rebalance works on it. It has no catalog and
// never seeds: it only moves what a shard holds.
type Mover struct {
	rdb *goredis.Client
	id  string
}

// Move errors: the data is not in the state the protocol expects, so the rebalance
// stops rather than guess.
var (
	ErrNotHeld      = errors.New("product not held here")
	ErrFencedOther  = errors.New("product fenced for another shard")
	ErrNotFenced    = errors.New("product not fenced")
	ErrUnseeded     = errors.New("shard has never completed its seed")
	ErrWrongParcel  = errors.New("parcel not addressed to this shard")
	errUnexpectedMv = errors.New("unexpected reply")
)

// NewMover connects to shard id's database. Like the store it never retries a script:
// each is idempotent, but a retry is the rebalance's decision, made from the data.
func NewMover(opt *goredis.Options, id string) *Mover {
	o := *opt
	o.MaxRetries = -1
	o.ContextTimeoutEnabled = true
	o.DialTimeout = time.Second
	return &Mover{rdb: goredis.NewClient(&o), id: id}
}

// ID is the shard whose database this is.
func (m *Mover) ID() string { return m.id }

// Close closes the connection.
func (m *Mover) Close() error { return m.rdb.Close() }

func (m *Mover) run(ctx context.Context, what string, script *goredis.Script, keys []string, args ...any) ([]any, string, error) {
	v, err := script.Run(ctx, m.rdb, keys, args...).Slice()
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w: %w", what, m.id, inventory.ErrStoreUnavailable, err)
	}
	code, _ := v[0].(string)
	return v, code, nil
}

// Prepare checks that the database is this shard's. A source (a member of the old
// ring) must have completed its seed, else a later start would seed over what was
// moved; a target that only the new ring names is claimed and marked seeded, so its
// first start seeds nothing: what it holds is what the rebalance brought it.
func (m *Mover) Prepare(ctx context.Context, source bool) error {
	role := "target"
	if source {
		role = "source"
	}
	v, code, err := m.run(ctx, "prepare", prepareScript, []string{seededKey, shardKey}, m.id, role)
	if err != nil {
		return err
	}
	switch code {
	case "ok":
		return nil
	case "other":
		return fmt.Errorf("%w: it is shard %v's, not %s's", ErrOtherData, v[1], m.id)
	case "unsharded":
		return fmt.Errorf("%w: it is an unsharded inventory's, not %s's", ErrOtherData, m.id)
	case "unseeded":
		return fmt.Errorf("%s: %w: start it once before rebalancing", m.id, ErrUnseeded)
	}
	return fmt.Errorf("prepare %s: %w %v", m.id, errUnexpectedMv, v)
}

// scan calls fn with each page of the keys matching prefix*, stripped of prefix.
func (m *Mover) scan(ctx context.Context, prefix string, fn func([]string) error) error {
	var cursor uint64
	for {
		keys, next, err := m.rdb.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return fmt.Errorf("scan %s: %w: %w", m.id, inventory.ErrStoreUnavailable, err)
		}
		for i, k := range keys {
			keys[i] = strings.TrimPrefix(k, prefix)
		}
		if len(keys) > 0 {
			if err := fn(keys); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// IndexHolds adds the holds made before the per-product hold index existed to it, so a
// move finds every hold of its product. Holds made since are indexed as they are made.
func (m *Mover) IndexHolds(ctx context.Context) (int, error) {
	n := 0
	err := m.scan(ctx, resPrefix, func(rids []string) error {
		args := make([]any, len(rids))
		for i, r := range rids {
			args[i] = r
		}
		added, err := indexScript.Run(ctx, m.rdb, nil, args...).Int()
		if err != nil {
			return fmt.Errorf("index holds %s: %w: %w", m.id, inventory.ErrStoreUnavailable, err)
		}
		n += added
		return nil
	})
	return n, err
}

// Held is a product record in the database and, when a rebalance fenced it, the shard
// it is moving to.
type Held struct {
	ProductID int64
	Moving    string
}

// Products lists the products this database holds.
func (m *Mover) Products(ctx context.Context) ([]Held, error) {
	var out []Held
	err := m.scan(ctx, productPrefix, func(ids []string) error {
		pipe := m.rdb.Pipeline()
		cmds := make([]*goredis.StringCmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.HGet(ctx, productPrefix+id, "moving")
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
			return fmt.Errorf("products %s: %w: %w", m.id, inventory.ErrStoreUnavailable, err)
		}
		for i, id := range ids {
			pid, err := strconv.ParseInt(id, 10, 64)
			if err != nil {
				return fmt.Errorf("products %s: key %s%s is not a product id", m.id, productPrefix, id)
			}
			moving, _ := cmds[i].Result()
			out = append(out, Held{ProductID: pid, Moving: moving})
		}
		return nil
	})
	return out, err
}

// Has reports whether the database holds product id.
func (m *Mover) Has(ctx context.Context, id int64) (bool, error) {
	n, err := m.rdb.Exists(ctx, productPrefix+strconv.FormatInt(id, 10)).Result()
	if err != nil {
		return false, fmt.Errorf("has %s: %w: %w", m.id, inventory.ErrStoreUnavailable, err)
	}
	return n == 1, nil
}

// Fence marks product id as moving to shard to: from now on it is read-only here.
// Fencing again for the same shard is a no-op.
func (m *Mover) Fence(ctx context.Context, id int64, to string) error {
	v, code, err := m.run(ctx, "fence", fenceScript, nil, id, to)
	if err != nil {
		return err
	}
	switch code {
	case "fenced":
		return nil
	case "absent":
		return fmt.Errorf("fence product %d at %s: %w", id, m.id, ErrNotHeld)
	case "fenced_other":
		return fmt.Errorf("fence product %d at %s for %s: %w (%v)", id, m.id, to, ErrFencedOther, v[1])
	}
	return fmt.Errorf("fence %s: %w %v", m.id, errUnexpectedMv, v)
}

// Parcel is a fenced product and its holds as exported from its old owner; its content
// is the scripts' business (JSON written by exportScript, read by importScript).
type Parcel struct {
	ProductID int64
	To        string
	Holds     int
	data      string
}

// Export reads fenced product id with its holds.
func (m *Mover) Export(ctx context.Context, id int64) (Parcel, error) {
	v, code, err := m.run(ctx, "export", exportScript, nil, id)
	if err != nil {
		return Parcel{}, err
	}
	switch code {
	case "parcel":
		data, _ := v[1].(string)
		holds, _ := v[2].(int64)
		to, _ := v[3].(string) // the fence's shard: import checks the parcel is its own
		return Parcel{ProductID: id, To: to, Holds: int(holds), data: data}, nil
	case "absent":
		return Parcel{}, fmt.Errorf("export product %d at %s: %w", id, m.id, ErrNotHeld)
	case "not_fenced":
		return Parcel{}, fmt.Errorf("export product %d at %s: %w", id, m.id, ErrNotFenced)
	}
	return Parcel{}, fmt.Errorf("export %s: %w %v", m.id, errUnexpectedMv, v)
}

// Import creates the parcel's product and holds here, unless the product is here
// already (an earlier import): it answers whether this call created it.
func (m *Mover) Import(ctx context.Context, p Parcel) (bool, error) {
	v, code, err := m.run(ctx, "import", importScript, []string{shardKey}, m.id, p.data)
	if err != nil {
		return false, err
	}
	switch code {
	case "imported":
		return true, nil
	case "present":
		return false, nil
	case "other":
		return false, fmt.Errorf("import product %d at %s: %w (%v)", p.ProductID, m.id, ErrWrongParcel, v[1])
	case "bad_parcel":
		return false, fmt.Errorf("import product %d at %s: %w: bad %v", p.ProductID, m.id, ErrWrongParcel, v[1])
	}
	return false, fmt.Errorf("import %s: %w %v", m.id, errUnexpectedMv, v)
}

// Finish deletes fenced product id and its holds here, leaving handoff records that
// name shard to, which must hold it by now. Finishing again is a no-op; it answers
// whether this call deleted it.
func (m *Mover) Finish(ctx context.Context, id int64, to string) (bool, error) {
	v, code, err := m.run(ctx, "finish", finishScript, nil, id, to)
	if err != nil {
		return false, err
	}
	switch code {
	case "finished":
		return true, nil
	case "done":
		return false, nil
	case "absent":
		return false, fmt.Errorf("finish product %d at %s: %w", id, m.id, ErrNotHeld)
	case "not_fenced":
		return false, fmt.Errorf("finish product %d at %s for %s: %w (moving %q)", id, m.id, to, ErrNotFenced, v[1])
	}
	return false, fmt.Errorf("finish %s: %w %v", m.id, errUnexpectedMv, v)
}
