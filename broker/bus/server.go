package bus

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	// Dir holds JetStream data (DIR/jetstream).
	Dir string
	// Listen is HOST:PORT for clients; port 0 picks a free one.
	Listen string
	// Name of the server (default "docaxis").
	Name string
	// MaxPayload of a NATS message (default 1 MiB, the NATS default).
	MaxPayload int32
	// Configure, when set, adjusts the options before the server starts
	// (authorisation, TLS, leaf nodes).
	Configure func(*server.Options) error
}

// Server is an embedded nats-server with JetStream.
type Server struct {
	ns *server.Server
}

// StartServer starts an embedded NATS server with JetStream storing under
// cfg.Dir and waits until it accepts connections.
func StartServer(cfg ServerConfig) (*Server, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("start NATS server: listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("start NATS server: port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if cfg.Name == "" {
		cfg.Name = "docaxis"
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.Dir, "jetstream"),
		MaxPayload: cfg.MaxPayload,
		NoSigs:     true,
		NoLog:      true,
	}
	if cfg.Configure != nil {
		if err := cfg.Configure(opts); err != nil {
			return nil, fmt.Errorf("start NATS server: %w", err)
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start NATS server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("start NATS server: not ready after 30s (port in use?)")
	}
	return &Server{ns: ns}, nil
}

// ClientURL is the URL clients connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// NATS returns the underlying server.
func (s *Server) NATS() *server.Server { return s.ns }

// Interest returns a func that tells whether a subscription in the
// account of nc matches a subject now, on this server or beyond it
// (routes, gateways, leaf nodes; the server keeps their interest too): a
// publisher may skip a message nobody would get, which the server would
// drop anyway. nc must be connected to this server.
func (s *Server) Interest(nc *nats.Conn) (func(subject string) bool, error) {
	cid, err := nc.GetClientID()
	if err != nil {
		return nil, fmt.Errorf("interest: client id: %w", err)
	}
	cz, err := s.ns.Connz(&server.ConnzOptions{CID: cid, Username: true}) // Username: the account too
	if err != nil {
		return nil, fmt.Errorf("interest: connection %d: %w", cid, err)
	}
	if len(cz.Conns) != 1 {
		return nil, fmt.Errorf("interest: connection %d is not a client of this server", cid)
	}
	acc := s.ns.GlobalAccount() // Connz names every account but this one
	if name := cz.Conns[0].Account; name != "" {
		if acc, err = s.ns.LookupAccount(name); err != nil {
			return nil, fmt.Errorf("interest: account %s: %w", name, err)
		}
	}
	return acc.SubscriptionInterest, nil
}

// Shutdown stops the server and waits until it has stopped, so that its
// store directory can be removed safely afterwards.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
