// Tests of the configuration: defaults, bounds, prod refusals, masking, and the README
// env table kept equal to Knobs.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8002 || c.Env != "dev" || c.Redis != nil || c.LogLevel != "info" || c.AdminToken != "" ||
		c.MaxBodyBytes != 65536 || c.ReservationTTL != 300*time.Second || c.FaultDelay != 0 || c.FaultErrorRate != 0 {
		t.Fatalf("defaults = %+v", c)
	}
	if c.ShardID != "" || c.Shards != nil || c.RegistryURL != "" || c.Registry != nil {
		t.Fatalf("unsharded by default, with no ring record: %+v", c)
	}
	if c.InstanceID == "" || !strings.Contains(c.InstanceID, "-") {
		t.Fatalf("INSTANCE_ID default %q, want hostname-pid", c.InstanceID)
	}
}

func TestValues(t *testing.T) {
	c, err := Load(env(map[string]string{"PORT": "9000", "POLYSHOP_ENV": "prod", "REDIS_URL": "redis://:pw@127.0.0.1:6380/2",
		"LOG_LEVEL": "DEBUG", "ADMIN_TOKEN": "t", "MAX_BODY_BYTES": "1024", "RESERVATION_TTL_S": "60", "INSTANCE_ID": "inv-a"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 9000 || c.Env != "prod" || c.Redis == nil || c.Redis.Addr != "127.0.0.1:6380" || c.Redis.DB != 2 ||
		c.Redis.Password != "pw" || c.LogLevel != "debug" || c.MaxBodyBytes != 1024 || c.ReservationTTL != time.Minute || c.InstanceID != "inv-a" {
		t.Fatalf("config = %+v", c)
	}
	c, err = Load(env(map[string]string{"FAULT_DELAY_MS": "250", "FAULT_ERROR_RATE": "0.5"}))
	if err != nil || c.FaultDelay != 250*time.Millisecond || c.FaultErrorRate != 0.5 {
		t.Fatalf("fault knobs: %+v %v", c, err)
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"PORT", "0"}, {"PORT", "65536"}, {"PORT", "80ms"}, {"PORT", "x"},
		{"POLYSHOP_ENV", "staging"}, {"REDIS_URL", "http://x"}, {"LOG_LEVEL", "loud"},
		{"MAX_BODY_BYTES", "0"}, {"MAX_BODY_BYTES", "64k"}, {"RESERVATION_TTL_S", "0"}, {"RESERVATION_TTL_S", "86401"},
		{"FAULT_DELAY_MS", "-1"}, {"FAULT_ERROR_RATE", "1.5"}, {"FAULT_ERROR_RATE", "NaN"}, {"FAULT_ERROR_RATE", "x"},
	} {
		_, err := Load(env(map[string]string{tc.name: tc.value}))
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != tc.name || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s=%q: error %v, want a one-line config.Error naming %s", tc.name, tc.value, err, tc.name)
		}
	}
}

func TestProdRefusesFaultsAndMissingToken(t *testing.T) {
	for name, m := range map[string]map[string]string{
		"FAULT_DELAY_MS":   {"POLYSHOP_ENV": "prod", "ADMIN_TOKEN": "t", "FAULT_DELAY_MS": "5"},
		"FAULT_ERROR_RATE": {"POLYSHOP_ENV": "prod", "ADMIN_TOKEN": "t", "FAULT_ERROR_RATE": "0.1"},
		"ADMIN_TOKEN":      {"POLYSHOP_ENV": "prod"},
	} {
		_, err := Load(env(m))
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != name {
			t.Errorf("prod with %v: %v, want an error naming %s", m, err, name)
		}
	}
}

func TestSecretsMasked(t *testing.T) {
	c, err := Load(env(map[string]string{"ADMIN_TOKEN": "topsecret", "REDIS_URL": "redis://user:hunter2@h:6379/0",
		"REGISTRY_URL": "redis://:swordfish@r:6379/0"}))
	if err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprint(c.LogAttrs()...)
	if strings.Contains(line, "topsecret") || strings.Contains(line, "hunter2") || strings.Contains(line, "swordfish") ||
		!strings.Contains(line, "redis://user:***@h:6379/0") || !strings.Contains(line, "redis://:***@r:6379/0") {
		t.Fatalf("config log attrs leak or mangle secrets: %s", line)
	}
	if MaskURL("redis://h:6379/0") != "redis://h:6379/0" || MaskURL("redis://:pw@h:1/0") != "redis://:***@h:1/0" {
		t.Fatal("MaskURL")
	}
}

// TestReadmeEnvTable keeps inventory-go/README.md's table equal to Knobs: same
// variables, same order, same defaults.
func TestReadmeEnvTable(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([A-Z_]+)` \\| ([^|]*) \\| ([^|]*) \\|\\s*$")
	var got []Knob
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := row.FindStringSubmatch(sc.Text()); m != nil {
			got = append(got, Knob{m[1], strings.Trim(strings.TrimSpace(m[2]), "`"), strings.TrimSpace(m[3])})
		}
	}
	if len(got) != len(Knobs) {
		t.Fatalf("README table has %d variables, config reads %d: %v", len(got), len(Knobs), got)
	}
	for i, k := range Knobs {
		if got[i] != k {
			t.Errorf("README row %d = %+v, config: %+v", i, got[i], k)
		}
	}
}
