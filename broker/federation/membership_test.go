package federation_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go/jetstream"
)

// The national's side of membership, with members listed but not running:
// bindings that may not overlap, claims reconciled by the binding, removal
// (CA withdrawn, agencies withdrawn, entries kept) and rekey.
func TestMembership(t *testing.T) {
	vn := bustest.StartNational(t, "VN")
	vn.AddAgency(govOffice, "Văn phòng Chính phủ")
	c := vn.Client()
	ctx := ctxT(t)
	kv, err := c.JetStream().KeyValue(ctx, record.DirectoryBucket)
	if err != nil {
		t.Fatal(err)
	}
	newCA := func(bus string) *signing.CA {
		ca, err := signing.NewCA(signing.DevCAName(bus, strings.Repeat("0", 16)), 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return ca
	}
	caSL, caNA := newCA("SL"), newCA("NA")

	// Admission with bindings; overlapping bindings are refused.
	vn.Bind("VN", "*.*.*.G*")
	if err := federation.RegisterBus(ctx, c, "SL", caSL.Cert, false, federation.WithCodes("*.*.*.H14")); err != nil {
		t.Fatal(err)
	}
	for _, codes := range []string{"000.05.*.*", "*.*.*.G22", "*.*.*.H1*"} {
		if err := federation.RegisterBus(ctx, c, "NA", caNA.Cert, false, federation.WithCodes(codes)); !errors.Is(err, federation.ErrCodePattern) {
			t.Fatalf("binding %s over another bus's: %v", codes, err)
		}
	}
	// Listed without a binding first (as before bindings existed).
	if err := federation.RegisterBus(ctx, c, "NA", caNA.Cert, false); err != nil {
		t.Fatal(err)
	}
	if err := federation.RegisterBus(ctx, c, "SL", caNA.Cert, false); err == nil || !strings.Contains(err.Error(), "rekey") {
		t.Fatalf("replacing SL's CA through member add: %v", err)
	}
	// The national may not register a code bound to a member.
	if err := c.CheckClaim(ctx, "000.00.00.H14"); !errors.Is(err, federation.ErrNotBound) {
		t.Fatalf("national claiming SL's code: %v", err)
	}
	if err := c.CheckClaim(ctx, "000.00.01.G22"); err != nil {
		t.Fatalf("national claiming its own code: %v", err)
	}
	if err := c.CheckClaim(ctx, "000.00.00.H41"); !errors.Is(err, federation.ErrNotBound) {
		t.Fatalf("national claiming a code outside its binding: %v", err)
	}

	// NA served 000.00.01.H14 before SL's binding covered it, and serves
	// its own 000.00.00.H41: binding NA drops the first, not the second.
	put := func(bus, code string, ca *signing.CA) {
		id, err := ca.Issue(code, code, signing.IssueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(broker.Agency{Code: code, Name: code, Bus: bus, Certificate: string(signing.EncodeCerts(id.Chain...)), Added: time.Now()})
		if _, err := kv.Put(ctx, "agency."+envelope.Token(code), b); err != nil {
			t.Fatal(err)
		}
	}
	put("NA", "000.00.01.H14", caNA)
	put("NA", "000.00.00.H41", caNA)
	put("NA", "000.00.02.H41", caNA)
	eventuallyLookup(t, c, "000.00.00.H41", "NA")
	vn.Bind("NA", "*.*.*.H41")
	eventually(t, "claim outside the bindings withdrawn", func() error {
		if _, err := kv.Get(ctx, "agency."+envelope.Token("000.00.01.H14")); !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("still listed (%v)", err)
		}
		return nil
	})
	eventuallyLookup(t, c, "000.00.00.H41", "NA")

	// Removal: CA withdrawn, agencies kept but withdrawn, sending refused.
	r := vn.RemoveMember("NA")
	if !slices.Equal(r.Agencies, []string{"000.00.00.H41", "000.00.02.H41"}) || len(r.Withdrawn) != 1 || r.Withdrawn[0] != signing.KeyID(caNA.Cert) {
		t.Fatalf("removal %+v", r)
	}
	eventually(t, "NA's CA withdrawn for the national's clients", func() error {
		if _, ok := c.Trust().Withdrawal(signing.KeyID(caNA.Cert)); !ok {
			return errors.New("not withdrawn")
		}
		a, err := c.LookupAgency(ctx, "000.00.00.H41")
		if err != nil || a.Withdrawn.IsZero() {
			return fmt.Errorf("agency entry %+v, %v", a, err)
		}
		return nil
	})
	_, err = vn.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{"000.00.00.H41"}, "Gửi bus đã rời"))
	if !errors.Is(err, broker.ErrWithdrawn) || !strings.Contains(err.Error(), "bus NA left the federation") {
		t.Fatalf("sending to an agency of a removed bus: %v", err)
	}
	again, err := federation.RemoveBus(ctx, c, "NA")
	if err != nil || !again.At.Equal(r.At) {
		t.Fatalf("removing again: %+v, %v", again, err)
	}
	if _, err := federation.RemoveBus(ctx, c, "VN"); err == nil {
		t.Fatal("removed the national bus")
	}
	if _, err := federation.BindCodes(ctx, c, "NA", []string{"*.*.*.H41"}); !errors.Is(err, federation.ErrRemoved) {
		t.Fatalf("binding a removed bus: %v", err)
	}
	// Admitted again only with a new CA; the old one stays withdrawn.
	if err := federation.RegisterBus(ctx, c, "NA", caNA.Cert, false); !errors.Is(err, federation.ErrRemoved) {
		t.Fatalf("re-admitting with the withdrawn CA: %v", err)
	}
	caNA2 := newCA("NA")
	if err := federation.RegisterBus(ctx, c, "NA", caNA2.Cert, false, federation.WithCodes("*.*.*.H41")); err != nil {
		t.Fatal(err)
	}
	list, err := federation.Buses(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range list {
		if b.ID == "NA" && (!b.Removed.IsZero() || len(b.FormerCAs) != 1 || !slices.Equal(b.Codes, []string{"*.*.*.H41"})) {
			t.Fatalf("re-admitted entry %+v", b)
		}
	}

	// Rekey: the old CA withdrawn from the given time, kept as former.
	caSL2 := newCA("SL")
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	e, err := federation.RekeyBus(ctx, c, "SL", caSL2.Cert, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.FormerCAs) != 1 || !e.FormerCAs[0].Withdrawn.Equal(at) {
		t.Fatalf("rekeyed entry %+v", e)
	}
	if _, err := federation.RekeyBus(ctx, c, "SL", caSL.Cert, time.Time{}); err == nil {
		t.Fatal("rekey back to a withdrawn CA succeeded")
	}
	eventually(t, "SL's old CA withdrawn", func() error {
		if w, ok := c.Trust().Withdrawal(signing.KeyID(caSL.Cert)); !ok || !w.Equal(at) {
			return fmt.Errorf("withdrawal %v %v", w, ok)
		}
		return nil
	})
}

func eventuallyLookup(t *testing.T, c *broker.Client, code, bus string) {
	t.Helper()
	eventually(t, code+" served by "+bus, func() error {
		a, err := c.LookupAgency(context.Background(), code)
		if err != nil {
			return err
		}
		if a.Bus != bus {
			return fmt.Errorf("served by %q", a.Bus)
		}
		return nil
	})
}
