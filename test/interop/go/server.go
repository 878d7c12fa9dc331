package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// runServer serves HTTPS over mTLS with our SVID, admitting only the client
// ID -allow, until SIGTERM or SIGINT.
func runServer(args []string) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	socket := fs.String("socket", "", "Workload API address, unix:///path or tcp://IP:port (default $SPIFFE_ENDPOINT_SOCKET)")
	listen := fs.String("listen", "127.0.0.1:8443", "address to listen on")
	allow := fs.String("allow", "", "the only client SPIFFE ID admitted (required)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for our first SVID")
	if err := fs.Parse(args); err != nil {
		return exitFailure
	}
	allowed, err := spiffeid.FromString(*allow)
	if err != nil {
		return fail(exitFailure, "-allow must be a SPIFFE ID: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	source, err := newSource(ctx, *socket, *timeout)
	if err != nil {
		return fail(exitNoIdentity, "%v", err)
	}
	defer source.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		// MTLSServerConfig has verified and authorized the chain; the leaf names the caller.
		caller, err := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"server": "go", "caller": caller.String()})
	})
	errorLog := log.New(os.Stderr, "interop server: ", log.LstdFlags)
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         tlsconfig.MTLSServerConfig(source, source, tlsconfig.AuthorizeID(allowed)),
		ReadHeaderTimeout: 10 * time.Second,
		// Handshake refusals ("unexpected ID ...") are logged here.
		ErrorLog: errorLog,
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail(exitFailure, "listen %s: %v", *listen, err)
	}
	if svid, err := source.GetX509SVID(); err == nil {
		errorLog.Printf("serving https on %s as %s, admitting %s", ln.Addr(), svid.ID, allowed)
	}
	fmt.Println("listening")

	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-served:
		return fail(exitFailure, "serve: %v", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		errorLog.Printf("shutdown: %v", err)
	}
	return exitOK
}
