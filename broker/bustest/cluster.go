package bustest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/bus"
	"github.com/docaxis/docaxis/internal/freeport"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is a test bus on a JetStream cluster of in-process NATS servers
// routed on loopback, with every stream and bucket replicated on each node
// (up to three), as `docaxis serve --nats` sets it up on a real cluster.
// The embedded Bus gives AddAgency, Identity and Client; Restart and Stop
// are the cluster's own.
type Cluster struct {
	*Bus
	Nodes []*Node
	// Replicas of the bus's streams and buckets.
	Replicas int
}

// Node is one server of a Cluster. Server is nil while the node is down.
type Node struct {
	Name   string
	Config bus.ServerConfig
	Server *bus.Server
}

// clusterName is the NATS cluster name of test clusters.
const clusterName = "docaxis-test"

// StartCluster starts n servers (each with its own store under
// t.TempDir()), waits for a JetStream meta leader, sets the bus up with
// min(n, 3) replicas and stops everything at cleanup.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := StartNodes(t, n)
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.Name("docaxis test service"))
	if err != nil {
		t.Fatal(err)
	}
	c.nc = nc
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svc, err := bus.StartService(ctx, nc, bus.ServiceConfig{Bus: bus.BusConfig{Replicas: c.Replicas}, Trust: c.Trust, Logger: Logger()})
	if err != nil {
		t.Fatal(err)
	}
	c.Service = svc
	return c
}

// StartNodes starts the cluster's servers only, as an operator's external
// NATS cluster before `docaxis serve --nats` sets the bus up on it; the
// Bus methods that need the service (AddAgency, Client) are not usable.
func StartNodes(t testing.TB, n int) *Cluster {
	t.Helper()
	dir := t.TempDir()
	ks, err := signing.OpenKeystore(filepath.Join(dir, "home"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ks.CA()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{
		Bus:      &Bus{t: t, Dir: dir, Keystore: ks, CA: ca, Trust: signing.NewTrust(ca.Cert), ids: map[string]*signing.Identity{}},
		Replicas: min(n, 3),
	}
	// Ports are fixed up front: every node names the others' route ports,
	// and a restarted node comes back where clients and routes expect it.
	clientPorts, routePorts := make([]int, n), make([]int, n)
	var routes []string
	for i := range n {
		clientPorts[i], routePorts[i] = freePort(t), freePort(t)
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i]))
	}
	var listen []string
	for i := range n {
		routePort := routePorts[i]
		c.Nodes = append(c.Nodes, &Node{
			Name: fmt.Sprintf("axis-%d", i+1),
			Config: bus.ServerConfig{
				Dir:    filepath.Join(dir, fmt.Sprintf("node%d", i+1)),
				Listen: fmt.Sprintf("127.0.0.1:%d", clientPorts[i]),
				Name:   fmt.Sprintf("axis-%d", i+1),
				Configure: func(o *server.Options) error {
					o.Cluster = server.ClusterOpts{Name: clusterName, Host: "127.0.0.1", Port: routePort}
					o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
					return nil
				},
			},
		})
		listen = append(listen, fmt.Sprintf("127.0.0.1:%d", clientPorts[i]))
	}
	// Bus.URL prefixes nats:// to Listen; nats.Connect takes the rest of
	// the comma-separated list without a scheme.
	c.Listen = strings.Join(listen, ",")
	t.Cleanup(c.Stop)
	for i := range c.Nodes {
		c.Restart(i)
	}
	c.waitMetaLeader()
	return c
}

// URLs are the client URLs of every node, comma-separated, as
// `docaxis serve --nats` and `--server` take them.
func (c *Cluster) URLs() string {
	var urls []string
	for _, nd := range c.Nodes {
		urls = append(urls, "nats://"+nd.Config.Listen)
	}
	return strings.Join(urls, ",")
}

// Restart starts node i again on its directory and ports (it must be down).
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	nd := c.Nodes[i]
	if nd.Server != nil {
		c.t.Fatalf("bustest: node %s is running", nd.Name)
	}
	srv, err := bus.StartServer(nd.Config)
	if err != nil {
		c.t.Fatalf("bustest: start node %s: %v", nd.Name, err)
	}
	nd.Server = srv
}

// Kill shuts node i down and waits until it has stopped.
func (c *Cluster) Kill(i int) {
	if nd := c.Nodes[i]; nd.Server != nil {
		nd.Server.Shutdown()
		nd.Server = nil
	}
}

// Leader returns the index of the node leading stream (e.g.
// record.Stream, or "OBJ_"+storage.DefaultBucket).
func (c *Cluster) Leader(stream string) int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1))
	if err != nil {
		c.t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	for {
		s, err := js.Stream(ctx, stream)
		if err == nil && s.CachedInfo().Cluster != nil {
			for i, nd := range c.Nodes {
				if nd.Server != nil && nd.Name == s.CachedInfo().Cluster.Leader {
					return i
				}
			}
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("bustest: no leader of stream %s: %v", stream, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// KillLeader kills the node leading stream and returns its index.
func (c *Cluster) KillLeader(stream string) int {
	c.t.Helper()
	i := c.Leader(stream)
	c.Kill(i)
	return i
}

// Stop stops the service and every node; safe to call twice.
func (c *Cluster) Stop() {
	c.Bus.Stop()
	for i := range c.Nodes {
		c.Kill(i)
	}
}

// waitMetaLeader waits until JetStream answers on every running node,
// which it does once the cluster has elected its meta leader.
func (c *Cluster) waitMetaLeader() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, nd := range c.Nodes {
		if nd.Server == nil {
			continue
		}
		nc, err := nats.Connect(nd.Server.ClientURL())
		if err != nil {
			c.t.Fatal(err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			c.t.Fatal(err)
		}
		for {
			actx, acancel := context.WithTimeout(ctx, 2*time.Second)
			_, err = js.AccountInfo(actx)
			acancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				nc.Close()
				c.t.Fatalf("bustest: JetStream of %s not ready: %v", nd.Name, errors.Join(err, ctx.Err()))
			}
			time.Sleep(100 * time.Millisecond)
		}
		nc.Close()
	}
}

// freePort picks a loopback port no outgoing connection can take before
// the node binds it (freeport).
func freePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
