package main

import (
	"context"
	"flag"
	"time"
)

// runSvid prints {"id", "expires_at", "hint"} of the default X.509-SVID the
// Workload API serves us: the tests poll it until a new entry reaches the agent.
func runSvid(args []string) int {
	fs := flag.NewFlagSet("svid", flag.ContinueOnError)
	socket := fs.String("socket", "", "Workload API address, unix:///path or tcp://IP:port (default $SPIFFE_ENDPOINT_SOCKET)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the first X.509-SVID")
	if err := fs.Parse(args); err != nil {
		return exitFailure
	}
	source, err := newSource(context.Background(), *socket, *timeout)
	if err != nil {
		return fail(exitNoIdentity, "%v", err)
	}
	defer source.Close()
	svid, err := source.GetX509SVID()
	if err != nil {
		return fail(exitNoIdentity, "%v", err)
	}
	printJSON(map[string]string{
		"id":         svid.ID.String(),
		"expires_at": svid.Certificates[0].NotAfter.UTC().Format(time.RFC3339),
		"hint":       svid.Hint,
	})
	return exitOK
}
