// This file owns the seed catalog: services/catalog/products.json, the same file the
// pricing service loads, found relative to the working directory.
package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// CatalogRelPath is where the catalog lives from the repository root.
const CatalogRelPath = "services/catalog/products.json"

// Warehouse is a catalog warehouse.
type Warehouse struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Region string `json:"region"`
}

// Product is the part of a catalog product inventory cares about.
type Product struct {
	ID        int64  `json:"id"`
	Stock     int64  `json:"stock"`
	Warehouse string `json:"warehouse"`
}

// Catalog is the seed data.
type Catalog struct {
	Warehouses []Warehouse `json:"warehouses"`
	Products   []Product   `json:"products"`
}

// FindCatalog looks for the catalog from dir and its parents, so the binary works
// when started from the repository root (the Procfile) or from inventory-go/ (go test,
// go run). No environment variable: the catalog is part of the checkout.
func FindCatalog(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, CatalogRelPath)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s not found from the working directory or its parents", CatalogRelPath)
		}
		dir = parent
	}
}

// LoadCatalog reads and checks the catalog: every product in a known warehouse,
// ids and stock inside the contract bounds, no duplicate ids.
func LoadCatalog(path string) (Catalog, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Catalog{}, err
	}
	var c Catalog
	if err := json.Unmarshal(b, &c); err != nil {
		return Catalog{}, fmt.Errorf("catalog %s: %w", path, err)
	}
	known := make(map[string]bool, len(c.Warehouses))
	for _, w := range c.Warehouses {
		known[w.ID] = true
	}
	seen := make(map[int64]bool, len(c.Products))
	for _, p := range c.Products {
		switch {
		case p.ID < 1 || p.ID > MaxProductID:
			return Catalog{}, fmt.Errorf("catalog %s: product id %d out of bounds", path, p.ID)
		case p.Stock < 0 || p.Stock > MaxStock:
			return Catalog{}, fmt.Errorf("catalog %s: product %d stock %d out of bounds", path, p.ID, p.Stock)
		case !known[p.Warehouse]:
			return Catalog{}, fmt.Errorf("catalog %s: product %d in unknown warehouse %q", path, p.ID, p.Warehouse)
		case seen[p.ID]:
			return Catalog{}, fmt.Errorf("catalog %s: duplicate product id %d", path, p.ID)
		}
		seen[p.ID] = true
	}
	return c, nil
}
