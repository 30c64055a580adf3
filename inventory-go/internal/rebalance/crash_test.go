// The inventoryctl binary killed with SIGKILL mid-move, twice, then run again, ends in
// the state an uninterrupted run leaves on an identical cluster; and the journal's
// rules: another target waits, the same one resumes, a changed record stops it.
package rebalance_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/rebalance"
	"polyshop/inventory-go/internal/ring"
	"polyshop/inventory-go/internal/ringrecord"
	"polyshop/inventory-go/internal/storetest"
	"polyshop/inventory-go/internal/testredis"
)

// buildCtl builds cmd/inventoryctl into a temporary directory.
func buildCtl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "inventoryctl")
	out, err := exec.Command("go", "build", "-o", bin, "polyshop/inventory-go/cmd/inventoryctl").CombinedOutput()
	if err != nil {
		t.Fatalf("go build inventoryctl: %v\n%s", err, out)
	}
	return bin
}

func (cl *cluster) ctl(bin string, stepDelayMs int, to []string) *exec.Cmd {
	args := []string{"rebalance", "--registry", "redis://" + cl.opt.Addr + "/0", "--to", strings.Join(to, ",")}
	for _, id := range slices.Sorted(maps.Keys(cl.stores)) {
		args = append(args, "--store", id+"=redis://"+cl.opt.Addr+"/"+strconv.Itoa(cl.stores[id].DB))
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"INVENTORYCTL_STEP_DELAY_MS=" + strconv.Itoa(stepDelayMs), "LOG_LEVEL=debug"}
	return cmd
}

