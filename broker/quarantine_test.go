package broker_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// A message quarantined because the sender's CA was not trusted yet is
// re-driven after the fix and then delivered.
func TestQuarantineListAndRetry(t *testing.T) {
	bus := threeAgencies(t)
	other, err := signing.NewCA("tỉnh khác CA", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := other.Issue(govOffice, "VPCP (CA mới)", signing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := envelope.New(govOffice, []string{ngheAn}, "Chứng thư chưa tin cậy")
	raw, err := id.Seal(e)
	if err != nil {
		t.Fatal(err)
	}
	c := bus.Client(ngheAn)
	publishRaw(t, c, broker.DocSubject(ngheAn, govOffice), raw)
	outs := receiveAll(t, c, ngheAn)
	if len(outs) != 1 || !outs[0].Quarantined {
		t.Fatalf("outcomes %+v", outs)
	}
	list, err := c.QuarantineList(ctxT(t), ngheAn)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Envelope != e.ID || !strings.Contains(list[0].Reason, "not trusted") || list[0].Deliveries != 1 || list[0].Agency != ngheAn {
		t.Fatalf("list = %+v", list)
	}
	if _, err := c.QuarantineRetry(ctxT(t), "424242"); !errors.Is(err, broker.ErrNotQuarantined) {
		t.Fatalf("retry of a missing seq: %v", err)
	}
	// The fix: the bus trusts the new CA.
	bus.Trust.AddRoot(other.Cert)
	if _, err := c.QuarantineRetry(ctxT(t), e.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := c.QuarantineList(ctxT(t), ""); len(list) != 0 {
		t.Fatalf("still quarantined: %+v", list)
	}
	outs = receiveAll(t, c, ngheAn)
	if len(outs) != 1 || !outs[0].Verified || outs[0].ID != e.ID {
		t.Fatalf("after retry: %+v", outs)
	}
	waitState(t, c, e.ID, ngheAn, envelope.StateDelivered)
}
