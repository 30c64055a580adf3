// Tests of the ring: every vector of ring-vectors.json (the cross-language contract),
// then the properties ring.md promises over the real id range.
package ring

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// vectorsPath is relative to this package's directory (go test runs there).
const vectorsPath = "../../../services/contracts/ring-vectors.json"

type vectorFile struct {
	VirtualNodes int `json:"virtual_nodes"`
	Vectors      []struct {
		Nodes    []string `json:"nodes"`
		Key      uint64   `json:"key"`
		Replicas int      `json:"replicas"`
		Owners   []string `json:"owners"`
	} `json:"vectors"`
}

func TestVectors(t *testing.T) {
	b, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v.VirtualNodes != VirtualNodes {
		t.Fatalf("vectors use %d virtual nodes, the ring %d", v.VirtualNodes, VirtualNodes)
	}
	if len(v.Vectors) < 400 {
		t.Fatalf("only %d vectors: has ring-vectors.json changed shape?", len(v.Vectors))
	}
	failed := 0
	for i, tc := range v.Vectors {
		r := New(tc.Nodes)
		got := r.Owners(tc.Key, tc.Replicas)
		owner := r.Owner(tc.Key)
		if !slices.Equal(got, tc.Owners) || owner != tc.Owners[0] {
			failed++
			if failed <= 10 {
				t.Errorf("vector %d: nodes %v key %d replicas %d: owners %v (owner %q), want %v",
					i, tc.Nodes, tc.Key, tc.Replicas, got, owner, tc.Owners)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d vectors fail", failed, len(v.Vectors))
	}
}

func TestHash(t *testing.T) {
	// md5("123") = 202cb962ac59075b964b07152d234b70: the first 8 bytes, big-endian.
	if got, want := Hash("123"), uint64(0x202cb962ac59075b); got != want {
		t.Fatalf("Hash(123) = %#x, want %#x", got, want)
	}
}

func TestNamesAreCleaned(t *testing.T) {
	r := New([]string{" inv-b", "inv-a", "", "inv-b ", "  ", "inv-a"})
	if got := r.Names(); !slices.Equal(got, []string{"inv-a", "inv-b"}) {
		t.Fatalf("Names() = %v", got)
	}
	if r.Len() != 2 {
		t.Fatalf("Len() = %d", r.Len())
	}
	other := New([]string{"inv-b", "inv-a"})
	for id := uint64(1); id <= 1000; id++ {
		if r.Owner(id) != other.Owner(id) {
			t.Fatalf("product %d: owner depends on the list (%q vs %q)", id, r.Owner(id), other.Owner(id))
		}
	}
}

func TestEmptyRing(t *testing.T) {
	r := New(nil)
	if r.Owner(1) != "" || r.Owners(1, 3) != nil || r.Len() != 0 {
		t.Fatalf("empty ring: owner %q owners %v len %d", r.Owner(1), r.Owners(1, 3), r.Len())
	}
	if got := New([]string{"inv-a"}).Owners(1, 0); got != nil {
		t.Fatalf("replicas 0: %v", got)
	}
}

// TestPointEdges pins what md5 never produces in the vectors: a point exactly at a
// product's hash is that product's owner (first point >= h), and of two shards with
// the same point the name that sorts first wins.
func TestPointEdges(t *testing.T) {
	h := Hash("7")
	r := &Ring{names: []string{"a", "b", "c", "d"}, points: []point{
		{h + 1, "d"}, {h, "c"}, {h - 1, "a"}, {h, "b"},
	}}
	sortPoints(r.points)
	if got := r.Owners(7, 4); !slices.Equal(got, []string{"b", "c", "d", "a"}) {
		t.Fatalf("owners of 7 = %v, want [b c d a]", got)
	}
}

const products = 10_000

func counts(r *Ring) map[string]int {
	c := map[string]int{}
	for id := uint64(1); id <= products; id++ {
		c[r.Owner(id)]++
	}
	return c
}

// TestAddingAShardMovesOnlyToIt: inv-0..2 plus inv-3 moves about a quarter of the
// products, every one of them to inv-3 (ring.md: no key moves between shards that stay).
func TestAddingAShardMovesOnlyToIt(t *testing.T) {
	before := New([]string{"inv-0", "inv-1", "inv-2"})
	after := New([]string{"inv-0", "inv-1", "inv-2", "inv-3"})
	moved := 0
	for id := uint64(1); id <= products; id++ {
		was, is := before.Owner(id), after.Owner(id)
		if was == is {
			continue
		}
		moved++
		if is != "inv-3" {
			t.Fatalf("product %d moved from %s to %s, not to the new shard", id, was, is)
		}
	}
	share := float64(moved) / products
	t.Logf("adding inv-3 moved %d of %d products (%.1f %%)", moved, products, 100*share)
	if share < 0.20 || share > 0.30 {
		t.Fatalf("adding a 4th shard moved %.1f %% of the products, want 20 .. 30 %%", 100*share)
	}
}

// TestBalance: over ids 1..10000, each of 3 shards owns within +-15 % of an even third.
func TestBalance(t *testing.T) {
	c := counts(New([]string{"inv-0", "inv-1", "inv-2"}))
	t.Logf("3 shards, products 1..%d: %v", products, c)
	even := products / 3
	lo, hi := even*85/100, even*115/100+1 // 2833 .. 3833
	for _, n := range []string{"inv-0", "inv-1", "inv-2"} {
		if c[n] < lo || c[n] > hi {
			t.Errorf("%s owns %d products, want %d .. %d", n, c[n], lo, hi)
		}
	}
}

func BenchmarkOwner(b *testing.B) {
	r := New([]string{"inv-0", "inv-1", "inv-2", "inv-3", "inv-4"})
	var id uint64
	for b.Loop() {
		id++
		_ = r.Owner(id%1_000_000 + 1)
	}
}
