// The pod sandbox's one process (what registry.k8s.io/pause is): it holds the pod's
// namespaces open, reaps the zombies of a shared PID namespace, and exits 0 on SIGTERM or
// SIGINT. Built static (CGO_ENABLED=0) by scripts/k8s-node/node.sh, packed as an OCI image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
