package api

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// TestMetricsListenerTimesOutSlowHeaders: a client that opens a connection
// and never finishes its request is cut off by the server.
func TestMetricsListenerTimesOutSlowHeaders(t *testing.T) {
	old := metricsReadHeaderTimeout
	metricsReadHeaderTimeout = 100 * time.Millisecond
	t.Cleanup(func() { metricsReadHeaderTimeout = old })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(nil, Options{Metrics: func() Metrics { return Metrics{} }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeMetrics(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeMetrics: %v", err)
		}
	}()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /metrics HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	// The server closes the connection; the deadline only keeps a broken
	// server from hanging the test.
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("the server did not close the connection of unfinished headers: %v (read %q)", err, b)
	}
}
