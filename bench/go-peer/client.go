package main

// Client mode: a closed loop of requests, each on a new mutual-TLS
// connection (DisableKeepAlives), the Go counterpart of the bench's undici
// clients. The server is verified on every handshake, resumed ones included
// (VerifyConnection runs on both, unlike VerifyPeerCertificate): its chain
// against the CA file for serverAuth, and its URI SAN against -server-id.
//
// It is driven over stdin/stdout so the parent can read the server's CPU
// around the same window: each line "run <warmupMs> <durationMs>" runs one
// window and answers one JSON line {"requests","errors","cpuUs","error"}
// after printing "measuring" when the measured part begins. "quit" (or EOF)
// ends it.

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type clientOptions struct {
	url, certFile, keyFile, caFile, serverID string
	resume                                   bool
	concurrency                              int
}

type windowResult struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Resumed  int64   `json:"resumed"`
	CPUUs    float64 `json:"cpuUs"`
	P50Ms    float64 `json:"p50"`
	P90Ms    float64 `json:"p90"`
	P99Ms    float64 `json:"p99"`
	MaxMs    float64 `json:"max"`
	Error    string  `json:"error,omitempty"`
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runClient(o clientOptions) {
	caPem, err := os.ReadFile(o.caFile)
	if err != nil {
		log.Fatalf("go-peer: reading -ca %s: %v", o.caFile, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPem) {
		log.Fatalf("go-peer: -ca %s holds no PEM certificate", o.caFile)
	}
	cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
	if err != nil {
		log.Fatalf("go-peer: loading -cert/-key: %v", err)
	}
	var resumed atomic.Int64
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// SVIDs carry a URI SAN, not a host name: the chain and the ID are
		// checked in VerifyConnection instead of the default host name check.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.DidResume {
				resumed.Add(1)
			}
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			leaf := cs.PeerCertificates[0]
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				return err
			}
			for _, u := range leaf.URIs {
				if u.String() == o.serverID {
					return nil
				}
			}
			return fmt.Errorf("server is not %s", o.serverID)
		},
	}
	if o.resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(100)
	}
	transport := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true, ForceAttemptHTTP2: false,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	attempt := func() error {
		res, err := client.Get(o.url)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		return nil
	}

	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	fmt.Println("ready")
	for in.Scan() {
		var warmupMs, durationMs int
		line := strings.TrimSpace(in.Text())
		if line == "quit" {
			return
		}
		if _, err := fmt.Sscanf(line, "run %d %d", &warmupMs, &durationMs); err != nil {
			_ = out.Encode(windowResult{Error: "unknown command " + line})
			continue
		}
		var requests, failures atomic.Int64
		var firstErr atomic.Value
		var measuring atomic.Bool
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var latMu sync.Mutex
		var latencies []float64
		for i := 0; i < o.concurrency; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					t0 := time.Now()
					err := attempt()
					if !measuring.Load() {
						continue
					}
					if err != nil {
						failures.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					} else {
						requests.Add(1)
						ms := float64(time.Since(t0).Microseconds()) / 1000
						latMu.Lock()
						latencies = append(latencies, ms)
						latMu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(warmupMs) * time.Millisecond)
		fmt.Println("measuring")
		resumedStart := resumed.Load()
		cpuStart := cpuNow()
		measuring.Store(true)
		time.Sleep(time.Duration(durationMs) * time.Millisecond)
		measuring.Store(false)
		cpu := cpuNow() - cpuStart
		resumedEnd := resumed.Load()
		n := requests.Load()
		close(stop)
		wg.Wait()
		r := windowResult{Requests: n, Errors: failures.Load(), Resumed: resumedEnd - resumedStart}
		if n > 0 {
			r.CPUUs = float64(cpu.Microseconds()) / float64(n)
		}
		if len(latencies) > 0 {
			sort.Float64s(latencies)
			at := func(p int) float64 { return latencies[(len(latencies)-1)*p/100] }
			r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs = at(50), at(90), at(99), latencies[len(latencies)-1]
		}
		if e, ok := firstErr.Load().(string); ok {
			r.Error = e
		}
		_ = out.Encode(r)
	}
}
