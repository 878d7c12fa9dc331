// Command go-peer is the Go reference line of `npm run bench`, standard
// library only. By default it serves the bench's trivial handler behind Go's
// net/http with crypto/tls mutual TLS (TLS 1.3, RequireAndVerifyClientCert,
// client CAs from the CA file); it prints "port <n>" once it listens and
// stops on SIGTERM or SIGINT. With -client <url> it is instead a load
// generator of new connections (see client.go).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	certFile := flag.String("cert", "", "PEM certificate chain of the server, leaf first")
	keyFile := flag.String("key", "", "PEM private key of the server")
	caFile := flag.String("ca", "", "PEM CA certificates that client certificates must chain to")
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	client := flag.String("client", "", "run as a client making one request per new connection to this https URL")
	serverID := flag.String("server-id", "", "client mode: the SPIFFE ID (URI SAN) the server must present")
	resume := flag.Bool("resume", false, "client mode: offer TLS session tickets (resumption)")
	concurrency := flag.Int("concurrency", 2, "client mode: requests in flight")
	flag.Parse()
	if *client != "" {
		runClient(clientOptions{url: *client, certFile: *certFile, keyFile: *keyFile, caFile: *caFile,
			serverID: *serverID, resume: *resume, concurrency: *concurrency})
		return
	}
	if *certFile == "" || *keyFile == "" || *caFile == "" {
		log.Fatal("go-peer: -cert, -key and -ca must all be set")
	}

	caPem, err := os.ReadFile(*caFile)
	if err != nil {
		log.Fatalf("go-peer: reading -ca %s: %v", *caFile, err)
	}
	clientCAs := x509.NewCertPool()
	if !clientCAs.AppendCertsFromPEM(caPem) {
		log.Fatalf("go-peer: -ca %s holds no PEM certificate", *caFile)
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatalf("go-peer: loading -cert/-key: %v", err)
	}

	body := []byte(`{"hello":"world"}`)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /trivial", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(body)
	})
	server := &http.Server{
		Handler: mux,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    clientCAs,
		},
		// HTTP/1.1 only, like the Node servers: a non-nil empty map turns off
		// net/http's automatic HTTP/2.
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       75 * time.Second,
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("go-peer: listening on %s: %v", *addr, err)
	}
	fmt.Printf("port %d\n", ln.Addr().(*net.TCPAddr).Port)

	done := make(chan struct{})
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = server.Shutdown(ctx)
		close(done)
	}()
	if err := server.ServeTLS(ln, "", ""); err != http.ErrServerClosed {
		log.Fatalf("go-peer: %v", err)
	}
	<-done
}