// holdsMade makes the same holds on every cluster: on the first 40 products, one held,
// one committed and one released, with idempotency keys.
func holdsMade(t *testing.T, cl *cluster) {
	t.Helper()
	r := newRouter(cl)
	defer r.close()
	for _, p := range productIDs(cl.catalog)[:40] {
		for i, fate := range []string{inventory.StateHeld, inventory.StateCommitted, inventory.StateReleased} {
			res, err := call(r, p, func(s inventory.Store) (inventory.Reservation, error) {
				res, _, err := s.Reserve(bg, inventory.ReserveRequest{ProductID: p, Quantity: 1, TTL: time.Hour,
					IdempotencyKey: "k-" + strconv.FormatInt(p, 10) + "-" + strconv.Itoa(i), Fingerprint: "fp"})
				return res, err
			})
			if err != nil {
				t.Fatal(err)
			}
			switch fate {
			case inventory.StateCommitted:
				_, err = call(r, p, func(s inventory.Store) (inventory.Settlement, error) { return s.Commit(bg, res.ID) })
			case inventory.StateReleased:
				_, err = call(r, p, func(s inventory.Store) (inventory.Settlement, error) { return s.Release(bg, res.ID) })
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// snapshot is what two clusters must agree on after the same rebalance: per product its
// holder and units, per shard its holds by state and its handoff records.
type snapshot struct {
	products map[int64]string
	holds    map[string]map[string]int
	handoffs map[string]int
}

func (cl *cluster) snapshot() snapshot {
	cl.t.Helper()
	s := snapshot{products: map[int64]string{}, holds: map[string]map[string]int{}, handoffs: map[string]int{}}
	for p, hs := range cl.holders() {
		it := cl.item(hs[0], p)
		s.products[p] = strings.Join(hs, "+") + " " + strconv.FormatInt(it.available, 10) + "/" +
			strconv.FormatInt(it.reserved, 10) + "/" + strconv.FormatInt(it.sold, 10)
	}
	for id, db := range cl.dbs {
		s.holds[id] = map[string]int{}
		keys, _ := db.Keys(bg, "polyshop:inventory:res:*").Result()
		for _, k := range keys {
			st, _ := db.HGet(bg, k, "state").Result()
			s.holds[id][st]++
		}
		keys, _ = db.Keys(bg, "polyshop:inventory:handoff:*").Result()
		s.handoffs[id] = len(keys)
	}
	return s
}

func countProducts(t *testing.T, db *goredis.Client) int {
	t.Helper()
	keys, err := db.Keys(bg, "polyshop:inventory:product:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

func TestKilledRebalanceResumes(t *testing.T) {
	bin := buildCtl(t)
	c := storetest.RealCatalog(t)
	from, to := ids(3), ids(4)
	crashed := newCluster(t, testredis.Start(t), c, from, to, false)
	reference := newCluster(t, testredis.Start(t), c, from, to, false)
	holdsMade(t, crashed)
	holdsMade(t, reference)

	// Killed twice, inside a move's windows: after the 15th copy (the product is fenced
	// at its old shard and present at the new one), then after the 40th fence of the
	// second run (fenced, not yet copied).
	kills := 0
	for _, k := range []struct {
		step  string
		nth   int
		atNew bool
	}{{"rebalance: copied", 15, true}, {"rebalance: fenced", 40, false}} {
		cmd := crashed.ctl(bin, 10, to)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		var fenced float64
		for seen := 0; seen < k.nth && sc.Scan(); {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == k.step {
				seen++
				fenced, _ = line["product_id"].(float64)
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		kills++
		pid := int64(fenced)
		from, newOwner := ring.New(from).Owner(uint64(pid)), ring.New(to).Owner(uint64(pid))
		j, rec := crashed.journal(), crashed.record()
		atNew, _ := crashed.dbs[newOwner].Exists(bg, "polyshop:inventory:product:"+strconv.FormatInt(pid, 10)).Result()
		t.Logf("kill %d after %s #%d: product %d fenced at %s: %v, at %s: %v; inv-3 holds %d; journal %v; record %v",
			kills, k.step, k.nth, pid, from, crashed.item(from, pid).fenced, newOwner, atNew == 1,
			countProducts(t, crashed.dbs["inv-3"]), j, rec)
		if pid == 0 || !crashed.item(from, pid).fenced || (atNew == 1) != k.atNew ||
			j["state"] != rebalance.StateMoving || rec["epoch"] != "1" {
			t.Fatalf("not killed inside the move of product %d", pid)
		}
		// Another target waits for this one (exit 1), and writes nothing.
		other := crashed.ctl(bin, 0, ids(5))
		if out, err := other.CombinedOutput(); exitCode(err) != 1 || !strings.Contains(string(out), "another rebalance is unfinished") {
			t.Fatalf("a rebalance to 5 shards while one to 4 is unfinished: exit %d\n%s", exitCode(err), out)
		}
	}

	resumed := crashed.ctl(bin, 0, to)
	out, err := resumed.Output()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	done := logLine(t, out, "rebalance: done")
	if done["epoch"] != 2.0 || !strings.Contains(string(out), `"resumed":true`) {
		t.Fatalf("resume log: %v\n%s", done, out)
	}
	if out, err := reference.ctl(bin, 0, to).Output(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}

	all := productIDs(c)
	movedCrashed, movedRef := crashed.checkEnd(all), reference.checkEnd(all)
	a, b := crashed.snapshot(), reference.snapshot()
	if !maps.Equal(a.products, b.products) {
		for p := range a.products {
			if a.products[p] != b.products[p] {
				t.Errorf("product %d: %s after the kills, %s uninterrupted", p, a.products[p], b.products[p])
			}
		}
		t.FailNow()
	}
	for id := range a.holds {
		if !maps.Equal(a.holds[id], b.holds[id]) {
			t.Fatalf("%s holds %v after the kills, %v uninterrupted", id, a.holds[id], b.holds[id])
		}
	}
	if !maps.Equal(a.handoffs, b.handoffs) {
		t.Fatalf("handoff records %v after the kills, %v uninterrupted", a.handoffs, b.handoffs)
	}
	t.Logf("killed %d times, resumed: %d of %d products moved, as uninterrupted (%d); holds per shard %v; handoff records %v",
		kills, movedCrashed, len(all), movedRef, a.holds, a.handoffs)

	// Shards started on the new record seed nothing: not what they received, not what
	// they gave away.
	grown := ring.New(to)
	for _, id := range to {
		before := countProducts(t, crashed.dbs[id])
		crashed.start(id, grown)
		if n := countProducts(t, crashed.dbs[id]); n != before {
			t.Fatalf("%s started on the new ring: %d products, %d before", id, n, before)
		}
	}
	if again := crashed.checkEnd(all); again != movedCrashed {
		t.Fatalf("after the restarts %d moved, before %d", again, movedCrashed)
	}
	// And the holds that moved settle at the new shard: the held one sells once.
	r := newRouter(crashed)
	defer r.close()
	i := slices.IndexFunc(all[:40], func(p int64) bool { return grown.Owner(uint64(p)) == "inv-3" })
	if i < 0 {
		t.Fatal("none of the products with holds moved: the test proves nothing")
	}
	p := all[i]
	rids, _ := crashed.dbs["inv-3"].ZRange(bg, "polyshop:inventory:holds:"+strconv.FormatInt(p, 10), 0, -1).Result()
	if len(rids) != 3 {
		t.Fatalf("product %d moved with %d holds, want 3", p, len(rids))
	}
	for _, id := range rids {
		_, err := call(r, p, func(s inventory.Store) (inventory.Settlement, error) { return s.Commit(bg, id) })
		if err != nil && !errors.Is(err, inventory.ErrReservationReleased) {
			t.Fatalf("commit of moved hold %s: %v", id, err)
		}
	}
	if it := crashed.item("inv-3", p); it.reserved != 0 || it.sold != 2 || it.available+it.sold != crashed.stock(p) {
		t.Fatalf("product %d after committing its moved holds: %+v", p, it)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// logLine answers the JSON log line with msg, checking that every line is JSON.
func logLine(t *testing.T, out []byte, msg string) map[string]any {
	t.Helper()
	var found map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a JSON log line: %q", sc.Text())
		}
		if line["service"] != "inventory" || line["ts"] == nil || line["level"] == nil {
			t.Fatalf("log line without ts, level or service: %q", sc.Text())
		}
		if line["msg"] == msg {
			found = line
		}
	}
	if found == nil {
		t.Fatalf("no %q line in\n%s", msg, out)
	}
	return found
}

func TestJournalRules(t *testing.T) {
	cl := newCluster(t, testredis.Start(t), storetest.ShardCatalog(), ids(3), ids(4), true)

	// A missing --store and two shards on one database are usage errors; nothing is written.
	cfg := cl.config()
	cfg.Stores = maps.Clone(cl.stores)
	delete(cfg.Stores, "inv-3")
	if _, err := rebalance.Run(bg, cfg); !errors.Is(err, rebalance.ErrUsage) {
		t.Fatalf("without inv-3's store: %v, want ErrUsage", err)
	}
	cfg.Stores["inv-3"] = cl.stores["inv-0"]
	if _, err := rebalance.Run(bg, cfg); !errors.Is(err, rebalance.ErrUsage) {
		t.Fatalf("inv-3 on inv-0's database: %v, want ErrUsage", err)
	}
	if j := cl.journal(); len(j) != 0 {
		t.Fatalf("a refused rebalance wrote the journal %v", j)
	}

	// Stopped midway (its context ends), it leaves an unfinished journal.
	ctx, cancel := context.WithCancel(bg)
	cfg = cl.config()
	cfg.StepDelay = 5 * time.Millisecond
	go func() {
		for countProducts(t, cl.dbs["inv-3"]) < 3 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := rebalance.Run(ctx, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped run: %v", err)
	}
	if j := cl.journal(); j["state"] != rebalance.StateMoving || j["to_members"] != "inv-0,inv-1,inv-2,inv-3" ||
		j["from_members"] != "inv-0,inv-1,inv-2" || j["from_epoch"] != "1" {
		t.Fatalf("journal of a stopped run: %v", j)
	}
	other := cl.config()
	other.To = ids(2)
	if _, err := rebalance.Run(bg, other); !errors.Is(err, rebalance.ErrBusy) {
		t.Fatalf("another target while one is unfinished: %v, want ErrBusy", err)
	}
	res, err := rebalance.Run(bg, cl.config())
	if err != nil || !res.Resumed || res.Epoch != 2 {
		t.Fatalf("the same target resumes: %+v %v", res, err)
	}
	cl.checkEnd(productIDs(cl.catalog))

	// Back to three shards: a new rebalance from epoch 2, to epoch 3.
	back := cl.config()
	back.To = ids(3)
	res, err = rebalance.Run(bg, back)
	if err != nil || res.FromEpoch != 2 || res.Epoch != 3 || res.Moved == 0 {
		t.Fatalf("back to three shards: %+v %v", res, err)
	}
	if rec := cl.record(); rec["epoch"] != "3" || rec["members"] != "inv-0,inv-1,inv-2" {
		t.Fatalf("record %v", rec)
	}
	for p, hs := range cl.holders() {
		if len(hs) != 1 || hs[0] != ring.New(ids(3)).Owner(uint64(p)) {
			t.Fatalf("product %d held by %v after moving back", p, hs)
		}
	}
	// The products came back to their first shards: those shards serve them again.
	for _, p := range productIDs(cl.catalog) {
		if _, err := cl.served[ring.New(ids(3)).Owner(uint64(p))].Get(bg, p); err != nil {
			t.Fatalf("product %d back at its first shard: %v", p, err)
		}
	}
}

func TestRecordChangedUnderTheRebalance(t *testing.T) {
	cl := newCluster(t, testredis.Start(t), storetest.ShardCatalog(), ids(3), ids(4), true)
	ctx, cancel := context.WithCancel(bg)
	cfg := cl.config()
	cfg.StepDelay = 5 * time.Millisecond
	go func() {
		for countProducts(t, cl.dbs["inv-3"]) < 1 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, _ = rebalance.Run(ctx, cfg)
	if err := cl.registry.HSet(bg, ringrecord.Key, "epoch", 7).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rebalance.Run(bg, cl.config()); !errors.Is(err, rebalance.ErrRecordChanged) {
		t.Fatalf("record changed under an unfinished rebalance: %v, want ErrRecordChanged", err)
	}
}

func TestNoRecord(t *testing.T) {
	opt := testredis.Start(t)
	cfg := rebalance.Config{Registry: dbOpt(opt, 0), Stores: map[string]*goredis.Options{"inv-0": dbOpt(opt, 1)}, To: ids(1)}
	if _, err := rebalance.Run(bg, cfg); !errors.Is(err, rebalance.ErrNoRecord) {
		t.Fatalf("no ring record: %v, want ErrNoRecord", err)
	}
}
