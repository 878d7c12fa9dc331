// Command netcheck proves pod networking and Service DNS on the local
// cluster from inside a FROM scratch image (no shell, no curl there):
//
//	netcheck serve :8080                      answer every GET with "hello from <hostname>"
//	netcheck get=http://echo/ nxdomain=nope   run each step in order; exit 1 at the first that fails
//
// get=URL resolves the URL's host, fetches it and prints the addresses and
// the body; nxdomain=NAME succeeds only when NAME does not resolve.
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "serve" {
		http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
			host, _ := os.Hostname()
			fmt.Fprintf(w, "hello from %s\n", host)
		})
		fmt.Println("serving on", os.Args[2])
		if err := http.ListenAndServe(os.Args[2], nil); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) < 2 {
		fmt.Println("usage: netcheck serve ADDR | netcheck get=URL|nxdomain=NAME ...")
		os.Exit(2)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, step := range os.Args[1:] {
		kind, arg, _ := strings.Cut(step, "=")
		switch kind {
		case "get":
			u, err := url.Parse(arg)
			if err != nil {
				fail(step, err)
			}
			addrs, err := net.LookupHost(u.Hostname())
			if err != nil {
				fail(step, err)
			}
			resp, err := client.Get(arg)
			if err != nil {
				fail(step, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			fmt.Printf("ok %s resolved to %v: %d %s\n", step, addrs, resp.StatusCode, strings.TrimSpace(string(body)))
		case "nxdomain":
			addrs, err := net.LookupHost(arg)
			var dnsErr *net.DNSError
			if err == nil {
				fail(step, fmt.Errorf("resolved to %v", addrs))
			}
			if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
				fail(step, fmt.Errorf("lookup failed but not with not-found: %w", err))
			}
			fmt.Printf("ok %s: %v\n", step, err)
		default:
			fmt.Println("unknown step", step)
			os.Exit(2)
		}
	}
}

func fail(step string, err error) {
	fmt.Printf("FAIL %s: %v\n", step, err)
	os.Exit(1)
}
