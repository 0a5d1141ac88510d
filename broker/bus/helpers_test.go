package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
)

func ctxT(t *testing.T) context.Context { return bustest.Context(t, 30*time.Second) }

const (
	govOffice = "000.00.00.G22"
	ngheAn    = "000.00.00.H41"
	sonLa     = "000.00.00.H14"
)

func threeAgencies(t *testing.T) *bustest.Bus {
	tb := bustest.Start(t)
	tb.AddAgency(govOffice, "Văn phòng Chính phủ")
	tb.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	tb.AddAgency(sonLa, "UBND tỉnh Sơn La")
	return tb
}

func waitState(t *testing.T, c *broker.Client, id, recipient string, want envelope.State) *broker.Tracking {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := c.WaitState(ctx, id, recipient, want)
	if err != nil {
		t.Fatalf("wait %s for %s: %v", want, recipient, err)
	}
	return tr
}

var receiveAll = bustest.ReceiveAll
