// Runs the shared store suite against the in-memory store.
package memory_test

import (
	"testing"

	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/store/memory"
	"polyshop/inventory-go/internal/storetest"
)

func TestStoreSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T, c inventory.Catalog, clock inventory.Clock) inventory.Store {
		return memory.New(c, clock)
	})
}
