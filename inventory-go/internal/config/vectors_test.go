// The env vectors of services/contracts/env-vectors.json: every case whose env names
// only variables inventory reads, loaded from exactly that env; expected values are
// checked for the variables inventory reads, errors must name the variable.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"polyshop/inventory-go/internal/contracttest"
)

type envVectors struct {
	Variables map[string]struct {
		Services []string        `json:"services"`
		Kind     string          `json:"kind"`
		Default  json.RawMessage `json:"default"`
	} `json:"variables"`
	Cases []struct {
		Env    map[string]string          `json:"env"`
		Expect map[string]json.RawMessage `json:"expect"`
		Error  string                     `json:"error"`
		Note   string                     `json:"note"`
	} `json:"cases"`
}

func (v envVectors) readByInventory(name string) bool {
	vr, ok := v.Variables[name]
	return ok && slices.Contains(vr.Services, "inventory")
}

// canonical is a variable's effective value in the vectors' canonical form: ints and
// numbers as JSON numbers, enums lower case, nil for unset.
func canonical(c Config, name string) any {
	switch name {
	case "PORT":
		return float64(c.Port)
	case "POLYSHOP_ENV":
		return c.Env
	case "REDIS_URL":
		if c.RedisURL == "" {
			return nil
		}
		return c.RedisURL
	case "LOG_LEVEL":
		return c.LogLevel
	case "ADMIN_TOKEN":
		if c.AdminToken == "" {
			return nil
		}
		return c.AdminToken
	case "MAX_BODY_BYTES":
		return float64(c.MaxBodyBytes)
	case "RESERVATION_TTL_S":
		return float64(c.ReservationTTL / time.Second)
	case "FAULT_DELAY_MS":
		return float64(c.FaultDelay / time.Millisecond)
	case "FAULT_ERROR_RATE":
		return c.FaultErrorRate
	case "INSTANCE_ID":
		return c.InstanceID
	case "INVENTORY_SHARD_ID":
		if c.ShardID == "" {
			return nil
		}
		return c.ShardID
	case "INVENTORY_SHARDS":
		if c.Shards == nil {
			return nil
		}
		out := make([]any, len(c.Shards))
		for i, id := range c.Shards {
			out[i] = id
		}
		return out
	case "ADVERTISE_URL":
		return c.AdvertiseURL
	case "REGISTRY_URL":
		if c.RegistryURL == "" {
			return nil
		}
		return c.RegistryURL
	}
	panic("no canonical value for " + name)
}

func TestEnvVectors(t *testing.T) {
	var v envVectors
	contracttest.ReadJSON(t, "env-vectors.json", &v)
	ran := 0
	for i, tc := range v.Cases {
		applicable := len(tc.Env) > 0
		for name := range tc.Env {
			applicable = applicable && v.readByInventory(name)
		}
		if !applicable {
			continue
		}
		ran++
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			c, err := Load(env(tc.Env))
			if tc.Error != "" {
				var ce *Error
				if !errors.As(err, &ce) || ce.Var != tc.Error || strings.ContainsAny(err.Error(), "\r\n") {
					t.Fatalf("env %q (%s): error %v, want one line naming %s", tc.Env, tc.Note, err, tc.Error)
				}
				if tok := tc.Env["ADMIN_TOKEN"]; len(trimASCII(tok)) > 2 && strings.Contains(err.Error(), trimASCII(tok)) {
					t.Fatalf("the error echoes the admin token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("env %q (%s): %v", tc.Env, tc.Note, err)
			}
			for name, raw := range tc.Expect {
				if !v.readByInventory(name) {
					continue
				}
				var want any
				if err := json.Unmarshal(raw, &want); err != nil {
					t.Fatal(err)
				}
				if per, ok := want.(map[string]any); ok {
					want = per["inventory"]
				}
				if got := canonical(c, name); !reflect.DeepEqual(got, want) {
					t.Errorf("env %q (%s): %s = %#v, want %#v", tc.Env, tc.Note, name, got, want)
				}
			}
		})
	}
	if ran < 100 {
		t.Fatalf("only %d env vectors apply to inventory: has env-vectors.json changed shape?", ran)
	}
}

// TestKnobsAreTheVectorVariables: the variables Knobs documents are exactly those
// env-vectors.json says inventory reads.
func TestKnobsAreTheVectorVariables(t *testing.T) {
	var v envVectors
	contracttest.ReadJSON(t, "env-vectors.json", &v)
	var want, got []string
	for name := range v.Variables {
		if v.readByInventory(name) {
			want = append(want, name)
		}
	}
	for _, k := range Knobs {
		got = append(got, k.Name)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("Knobs %v, env-vectors.json variables read by inventory %v", got, want)
	}
}

// TestDefaultInstanceIDIsValid: hostname-pid passes the INSTANCE_ID rule whatever the host is called.
func TestDefaultInstanceIDIsValid(t *testing.T) {
	if id := defaultInstanceID(); !validInstanceID(id) {
		t.Fatalf("default INSTANCE_ID %q is not valid", id)
	}
}
