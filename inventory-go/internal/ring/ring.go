// Package ring is the inventory shard ring of services/contracts/ring.md: which shard
// owns a product. The Rust and Python routers implement the same rule, and all three run
// ring-vectors.json, so a change here that moves any owner fails the vector test.
package ring

import (
	"crypto/md5"
	"encoding/binary"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// VirtualNodes is the number of points each shard owns on the ring (ring.md).
const VirtualNodes = 150

type point struct {
	hash uint64
	name string
}

// Ring maps product ids to shard names. It is immutable, so one value may be shared by
// every request without a lock.
type Ring struct {
	names  []string // sorted, distinct
	points []point  // sorted by hash, then name: the first of equal hashes wins
}

// New builds the ring of names: each is trimmed, and empty and duplicate ones are
// dropped, so the order of the list never changes an owner.
func New(names []string) *Ring {
	r := &Ring{}
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			r.names = append(r.names, n)
		}
	}
	slices.Sort(r.names)
	r.names = slices.Compact(r.names)
	r.points = make([]point, 0, len(r.names)*VirtualNodes)
	for _, n := range r.names {
		for i := range VirtualNodes {
			r.points = append(r.points, point{Hash(n + ":" + strconv.Itoa(i)), n})
		}
	}
	sortPoints(r.points)
	return r
}

// sortPoints orders points by hash, and equal hashes by name, so the name that sorts
// first wins a tie (ring.md).
func sortPoints(points []point) {
	sort.Slice(points, func(i, j int) bool {
		a, b := points[i], points[j]
		return a.hash < b.hash || a.hash == b.hash && a.name < b.name
	})
}

// Hash is ring.md's h: the first 8 bytes of md5(s), big-endian.
func Hash(s string) uint64 {
	sum := md5.Sum([]byte(s))
	return binary.BigEndian.Uint64(sum[:8])
}

// Names answers the shard names, sorted.
func (r *Ring) Names() []string { return slices.Clone(r.names) }

// Len is the number of shards.
func (r *Ring) Len() int { return len(r.names) }

// start is the index of the first point >= h(decimal(id)), wrapping to 0.
func (r *Ring) start(id uint64) int {
	h := Hash(strconv.FormatUint(id, 10))
	i := sort.Search(len(r.points), func(i int) bool { return r.points[i].hash >= h })
	if i == len(r.points) {
		i = 0
	}
	return i
}

// Owner answers the shard that owns product id, or "" for an empty ring.
func (r *Ring) Owner(id uint64) string {
	if len(r.points) == 0 {
		return ""
	}
	return r.points[r.start(id)].name
}

// Owners answers the owner of id followed by the next distinct shards clockwise,
// min(replicas, Len()) names in all (none for replicas < 1 or an empty ring).
func (r *Ring) Owners(id uint64, replicas int) []string {
	want := min(replicas, len(r.names))
	if want <= 0 {
		return nil
	}
	out := make([]string, 0, want)
	at := r.start(id)
	for step := 0; step < len(r.points) && len(out) < want; step++ {
		n := r.points[(at+step)%len(r.points)].name
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
