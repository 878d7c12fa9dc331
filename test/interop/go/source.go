package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// newSource connects to the Workload API at socket (SPIFFE_ENDPOINT_SOCKET
// when empty) and waits at most timeout for the first X.509-SVID.
func newSource(ctx context.Context, socket string, timeout time.Duration) (*workloadapi.X509Source, error) {
	var clientOptions []workloadapi.ClientOption
	if socket != "" {
		clientOptions = append(clientOptions, workloadapi.WithAddr(socket))
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	source, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(clientOptions...))
	if err != nil {
		where := socket
		if where == "" {
			where = "$SPIFFE_ENDPOINT_SOCKET"
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("no X.509-SVID from the Workload API at %s within %s: %w", where, timeout, err)
		}
		return nil, fmt.Errorf("workload API at %s: %w", where, err)
	}
	return source, nil
}
