package federation

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats-server/v2/server"
)

// ServerOptions say how a bus's embedded NATS server takes part in the
// federation.
type ServerOptions struct {
	// BusID becomes the server's JetStream domain (leaf-linked buses keep
	// separate JetStream systems) and its name (ServerName).
	BusID string
	// LeafListen, on the national bus, is HOST:PORT for members' leaf node
	// connections (port 0 picks a free one).
	LeafListen string
	// Uplink, on a member, is the national's leaf listener
	// (nats-leaf://HOST:PORT, or tls://HOST:PORT), and UplinkCreds the
	// credentials the national issued for this member.
	Uplink      string
	UplinkCreds string
	// LocalAccount is the account the uplink binds on this side: the AXIS
	// account's public key in operator mode (auth.Authority.AccountPublicKey),
	// "" for the global account of a server without authentication.
	LocalAccount string
	// ReconnectInterval between attempts while the uplink is down (default
	// one second).
	ReconnectInterval time.Duration
	// LeafTLS, on the national bus, makes the leaf listener require TLS.
	LeafTLS *tls.Config
	// UplinkTLS, on a member, is how the national's leaf listener is
	// verified (its CA); setting it makes the uplink use TLS.
	UplinkTLS *tls.Config
}

// linkDeny keeps the record, the services and the clients' inboxes off the
// link in both directions, whatever the other side's permissions say: only
// the federation's own subjects may cross.
var linkDeny = []string{record.DocPrefix + ">", record.StatusPrefix + ">", record.QuarantineFilter, "axis.svc.>", "axis.audit.>", "axis.fedout.>", "axis.fedrelay.>", "_INBOX.>"}

// Configure applies o to the options of a server about to start.
func (o ServerOptions) Configure(so *server.Options) error {
	if err := CheckBusID(o.BusID); err != nil {
		return err
	}
	so.JetStreamDomain = o.BusID
	so.ServerName = ServerName(o.BusID)
	if o.LeafListen != "" {
		host, portStr, err := net.SplitHostPort(o.LeafListen)
		if err != nil {
			return fmt.Errorf("leaf listen address %q: %w", o.LeafListen, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return fmt.Errorf("leaf listen port %q: %w", portStr, err)
		}
		if port == 0 {
			port = server.RANDOM_PORT
		}
		so.LeafNode.Host, so.LeafNode.Port = host, port
		// A member's interest never reaches another member.
		so.LeafNode.IsolateLeafnodeInterest = true
		if o.LeafTLS != nil {
			so.LeafNode.TLSConfig = o.LeafTLS
			so.LeafNode.TLSTimeout = 5
		}
	}
	if o.Uplink != "" {
		u, err := url.Parse(o.Uplink)
		if err != nil || u.Host == "" {
			return fmt.Errorf("uplink %q: want nats-leaf://HOST:PORT", o.Uplink)
		}
		if o.UplinkCreds == "" {
			return fmt.Errorf("uplink %s: credentials are required (docaxis federation member add on the national bus issues them)", o.Uplink)
		}
		r := &server.RemoteLeafOpts{
			URLs:         []*url.URL{u},
			Credentials:  o.UplinkCreds,
			LocalAccount: o.LocalAccount,
			DenyImports:  linkDeny,
			DenyExports:  linkDeny,
		}
		if strings.EqualFold(u.Scheme, "tls") || o.UplinkTLS != nil {
			r.TLS = true
			r.TLSConfig = o.UplinkTLS
			r.TLSTimeout = 5
		}
		so.LeafNode.Remotes = append(so.LeafNode.Remotes, r)
		so.LeafNode.ReconnectInterval = o.ReconnectInterval
		if so.LeafNode.ReconnectInterval == 0 {
			so.LeafNode.ReconnectInterval = time.Second
		}
	}
	return nil
}

// LeafPort returns the port the server listens on for leaf connections
// (resolved when LeafListen asked for port 0), or 0.
func LeafPort(so *server.Options) int {
	if so.LeafNode.Port > 0 {
		return so.LeafNode.Port
	}
	return 0
}
