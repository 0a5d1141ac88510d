// Package natstest runs an embedded NATS server with JetStream for tests, so
// that the embedded attachment store (and anything else built on JetStream)
// can be exercised without an external server.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReadyTimeout bounds how long Start waits for the server to accept clients.
const ReadyTimeout = 10 * time.Second

// Start runs a NATS server with JetStream on a free loopback port, storing
// its streams in a fresh t.TempDir(), and returns its client URL. The server
// is shut down, and waited for, before the directory is removed.
func Start(t testing.TB) (url string, srv *server.Server) {
	t.Helper()
	// TempDir first: cleanups run last-in first-out, so the server's own
	// cleanup (registered below) runs before the directory is removed.
	dir := t.TempDir()
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("natstest: configure server: %v", err)
	}
	go srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(ReadyTimeout) {
		t.Fatalf("natstest: server in %s not ready for connections after %s", dir, ReadyTimeout)
	}
	return srv.ClientURL(), srv
}

// Connect opens a client connection to url (one or a comma-separated
// list, as bustest.Cluster.URLs gives) with opts (credentials, reconnects)
// and its JetStream context; the connection is closed when the test ends.
// Any test that reaches a bus as an outside process would takes it here.
func Connect(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name(t.Name())}, opts...)...)
	if err != nil {
		t.Fatalf("natstest: connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: JetStream context on %s: %v", url, err)
	}
	return nc, js
}
