// Runs the shared store suite against the in-memory store, on a fake clock.
package memory_test

import (
	"testing"

	"polyshop/inventory-go/internal/storetest"
)

func TestStoreSuite(t *testing.T) { storetest.Run(t, storetest.Memory()) }

func TestShardSuite(t *testing.T) { storetest.RunShard(t, storetest.Memory()) }
