package federation_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/signing"
)

// TestClaimCheckOnEveryRegistration: any client of a member bus, made with
// no option at all, refuses a code bound to another bus whatever registers
// it: RegisterAgency (agency add, the compatibility API's registerAgency)
// and ImportAgencies. The check is in the directory write itself.
func TestClaimCheckOnEveryRegistration(t *testing.T) {
	vn := bustest.StartNational(t, "VN")
	hn := bustest.StartMember(t, "HN", vn)
	dn := bustest.StartMember(t, "DN", vn)
	vn.Bind("VN", "*.*.*.G*")
	vn.Bind("HN", "*.*.*.H1*")
	vn.Bind("DN", "*.*.*.H5*")
	_ = hn
	ctx := ctxT(t)
	// The bus's kind of client (follows the directory) and the CLI's (reads
	// it by key): neither is told to check.
	for _, kind := range []struct {
		name string
		opts []broker.Option
		own  string // a code of DN's to register
	}{{"following", nil, "H51"}, {"by key", []broker.Option{broker.WithDirectoryByKey()}, "H52"}} {
		t.Run(kind.name, func(t *testing.T) {
			opts := append([]broker.Option{broker.WithTrust(dn.Trust), broker.WithLogger(bustest.Logger()),
				broker.WithNATSOptions(dn.AdminOptions()...)}, kind.opts...)
			c, err := broker.Connect(ctx, dn.URL(), opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			claimsRefused(t, dn, c, kind.own)
		})
	}
}

func claimsRefused(t *testing.T, dn *bustest.FedBus, c *broker.Client, own string) {
	ctx := ctxT(t)
	eventually(t, "DN learns HN's binding", func() error {
		if err := c.CheckClaim(ctx, "000.00.00.H14"); !errors.Is(err, federation.ErrNotBound) {
			return errors.New("not yet")
		}
		return nil
	})
	entry := func(code string) broker.Agency {
		id, err := dn.CA.Issue(code, code, signing.IssueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return broker.Agency{Code: code, Name: "UBND " + code, Certificate: string(signing.EncodeCerts(id.Chain...))}
	}

	if err := c.RegisterAgency(ctx, entry("000.07.00.H14")); !errors.Is(err, federation.ErrNotBound) {
		t.Fatalf("DN registering a code bound to HN: %v", err)
	}
	if err := c.RegisterAgency(ctx, entry("000.07.00.G22")); !errors.Is(err, federation.ErrNotBound) {
		t.Fatalf("DN registering a code bound to the national: %v", err)
	}
	if err := c.RegisterAgency(ctx, entry("000.00.00."+own)); err != nil {
		t.Fatalf("DN registering its own code: %v", err)
	}

	res, err := c.ImportAgencies(ctx, []broker.ImportLine{
		{Line: 2, Agency: broker.Agency{Code: "000.08.00.H14", Name: "squatter"}},
		{Line: 3, Agency: broker.Agency{Code: "000.01.00." + own, Name: "Sở Nội vụ", Parent: "000.00.00." + own}},
	}, broker.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 1 || len(res.Errors) != 1 || res.Errors[0].Line != 2 || !strings.Contains(res.Errors[0].Error(), "bound to bus HN") {
		t.Fatalf("import: %+v %v", res, res.Errors)
	}
	if _, err := c.LookupAgency(ctx, "000.08.00.H14"); !errors.Is(err, broker.ErrUnknownAgency) {
		t.Fatalf("the refused line is in DN's directory: %v", err)
	}
}
