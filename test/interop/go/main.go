// Command interop is the go-spiffe v2 side of the shop's interoperability
// tests: a client and a server that get their X.509-SVIDs from the SPIFFE
// Workload API (a SPIRE agent) and speak mutual TLS with go-spiffe's
// tlsconfig, so the shop's Node library is checked against the reference
// implementation in both directions.
//
// Usage:
//
//	interop client -socket unix:///path -url https://127.0.0.1:PORT/path -server-id spiffe://td/svc \
//	    [-method POST] [-body '{...}'] [-header 'Name: value']... [-timeout 10s]
//	interop server -socket unix:///path -listen 127.0.0.1:PORT -allow spiffe://td/caller [-timeout 30s]
//	interop svid   -socket unix:///path [-timeout 10s]
//
// Exit codes: 0 success; 1 usage or any other failure; 2 TLS handshake
// failure (peer not verified or not authorized, or our certificate refused);
// 3 no X.509-SVID from the Workload API within -timeout.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

const (
	exitOK         = 0
	exitFailure    = 1
	exitTLS        = 2
	exitNoIdentity = 3
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var code int
	switch os.Args[1] {
	case "client":
		code = runClient(os.Args[2:])
	case "server":
		code = runServer(os.Args[2:])
	case "svid":
		code = runSvid(os.Args[2:])
	default:
		usage()
	}
	os.Exit(code)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: interop client|server|svid [flags] (interop <command> -h lists the flags)")
	os.Exit(exitFailure)
}

// printJSON writes v as one line of JSON on stdout.
func printJSON(v any) {
	line, err := json.Marshal(v)
	if err != nil {
		line = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	fmt.Println(string(line))
}

// fail prints {"error": message} on stdout and returns code.
func fail(code int, format string, args ...any) int {
	printJSON(map[string]string{"error": fmt.Sprintf(format, args...)})
	return code
}
