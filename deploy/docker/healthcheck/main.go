// Command healthcheck is the container HEALTHCHECK of the distroless pricing and inventory
// images, which have no shell or curl: it GETs http://127.0.0.1:$PORT/health and exits 0
// on a 200, 1 otherwise. Standard library only, static, about 5 MB.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	if err := check(os.Getenv("PORT")); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

func check(port string) error {
	if port == "" {
		return fmt.Errorf("PORT is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+port+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/health answered %d", resp.StatusCode)
	}
	return nil
}
