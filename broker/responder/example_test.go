package responder_test

import (
	"context"
	"log"
	"time"

	"github.com/docaxis/docaxis/broker/responder"
	"github.com/nats-io/nats.go"
)

// A service answers on its subject from the moment Listen returns; after
// Stop, a caller hears "no responders" at once.
func ExampleListen() {
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := responder.Listen(ctx, nc, responder.Config{
		Subject: "svc.echo.*",
		Queue:   "echo",
		Handler: func(m *nats.Msg) { _ = m.Respond(m.Data) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Stop()
	// ... serve until shutdown
}
