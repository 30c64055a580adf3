// Tests of inventoryctl's command line: bad usage exits 2 before anything is written,
// a failure exits 1, a rebalance exits 0 with JSON log lines.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/ring"
	"polyshop/inventory-go/internal/ringrecord"
	"polyshop/inventory-go/internal/store/redis"
	"polyshop/inventory-go/internal/storetest"
	"polyshop/inventory-go/internal/testredis"
)

func ctl(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsageExitsTwo(t *testing.T) {
	for name, args := range map[string][]string{
		"no command":      {},
		"unknown command": {"grow"},
		"no registry":     {"rebalance", "--to", "inv-0"},
		"bad registry":    {"rebalance", "--registry", "http://x", "--to", "inv-0"},
		"bad store":       {"rebalance", "--registry", "redis://127.0.0.1:1/0", "--store", "inv-0", "--to", "inv-0"},
		"bad store url":   {"rebalance", "--registry", "redis://127.0.0.1:1/0", "--store", "inv-0=redis://h/99", "--to", "inv-0"},
		"store twice":     {"rebalance", "--registry", "redis://127.0.0.1:1/0", "--store", "inv-0=redis://h/1", "--store", "inv-0=redis://h/2", "--to", "inv-0"},
		"no --to":         {"rebalance", "--registry", "redis://127.0.0.1:1/0"},
		"bad shard id":    {"rebalance", "--registry", "redis://127.0.0.1:1/0", "--to", "inv 0"},
		"extra argument":  {"rebalance", "--registry", "redis://127.0.0.1:1/0", "--to", "inv-0", "now"},
		"unknown flag":    {"rebalance", "--registry", "redis://127.0.0.1:1/0", "--to", "inv-0", "--force"},
	} {
		code, out, errOut := ctl(t, nil, args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "usage: inventoryctl rebalance") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", name, code, out, errOut)
		}
	}
	if code, _, _ := ctl(t, map[string]string{"INVENTORYCTL_STEP_DELAY_MS": "-1"},
		"rebalance", "--registry", "redis://127.0.0.1:1/0", "--to", "inv-0"); code != 2 {
		t.Errorf("bad step delay: exit %d", code)
	}
}

func TestFailureExitsOne(t *testing.T) {
	code, out, errOut := ctl(t, nil, "rebalance", "--registry", "redis://127.0.0.1:1/0", "--store", "inv-0=redis://127.0.0.1:1/1", "--to", "inv-0")
	if code != 1 || !strings.Contains(out, `"msg":"rebalance failed"`) || errOut == "" {
		t.Fatalf("registry unreachable: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestRebalanceExitsZero(t *testing.T) {
	opt := testredis.Start(t)
	ctx := context.Background()
	url := func(db string) string { return "redis://" + opt.Addr + "/" + db }
	reg := goredis.NewClient(&goredis.Options{Addr: opt.Addr})
	defer reg.Close()
	if _, err := ringrecord.Ensure(ctx, reg, []string{"inv-0"}); err != nil {
		t.Fatal(err)
	}
	c := storetest.ShardCatalog()
	o := *opt
	o.DB = 1
	s, err := redis.NewShard(ctx, &o, inventory.NewShard("inv-0", ring.New([]string{"inv-0"}), c).Owned(c), inventory.DefaultTiming, "inv-0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	args := []string{"rebalance", "--registry", url("0"), "--store", "inv-0=" + url("1"), "--to", "inv-0, inv-1"}
	// Without the new shard's store it is bad usage, found once the record is read.
	if code, _, errOut := ctl(t, nil, args...); code != 2 || !strings.Contains(errOut, "no --store for shard inv-1") {
		t.Fatalf("missing --store: exit %d %s", code, errOut)
	}
	args = append(args, "--store", "inv-1="+url("2"))
	code, out, errOut := ctl(t, nil, args...)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var done map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil || l["service"] != "inventory" || l["cmd"] != "inventoryctl" {
			t.Fatalf("log line %q", line)
		}
		if l["msg"] == "rebalance: done" {
			done = l
		}
	}
	if done == nil || done["epoch"] != 2.0 || done["moved"].(float64) < 1 {
		t.Fatalf("no done line with epoch 2 and moves: %s", out)
	}
	if code, out, _ := ctl(t, nil, args...); code != 0 || !strings.Contains(out, "nothing to do") {
		t.Fatalf("again: exit %d %s", code, out)
	}
}
