package broker_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// A recipient's document system accepts a document and starts on it at
// once. Each Mark waits (5 s at most) until the bus has applied its
// status, so the next one is judged from the state it left, not refused
// as a change from the state before.
func ExampleClient_Mark() {
	ctx := context.Background()
	const as = "000.00.00.H41"
	ks, err := signing.OpenKeystore(".docaxis")
	if err != nil {
		log.Fatal(err)
	}
	c, err := broker.Connect(ctx, "nats://127.0.0.1:4222", broker.WithKeystore(ks),
		broker.WithAgencyCredentials(".docaxis/agencies/"+as+"/nats.creds"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	id := "01a24862-9cf6-71c1-a07e-4f77023dac04" // a document delivered to as
	for _, st := range []envelope.State{envelope.StateAccepted, envelope.StateProcessing} {
		if _, err := c.Mark(ctx, as, id, st, broker.MarkOptions{Note: "Văn thư", Wait: 5 * time.Second}); err != nil {
			log.Fatal(err)
		}
	}
	t, err := c.Tracking(ctx, id, as)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.State)
}
