package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// headerFlags collects repeated -header 'Name: value' flags.
type headerFlags []string

func (h *headerFlags) String() string { return strings.Join(*h, ", ") }

func (h *headerFlags) Set(v string) error {
	if !strings.Contains(v, ":") {
		return fmt.Errorf("header must look like 'Name: value', got %q", v)
	}
	*h = append(*h, v)
	return nil
}

// handshakeError marks a failure of the TLS handshake itself, as opposed to
// failing to connect or a broken HTTP exchange.
type handshakeError struct{ err error }

func (e *handshakeError) Error() string { return "TLS handshake: " + e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// runClient makes one HTTPS request over mTLS with our SVID, authorizing the
// server by SPIFFE ID, and prints {"status", "body"}.
func runClient(args []string) int {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	socket := fs.String("socket", "", "Workload API address, unix:///path or tcp://IP:port (default $SPIFFE_ENDPOINT_SOCKET)")
	url := fs.String("url", "", "https URL to call (required)")
	method := fs.String("method", http.MethodGet, "HTTP method")
	body := fs.String("body", "", "request body; sent with Content-Type: application/json unless -header sets one")
	serverID := fs.String("server-id", "", "the SPIFFE ID the server must present (required)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for our SVID, and then for the answer")
	var headers headerFlags
	fs.Var(&headers, "header", "request header 'Name: value' (repeatable)")
	if err := fs.Parse(args); err != nil {
		return exitFailure
	}
	if *url == "" || *serverID == "" {
		return fail(exitFailure, "client needs -url and -server-id")
	}
	want, err := spiffeid.FromString(*serverID)
	if err != nil {
		return fail(exitFailure, "-server-id must be a SPIFFE ID: %v", err)
	}

	ctx := context.Background()
	source, err := newSource(ctx, *socket, *timeout)
	if err != nil {
		return fail(exitNoIdentity, "%v", err)
	}
	defer source.Close()

	tlsConfig := tlsconfig.MTLSClientConfig(source, source, tlsconfig.AuthorizeID(want))
	tlsConfig.NextProtos = []string{"http/1.1"}
	dialer := &net.Dialer{Timeout: *timeout}
	transport := &http.Transport{
		DisableKeepAlives: true,
		// Our own TLS dial, so a failed handshake can be told apart from a refused connection.
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			conn := tls.Client(raw, tlsConfig)
			if err := conn.HandshakeContext(ctx); err != nil {
				_ = raw.Close()
				return nil, &handshakeError{err}
			}
			return conn, nil
		},
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: *timeout}

	var reqBody io.Reader
	if *body != "" {
		reqBody = strings.NewReader(*body)
	}
	req, err := http.NewRequestWithContext(ctx, *method, *url, reqBody)
	if err != nil {
		return fail(exitFailure, "bad request: %v", err)
	}
	if *body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}

	res, err := client.Do(req)
	if err != nil {
		// In TLS 1.3 the server checks our certificate after our side of the
		// handshake is done, so its refusal arrives as an alert on the first read.
		var hs *handshakeError
		var alert tls.AlertError
		if errors.As(err, &hs) || errors.As(err, &alert) {
			return fail(exitTLS, "%v", err)
		}
		return fail(exitFailure, "%v", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return fail(exitFailure, "reading the answer: %v", err)
	}
	var parsed any = string(raw)
	var asJSON any
	if json.Unmarshal(raw, &asJSON) == nil {
		parsed = asJSON
	}
	printJSON(map[string]any{"status": res.StatusCode, "body": parsed})
	return exitOK
}
