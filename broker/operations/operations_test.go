package operations_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/broker/operations"
	"github.com/docaxis/docaxis/signing"
)

func ctxT(t testing.TB) context.Context { return bustest.Context(t, 60*time.Second) }

// adminClient connects as the CLI does: the operator's credentials, the
// directory read by key.
func adminClient(t *testing.T, b *bustest.Bus) *broker.Client {
	t.Helper()
	c, err := broker.Connect(ctxT(t), b.URL(), broker.WithTrust(b.Trust), broker.WithLogger(bustest.Logger()),
		broker.WithNATSOptions(b.AdminOptions()...), broker.WithDirectoryByKey())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestOperatorActions: the actions on one bus with authentication, as the
// CLI runs them.
func TestOperatorActions(t *testing.T) {
	b := bustest.Start(t, bustest.WithAuth())
	ctx := ctxT(t)
	op := operations.New(adminClient(t, b), b.Keystore, operations.WithAuthority(b.Auth))

	const code = "000.00.00.H41"
	res, err := op.AddAgency(ctx, operations.AgencyRequest{Agency: broker.Agency{Code: code, Name: "UBND H41"}})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := b.Keystore.Identity(code)
	if err != nil || !stored.Certificate().Equal(res.Identity.Certificate()) {
		t.Fatalf("the key is not kept in the home: %v", err)
	}
	if res.Creds != operations.AgencyCredsPath(b.Keystore.Dir, code) || !exists(res.Creds) {
		t.Fatalf("credentials %q not written", res.Creds)
	}
	again, err := op.AddAgency(ctx, operations.AgencyRequest{Agency: broker.Agency{Code: code, Name: "UBND tỉnh H41"}})
	if err != nil || !again.Identity.Certificate().Equal(stored.Certificate()) {
		t.Fatalf("registering again issued another key: %v", err)
	}

	sys, err := op.AddSystem(ctx, operations.SystemRequest{ID: "qlvb", Name: "QLVB"})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := operations.SystemSecret(b.Keystore, "qlvb", false)
	if err != nil || len(secret) != 64 || !exists(sys.Creds) {
		t.Fatalf("system secret %q, credentials %q: %v", secret, sys.Creds, err)
	}
	if _, err := op.AddSystem(ctx, operations.SystemRequest{ID: "bad id", Name: "x"}); err == nil {
		t.Fatal("a bad system id was registered")
	}

	// A system's agency; the system may not take another one.
	const served = "000.01.00.H41"
	a, err := op.AddServedAgency(ctx, operations.ServedAgency{Agency: broker.Agency{Code: served, Name: "Sở", System: "qlvb"}})
	if err != nil || len(a.Bindings) != 1 {
		t.Fatalf("served agency: %+v %v", a, err)
	}
	_, err = op.AddServedAgency(ctx, operations.ServedAgency{Agency: broker.Agency{Code: code, System: "qlvb"}, Stay: true})
	if !errors.Is(err, operations.ErrOtherSystem) {
		t.Fatalf("a system took an agency with its own key: %v", err)
	}
	// Leaving its system for a key of its own: the end of the binding is
	// signed.
	own, err := op.AddAgency(ctx, operations.AgencyRequest{Agency: broker.Agency{Code: served, Name: "Sở"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := op.Client().LookupAgency(ctx, served); err != nil || got.System != "" || len(got.Bindings) != 2 || own.Agency.Certificate != got.Certificate {
		t.Fatalf("after leaving its system: %+v %v", got, err)
	}

	leaf, err := op.RevokeAgency(ctx, code, time.Now())
	if err != nil || !leaf.Equal(stored.Certificate()) {
		t.Fatalf("revoked %v: %v", leaf, err)
	}
}

// TestAddAgencyOutsideBinding: on a member bus, a code bound to another
// bus is refused by the directory write, and the home keeps no key for it.
func TestAddAgencyOutsideBinding(t *testing.T) {
	vn := bustest.StartNational(t, "VN")
	hn := bustest.StartMember(t, "HN", vn)
	dn := bustest.StartMember(t, "DN", vn)
	vn.Bind("HN", "*.*.*.H1*")
	vn.Bind("DN", "*.*.*.H5*")
	_ = hn
	ctx := ctxT(t)
	c := adminClient(t, dn.Bus)
	op := operations.New(c, dn.Keystore, operations.WithAuthority(dn.Auth))
	const squat = "000.00.00.H14"
	bustest.Eventually(t, 30*time.Second, "DN never learnt HN's binding", func() error {
		if c.CheckClaim(ctx, squat) == nil {
			return errors.New("the claim is still allowed")
		}
		return nil
	})
	if _, err := op.AddAgency(ctx, operations.AgencyRequest{Agency: broker.Agency{Code: squat, Name: "squatter"}}); !errors.Is(err, federation.ErrNotBound) {
		t.Fatalf("DN registered HN's code: %v", err)
	}
	if _, err := dn.Keystore.Identity(squat); !errors.Is(err, signing.ErrNoIdentity) {
		t.Fatalf("a key was kept for a refused code: %v", err)
	}
	if exists(operations.AgencyCredsPath(dn.Keystore.Dir, squat)) {
		t.Fatal("credentials were issued for a refused code")
	}
	if _, err := op.AddAgency(ctx, operations.AgencyRequest{Agency: broker.Agency{Code: "000.00.00.H51", Name: "UBND H51"}}); err != nil {
		t.Fatal(err)
	}
}

// TestAddAgencyRefusesServiceCertificate: `agency add --import-key
// --import-cert` with a key of one of the bus's own services (the audit
// key would then sign "from" the agency) is refused by the directory
// write, and nothing is kept for the code.
func TestAddAgencyRefusesServiceCertificate(t *testing.T) {
	b := bustest.Start(t, bustest.WithAuth())
	ctx := ctxT(t)
	op := operations.New(adminClient(t, b), b.Keystore, operations.WithAuthority(b.Auth))
	for i, tt := range []struct {
		p       signing.Purpose
		subject string
	}{
		{signing.PurposeAudit, ""},
		{signing.PurposeSystem, "dms-01"},
		{signing.PurposeBus, "HN"},
		{signing.PurposeTLS, ""},
		{signing.PurposeTimeStamping, ""},
		{0, ""}, // the CA itself
	} {
		name := tt.p.String()
		if tt.p == 0 {
			name = "CA"
		}
		t.Run(name, func(t *testing.T) {
			code := fmt.Sprintf("000.00.%02d.H42", i)
			key, chain := b.CA.Key, []*x509.Certificate{b.CA.Cert}
			if tt.p != 0 {
				var err error
				if key, chain, err = signing.IssueKey(b.CA, tt.p, tt.subject, signing.KeyECDSA, signing.IssueOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			imported, err := signing.NewIdentity(code, key, chain)
			if err != nil {
				t.Fatal(err)
			}
			_, err = op.AddAgency(ctx, operations.AgencyRequest{Agency: broker.Agency{Code: code, Name: "imported"}, Import: imported})
			if !errors.Is(err, signing.ErrServiceCertificate) || !errors.Is(err, broker.ErrInvalidEntry) {
				t.Fatalf("registered with a %s certificate: %v", name, err)
			}
			t.Log(err)
			if _, err := op.Client().LookupAgency(ctx, code); err == nil {
				t.Error("the code is in the directory")
			}
			if _, err := b.Keystore.Identity(code); !errors.Is(err, signing.ErrNoIdentity) {
				t.Errorf("a key was kept: %v", err)
			}
			if exists(operations.AgencyCredsPath(b.Keystore.Dir, code)) {
				t.Error("credentials were issued")
			}
		})
	}
}

// TestAdmitMember: the link account is written before the listing; a
// refused listing leaves no credentials.
func TestAdmitMember(t *testing.T) {
	vn := bustest.StartNational(t, "VN")
	ctx := ctxT(t)
	c := adminClient(t, vn.Bus)
	op := operations.New(c, vn.Keystore, operations.WithAuthority(vn.Auth))
	caOf := func(name string) *signing.CA {
		ca, err := signing.NewCA(name, 365*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return ca
	}
	codes := func(list string) federation.Binding {
		b, err := federation.ParseCodePatterns(list)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	dir := t.TempDir()
	dnCreds := filepath.Join(dir, "DN", "uplink.creds")
	ad, err := op.AdmitMember(ctx, operations.MemberRequest{ID: "DN", CA: caOf("CA DN").Cert, Codes: codes("*.*.*.H5*"), Creds: dnCreds})
	if err != nil {
		t.Fatal(err)
	}
	if ad.National != "VN" || !exists(dnCreds) || !vn.Auth.HasLink("DN") || !slices.Equal(ad.Codes, []string{"*.*.*.H5*"}) {
		t.Fatalf("admission %+v", ad)
	}

	xxCreds := filepath.Join(dir, "XX", "uplink.creds")
	_, err = op.AdmitMember(ctx, operations.MemberRequest{ID: "XX", CA: caOf("CA XX").Cert, Codes: codes("*.*.*.H51"), Creds: xxCreds})
	if !errors.Is(err, federation.ErrCodePattern) {
		t.Fatalf("an overlapping binding: %v", err)
	}
	if exists(xxCreds) {
		t.Fatal("a refused admission left its credentials")
	}
	buses, err := federation.Buses(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range buses {
		if b.ID == "XX" {
			t.Fatal("the refused member is listed")
		}
	}
	if _, err := op.AdmitMember(ctx, operations.MemberRequest{ID: "VN", CA: caOf("CA").Cert, Codes: codes("*.*.*.H9*"), Creds: xxCreds}); err == nil {
		t.Fatal("the national admitted itself")
	}

	// A bus whose federation service does not answer cannot tell that it
	// is the national bus: nothing is admitted.
	vn.Fed.Stop()
	vn.Fed = nil
	qnCreds := filepath.Join(dir, "QN", "uplink.creds")
	_, err = op.AdmitMember(ctx, operations.MemberRequest{ID: "QN", CA: caOf("CA QN").Cert, Codes: codes("*.*.*.H4*"), Creds: qnCreds})
	if !errors.Is(err, federation.ErrNotRunning) {
		t.Fatalf("admitted without the federation service's word: %v", err)
	}
	if exists(qnCreds) || vn.Auth.HasLink("QN") {
		t.Fatal("an admission refused for want of the federation service left credentials")
	}
}

// TestAddServedAgencyConcurrently: operators moving one agency between
// systems at once each add their binding to what the directory holds when
// they write: none is dropped by a write made from an older read (a
// system's signatures of its time with the agency would no longer verify).
func TestAddServedAgencyConcurrently(t *testing.T) {
	b := bustest.Start(t, bustest.WithAuth())
	ctx := ctxT(t)
	const code = "000.01.00.H41"
	systems := []string{"sys-1", "sys-2", "sys-3", "sys-4", "sys-5", "sys-6"}
	setup := operations.New(adminClient(t, b), b.Keystore, operations.WithAuthority(b.Auth))
	for _, id := range systems {
		if _, err := setup.AddSystem(ctx, operations.SystemRequest{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(systems))
	for _, id := range systems {
		// An operator process each, as several CLI runs are.
		op := operations.New(adminClient(t, b), b.Keystore, operations.WithAuthority(b.Auth))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := op.AddServedAgency(ctx, operations.ServedAgency{Agency: broker.Agency{Code: code, Name: "Sở", System: id}}); err != nil {
				errs <- fmt.Errorf("move to %s: %w", id, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := b.Service.Client.ReadAgency(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Bindings) != len(systems) || !slices.Contains(systems, got.System) {
		t.Fatalf("after %d moves the entry is served by %q with %d bindings, want one per move", len(systems), got.System, len(got.Bindings))
	}
}
